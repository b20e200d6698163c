"""The tables of Vu, Reeves & Wenger (2025, arXiv 2505.21677) on the linear surrogate, set beside theirs.

Two (or K) linear models with different private tasks plus shared public data read each other; the paper's
t = 0 is generation 1 (real data only) and its t = 15 generation 16. Model k's *task* j is developer j's
feature domain: x ~ N(0, Σ_j) with Σ_j = diag(domain variance of j), so the excess test loss of model k on
task j is (θ̂_k − θ)ᵀ Σ_j (θ̂_k − θ) (the test MSE less σ²). Own-task loss averages j = k, cross-task loss
j ≠ k (their Tables 3, 6, 7).

Two sources for every number: :func:`simulate_losses` runs the ecosystem (replications vary only the
synthetic noise, the world seed is pinned) and :func:`expected_losses` takes the exact conditional
expectation from Theorem 1's moments (:func:`analysis.theory.vu_moments`):
E[(θ̂_k − θ)ᵀ Σ_j (θ̂_k − θ)] = (m_k − θ)ᵀ Σ_j (m_k − θ) + tr(Σ_j C_kk).

``python -m analysis.vu_paper grid SCENARIO [--reps R] [--beta B ...] [--features own|shared|real]``
prints the α × β table in the paper's layout (own and cross loss at t = 0 and t = 15, ρ(Q) of each cell, and
the t = 0..15 curves with ``--curves``); ``--features`` picks where the synthetic features come from (the
world's ``synthetic_features``: each model's own domain, a shared N(0, I) as in their Theorem 2, or the real
private design reused).

``python -m analysis.vu_paper pca SCENARIO [--reps R] [--beta B] [--figure PATH]`` draws the models'
outputs on the probes projected on their first two principal components, coloured by task, at t = 0 and
t = 15 for α = 0, 0.5, 1 (their PCA plots), and prints how far apart the tasks' clusters are.

``python -m analysis.vu_paper prompts SCENARIO [--reps R] [--prompt-tokens K]`` runs a token scenario whose
developers have private tasks (e.g. ``scenarios/papers/vu_two_models_tokens.yaml``) at α = 0, 0.5, 1, with
and without prompts of K tokens of each model's own private data (``developers.publish.prompt``), over R
seeds, and prints what share of the tokens each model wrote falls on its own task and how far apart the
models' topics are (their prompted setting: each model writes about its own task).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import seaborn as sns
import yaml

from analysis import figures
from analysis.theory import ols_excess_loss, vu_moments, vu_transition
from ecosystem.model import EcosystemModel
from ecosystem.network import reading_matrix
from ecosystem.scenario import Scenario, ScenarioError, validate_scenario

LEVELS = (0.0, 0.5, 1.0)


def grid_scenario(base: dict, alpha: float, beta: float, seed: int | None = None,
                  overrides: dict | None = None) -> Scenario:
    """``base`` (a scenario mapping, its ``sweep`` ignored) at one (α, β) cell, with dotted ``overrides``
    (e.g. ``{"world.synthetic_features": "shared"}``)."""
    data = {k: v for k, v in base.items() if k != "sweep"}
    cell = {"developers.data.alpha": alpha, "developers.data.beta": beta} | (overrides or {})
    if seed is not None:
        cell["seed"] = seed
    return validate_scenario(data, overrides=cell)


def task_losses(theta_hat: np.ndarray, theta: np.ndarray, domain_var: np.ndarray) -> np.ndarray:
    """Excess loss ``(K, K)`` of model k (row) on task j (column): Σ_i var_j[i] (θ̂_k[i] − θ[i])²."""
    err2 = (theta_hat - theta) ** 2  # (K, D)
    return err2 @ domain_var.T


def own_cross(losses: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Own-task (diagonal) and cross-task (off-diagonal) means of ``losses (..., K, K)``."""
    k = losses.shape[-1]
    eye = np.eye(k, dtype=bool)
    own = losses[..., eye].mean(-1)
    cross = losses[..., ~eye].mean(-1)
    return own, cross


def simulate_thetas(scenario: Scenario, reps: int) -> tuple[np.ndarray, EcosystemModel]:
    """Every model's θ̂ ``(reps, steps, K, D)``, replication r run with seed ``scenario.seed + r``, and the
    last replication's model (its world is every replication's: the world seed is the scenario's)."""
    out = []
    for r in range(reps):
        model = EcosystemModel(scenario.model_copy(update={"seed": scenario.seed + r}))
        per = []
        for _ in range(scenario.steps):
            model.step()
            per.append(model.state.theta.cpu().numpy().copy())
        out.append(per)
    return np.array(out), model


def simulate_losses(scenario: Scenario, reps: int) -> np.ndarray:
    """Simulated task losses ``(reps, steps, K, K)`` (see :func:`simulate_thetas`)."""
    thetas, model = simulate_thetas(scenario, reps)
    var = model.world.domain_var.cpu().numpy()
    d = thetas.shape[-1]
    losses = task_losses(thetas.reshape(-1, d), model.world.theta.cpu().numpy(), var)
    return losses.reshape((*thetas.shape[:-1], -1))


def probe_sets(model: EcosystemModel) -> dict[str, np.ndarray]:
    """Features of the probes of Vu et al.'s Table 4: each private set (``private k``) and the public
    domain (``public``: the held-out items, drawn like the public set)."""
    world = model.world
    probes = {f"private {k}": world.original(k).items[:, :-1].cpu().numpy() for k in range(len(model.developers))}
    probes["public"] = world.heldout().items[:, :-1].cpu().numpy()
    return probes


def output_similarity(thetas: np.ndarray, probes: np.ndarray) -> np.ndarray:
    """Mean pairwise cosine similarity of the models' outputs ŷ_k = X θ̂_k on ``probes (P, D)``:
    ``thetas (..., K, D)`` → ``(...)`` (their Table 4's homogenization measure)."""
    y = np.einsum("pd,...kd->...kp", probes, thetas)
    y = y / np.linalg.norm(y, axis=-1, keepdims=True)
    cos = np.einsum("...kp,...lp->...kl", y, y)
    k = thetas.shape[-2]
    upper = np.triu(np.ones((k, k), dtype=bool), 1)
    return cos[..., upper].mean(-1)


def homogenization(scenario: Scenario, reps: int) -> dict[str, np.ndarray]:
    """Output similarity ``(reps, steps)`` on each probe set (see :func:`output_similarity`)."""
    thetas, model = simulate_thetas(scenario, reps)
    return {name: output_similarity(thetas, x) for name, x in probe_sets(model).items()}


def written_topics(model: EcosystemModel) -> tuple[np.ndarray, np.ndarray]:
    """What the developers' newest published items are about: per developer, the share of the tokens it
    wrote (after its prompt) on its own task's concepts ``(N,)``, and its distribution of written tokens over
    the world's concepts ``(N, C)``. A token's concept is the world's ``concept_of`` of that token alone (its
    block in ``topic_markov``; −1 tokens, outside every concept, count as off-task); a developer's task is its
    group's ``developers.group_concepts``."""
    devs = model.scenario.developers
    n, block, k = len(model.developers), model.published, devs.publish.prompt_tokens
    items = model.pool.take(np.arange(block.start, block.start + n * block.size).reshape(n, block.size)).long()
    concepts = model.world.concept_of(items[..., k:, None]).cpu().numpy()  # (N, samples, T − k)
    groups = np.repeat(np.arange(len(devs.groups)), devs.groups) if devs.groups else np.zeros(n, dtype=int)
    own = np.array([np.isin(concepts[d], devs.group_concepts[groups[d]]).mean() for d in range(n)])
    c = model.world.n_concepts
    hist = np.stack([np.bincount(concepts[d][concepts[d] >= 0], minlength=c)[:c] for d in range(n)]).astype(float)
    return own, hist / np.maximum(concepts[0].size, 1)


def prompts_frame(base: dict, reps: int, tokens: int = 1, alphas=LEVELS) -> pd.DataFrame:
    """Own-task share and topic separation of what the models wrote at the last generation, with and without
    private prompts of ``tokens`` tokens, per α and seed (seeds ``base["seed"]`` … + reps − 1). Columns:
    alpha, prompted, seed, own_share (mean over developers), separation (mean total variation between two
    developers' topic distributions over all pairs)."""
    rows = []
    base = {k: v for k, v in base.items() if k != "sweep"}
    for alpha in alphas:
        for seed in range(int(base.get("seed") or 0), int(base.get("seed") or 0) + reps):
            for prompted in (False, True):
                prompt = {"tokens": tokens, "source": "private"} if prompted else None
                model = EcosystemModel(validate_scenario(base, overrides={
                    "seed": seed, "developers.data.alpha": alpha, "developers.publish.prompt": prompt}))
                for _ in range(model.scenario.steps):
                    model.step()
                own, hist = written_topics(model)
                i, j = np.triu_indices(len(own), 1)
                rows.append({"alpha": alpha, "prompted": prompted, "seed": seed, "own_share": own.mean(),
                             "separation": 0.5 * np.abs(hist[i] - hist[j]).sum(1).mean()})
    return pd.DataFrame(rows)


def principal_components(points: np.ndarray, k: int = 2) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The first ``k`` principal components of ``points (M, P)`` (Pearson 1901; Jolliffe, *Principal
    Component Analysis*, 2002): scores ``(M, k)``, unit directions ``(k, P)`` and the share of the total
    variance each explains ``(k,)``, from the SVD of the centred matrix X − x̄ = U S Vᵀ (directions: rows of
    Vᵀ; scores: (X − x̄) V). Each direction's sign makes its largest loading positive, so the figure does
    not flip between runs."""
    centred = points - points.mean(0)
    _, s, vt = np.linalg.svd(centred, full_matrices=False)
    vt = vt[:k]
    vt = vt * np.sign(vt[np.arange(len(vt)), np.abs(vt).argmax(1)])[:, None]
    return centred @ vt.T, vt, s[:k] ** 2 / max((s**2).sum(), np.finfo(float).tiny)


def pca_frame(base: dict, reps: int, alphas=LEVELS, beta: float = 0.5) -> pd.DataFrame:
    """The models' outputs projected on their first two principal components, as Vu et al.'s PCA plots show
    them: one point per model (its task) and replication, its predictions ŷ_k = X θ̂_k on every probe set of
    :func:`probe_sets` stacked, at t = 0 and the last t. Per α, one PCA of the points of both times (shared
    axes, so distances compare). Columns: alpha, beta, t, task, rep, pc1, pc2; ``attrs["explained"]`` maps
    α to the two components' shares of the variance. At t = 0 every replication has the same fit (the real
    data are the world's; replications vary only the synthetic noise), so each task is one point there."""
    frames, explained = [], {}
    for alpha in alphas:
        thetas, model = simulate_thetas(grid_scenario(base, alpha, beta), reps)  # (R, T, K, D)
        probes = np.concatenate(list(probe_sets(model).values()))  # (P, D)
        last = thetas.shape[1] - 1
        r, t, k = np.meshgrid(np.arange(reps), [0, last], np.arange(thetas.shape[2]), indexing="ij")
        outputs = thetas[r, t, k] @ probes.T  # (R, 2, K, P)
        scores, _, share = principal_components(outputs.reshape(-1, probes.shape[0]))
        explained[alpha] = share
        frames.append(pd.DataFrame({"alpha": alpha, "beta": beta, "t": t.ravel(), "task": k.ravel(),
                                    "rep": r.ravel(), "pc1": scores[:, 0], "pc2": scores[:, 1]}))
    frame = pd.concat(frames, ignore_index=True)
    frame.attrs["explained"] = explained
    return frame


def task_separation(frame: pd.DataFrame) -> pd.DataFrame:
    """Per (α, t): the mean distance between the tasks' centroids in the PC plane and the mean distance of a
    point from its task's centroid (spread) — the clusters merge where the first falls."""
    def one(part: pd.DataFrame) -> pd.Series:
        centroids = part.groupby("task")[["pc1", "pc2"]].mean().to_numpy()  # (K, 2)
        gaps = np.linalg.norm(centroids[:, None] - centroids[None], axis=-1)
        k = len(centroids)
        spread = np.linalg.norm(part[["pc1", "pc2"]].to_numpy() - centroids[part["task"].to_numpy()], axis=1)
        return pd.Series({"between": gaps[np.triu_indices(k, 1)].mean(), "within": spread.mean()})

    return frame.groupby(["alpha", "t"])[["task", "pc1", "pc2"]].apply(one)


def pca_figure(frame: pd.DataFrame, path: Path) -> Path:
    """One panel per α (rows) and time (columns, t = 0 then the last), points coloured by task; each task's
    points are one collection with ``gid`` ``task <k>``."""
    alphas, times = sorted(frame["alpha"].unique()), sorted(frame["t"].unique())
    tasks = sorted(frame["task"].unique())
    fig, axes = figures.panels(len(alphas) * len(times), cols=len(times), size=(4.0, 3.4))
    colours = dict(zip(tasks, sns.color_palette(n_colors=len(tasks)), strict=True))
    for i, alpha in enumerate(alphas):
        part = frame[frame["alpha"] == alpha]
        share = frame.attrs.get("explained", {}).get(alpha)
        for j, t in enumerate(times):
            ax = axes[i * len(times) + j]
            for task in tasks:
                pts = part[(part["t"] == t) & (part["task"] == task)]
                ax.scatter(pts["pc1"], pts["pc2"], s=18, alpha=0.7, color=colours[task], label=f"task {task}",
                           gid=f"task {task}")
            ax.set(xlim=_padded(part["pc1"]), ylim=_padded(part["pc2"]), title=f"α = {alpha:g}, t = {t}",
                   xlabel="PC 1" + (f" ({share[0]:.0%})" if share is not None else ""),
                   ylabel="PC 2" + (f" ({share[1]:.0%})" if share is not None else ""))
    axes[0].legend(title="model's task", fontsize=8)
    return figures.save(fig, path)


def _padded(values: pd.Series) -> tuple[float, float]:
    """Axis limits holding every value of both times, 6% to spare (an α's panels share them)."""
    lo, hi = float(values.min()), float(values.max())
    pad = max(0.06 * (hi - lo), 0.1)
    return lo - pad, hi + pad


def theory_inputs(scenario: Scenario) -> tuple[dict, EcosystemModel]:
    """The arguments of :func:`analysis.theory.vu_moments` rebuilt from the scenario's own world (its private
    and public data, synthetic designs, reading matrix W, α and β), and the model they come from."""
    model = EcosystemModel(scenario)
    world, devs = model.world, scenario.developers
    data = devs.policies()[0]

    def arrays(batch):
        return batch.items[:, :-1].cpu().numpy(), batch.items[:, -1].cpu().numpy()

    return {
        "private": [arrays(world.original(i)) for i in range(devs.count)],
        "public": arrays(world.public()),
        "designs": list(world.prompts(devs.publish.samples, model.generator).cpu().numpy()),
        "reading": reading_matrix(model.graph),
        "alpha": data.synthetic,
        "beta": 1.0 if data.beta is None else data.beta,
    }, model


def expected_losses(scenario: Scenario) -> np.ndarray:
    """Exact expected task losses ``(steps, K, K)`` from Theorem 1's moments, conditional on the world."""
    inputs, model = theory_inputs(scenario)
    world = model.world
    k = scenario.developers.count
    means, covs = vu_moments(**inputs, sigma=world.spec.noise, steps=scenario.steps)
    theta = world.theta.cpu().numpy()
    var = world.domain_var.cpu().numpy()  # (K, D)
    d = theta.shape[0]
    bias = task_losses(means.reshape(-1, d), theta, var).reshape(len(means), k, k)
    spread = np.stack([[[np.trace(np.diag(var[j]) @ c[i * d:(i + 1) * d, i * d:(i + 1) * d]) for j in range(k)]
                        for i in range(k)] for c in covs])
    return bias + spread


def transition(scenario: Scenario) -> np.ndarray:
    """Theorem 1's transition Q on the scenario's world (see :func:`analysis.theory.vu_transition`)."""
    inputs, _ = theory_inputs(scenario)
    return vu_transition(**inputs)


def contraction(scenario: Scenario) -> float:
    """ρ(Q), the spectral radius of Theorem 1's transition on the scenario's world (their Theorem 3's rate)."""
    return float(np.abs(np.linalg.eigvals(transition(scenario))).max())


def grid_frame(base: dict, reps: int, alphas=LEVELS, betas=LEVELS, overrides: dict | None = None) -> pd.DataFrame:
    """Long frame over the α × β grid: alpha, beta, t (0 = generation 1), own and cross loss, simulated (mean
    and standard error over replications) and expected (Theorem 1), and ρ(Q) of the cell."""
    rows = []
    for alpha in alphas:
        for beta in betas:
            scenario = grid_scenario(base, alpha, beta, overrides=overrides)
            own_s, cross_s = own_cross(simulate_losses(scenario, reps))  # (R, T)
            own_e, cross_e = own_cross(expected_losses(scenario))  # (T,)
            rho = contraction(scenario)
            for t in range(scenario.steps):
                rows.append({
                    "alpha": alpha, "beta": beta, "t": t, "rho": rho,
                    "own": own_s[:, t].mean(), "own_se": own_s[:, t].std(ddof=1) / np.sqrt(reps),
                    "cross": cross_s[:, t].mean(), "cross_se": cross_s[:, t].std(ddof=1) / np.sqrt(reps),
                    "own_expected": own_e[t], "cross_expected": cross_e[t],
                })
    return pd.DataFrame(rows)


def paper_table(frame: pd.DataFrame, column: str = "") -> pd.DataFrame:
    """The paper's layout: one row per (α, β), own- and cross-task loss at t = 0 and the last t."""
    last = int(frame["t"].max())
    wide = frame[frame["t"].isin([0, last])].pivot_table(index=["alpha", "beta"], columns="t",
                                                          values=[f"own{column}", f"cross{column}"])
    wide.columns = [f"{name.split('_')[0]} t={t}" for name, t in wide.columns]
    wide = wide[["own t=0", f"own t={last}", "cross t=0", f"cross t={last}"]]
    wide["overall t=" + str(last)] = (wide[f"own t={last}"] + wide[f"cross t={last}"]) / 2
    wide["ρ(Q)"] = frame.groupby(["alpha", "beta"])["rho"].first()
    return wide


def curves(frame: pd.DataFrame, which: str = "own") -> pd.DataFrame:
    """``which`` loss over t = 0..T−1, one row per (α, β): the paper's per-generation curves."""
    return frame.pivot_table(index=["alpha", "beta"], columns="t", values=which)


def rho_frame(base: dict, alphas, beta: float = 0.5) -> pd.DataFrame:
    """ρ(Q) against α at one β on the scenario's world (their Theorem 3: convergence slows as α → 1, none at
    α = 1), with the per-generation rise of the expected own-task loss at α = 1 (linear variance growth)."""
    rows = [{"alpha": a, "rho": contraction(grid_scenario(base, a, beta))} for a in alphas]
    own, _ = own_cross(expected_losses(grid_scenario(base, 1.0, beta)))
    frame = pd.DataFrame(rows)
    frame.attrs["growth_at_alpha_1"] = float(np.diff(own)[1:].mean())
    return frame


def efficiency_frame(base: dict, alphas, betas, worlds, reps: int = 0, cells=None) -> pd.DataFrame:
    """Relative efficiency over (α, β) at the last generation: the oracle's loss (OLS on every entity's real
    data pooled, :func:`analysis.theory.ols_excess_loss`) over the models' mean task loss (all models on all
    tasks), both averaged over the world seeds ``worlds``. Expected from Theorem 1; with ``reps`` > 0 also
    simulated (``reps`` replications per world) in ``efficiency_simulated``, with the simulated loss and its
    standard error. ``cells`` (a list of (α, β)) replaces the grid ``alphas`` × ``betas``."""
    rows = []
    for alpha, beta in cells or [(a, b) for a in alphas for b in betas]:
        loss, oracle, simulated = [], [], []
        for w in worlds:
            scenario = grid_scenario(base, alpha, beta, overrides={"world.seed": w})
            loss.append(expected_losses(scenario)[-1].mean())
            inputs, model = theory_inputs(scenario)
            x = np.concatenate([p[0] for p in inputs["private"]] + [inputs["public"][0]])
            oracle.append(ols_excess_loss(x, model.world.spec.noise, model.world.domain_var.numpy()).mean())
            if reps:
                simulated.append(simulate_losses(scenario, reps)[:, -1].mean((1, 2)))  # (reps,)
        row = {"alpha": alpha, "beta": beta, "loss": np.mean(loss), "oracle": np.mean(oracle)}
        row["efficiency"] = row["oracle"] / row["loss"]
        if reps:
            sim = np.concatenate(simulated)
            row["loss_simulated"], row["loss_simulated_se"] = sim.mean(), sim.std(ddof=1) / np.sqrt(len(sim))
            row["efficiency_simulated"] = row["oracle"] / sim.mean()
        rows.append(row)
    return pd.DataFrame(rows)


def theory_figure(rho: pd.DataFrame, expected: pd.DataFrame, simulated: pd.DataFrame, path: Path) -> Path:
    """ρ(Q) against α beside the relative-efficiency heatmaps: expected (Theorem 1) and simulated."""
    fig, axes = figures.panels(3)
    axes[0].plot(rho["alpha"], rho["rho"], "o-")
    axes[0].axhline(1.0, color="0.35", ls=":", lw=1.2)
    axes[0].set(xlabel="α (synthetic weight)", ylabel="ρ(Q)", title="convergence rate (Thm 3)")
    figures.heatmap(expected.round({"alpha": 2, "beta": 2}), "alpha", "beta", "efficiency",
                    "relative efficiency (Thm 1)", ax=axes[1])
    figures.heatmap(simulated.round({"alpha": 2, "beta": 2}), "alpha", "beta", "efficiency_simulated",
                    "simulated", ax=axes[2])
    return figures.save(fig, path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m analysis.vu_paper")
    parser.add_argument("table", choices=["grid", "theory", "pca", "prompts"])
    parser.add_argument("scenario", type=Path)
    parser.add_argument("--reps", type=int, default=50)
    parser.add_argument("--curves", action="store_true")
    parser.add_argument("--beta", type=float, nargs="+", default=list(LEVELS), help="β levels (default 0 0.5 1)")
    parser.add_argument("--worlds", type=int, default=6, help="theory: world seeds averaged (from the file's)")
    parser.add_argument("--figure", type=Path, help="theory: write ρ(Q) and the efficiency heatmaps to this PNG; "
                        "pca: where to write the PCA figure (default vu_pca.png)")
    parser.add_argument("--prompt-tokens", type=int, default=1, help="prompts: tokens of private data per prompt")
    parser.add_argument("--features", choices=["own", "shared", "real"],
                        help="override world.synthetic_features: where the synthetic features come from")
    args = parser.parse_args(argv)
    if args.reps < 2:
        print("--reps: must be at least 2", file=sys.stderr)
        return 2
    if args.table == "prompts":
        return _prompts(args)
    try:
        base = yaml.safe_load(args.scenario.read_text())
        overrides = {"world.synthetic_features": args.features} if args.features else None
        for beta in args.beta:
            grid_scenario(base, 0.5, beta, overrides=overrides)
    except (OSError, yaml.YAMLError, ScenarioError, AttributeError) as err:
        print(f"{args.scenario}: {err}", file=sys.stderr)
        return 2
    if args.table == "theory":
        return _theory(base, args)
    if args.table == "pca":
        return _pca(base, args)
    frame = grid_frame(base, args.reps, betas=args.beta, overrides=overrides)
    pd.set_option("display.width", 200)
    print(f"simulated ({args.reps} replications), excess test loss on each task:")
    print(paper_table(frame).round(3).to_string())
    print("\nexpected (Theorem 1 moments):")
    print(paper_table(frame, "_expected").round(3).to_string())
    if args.curves:
        for which in ("own", "cross"):
            print(f"\n{which}-task loss, t = 0..{int(frame['t'].max())} (simulated):")
            print(curves(frame, which).round(3).to_string())
    return 0


def _theory(base: dict, args: argparse.Namespace) -> int:
    pd.set_option("display.width", 200)
    rho = rho_frame(base, np.round(np.arange(0, 1.01, 0.1), 2))
    print("ρ(Q) against α (β = 0.5):")
    print(rho.round(3).to_string(index=False))
    print(f"at α = 1 the expected own-task loss rises by {rho.attrs['growth_at_alpha_1']:.4f} a generation")
    first = int(base["world"].get("seed") or 0)
    worlds = range(first, first + args.worlds)
    fine = efficiency_frame(base, np.round(np.arange(0, 0.96, 0.1), 2), np.round(np.arange(0, 1.01, 0.1), 2),
                            worlds)
    best = fine.loc[fine["efficiency"].idxmax()]
    print(f"\nrelative efficiency (oracle / models' loss, {args.worlds} worlds, Theorem 1): "
          f"peak {best['efficiency']:.3f} at α = {best['alpha']}, β = {best['beta']}")
    print(fine.pivot(index="alpha", columns="beta", values="efficiency").round(3).to_string())
    cross = [(0.1, 0.5), (0.5, 0.5), (0.9, 0.5), (0.5, 0.1), (0.5, 0.9)]  # through the peak
    coarse = efficiency_frame(base, (), (), worlds, reps=args.reps, cells=cross)
    print(f"\nbeside a simulated sweep ({args.reps} replications per world):")
    print(coarse.round(3).to_string(index=False))
    if args.figure:
        print(f"figure: {theory_figure(rho, fine, coarse, args.figure)}")
    return 0


def _pca(base: dict, args: argparse.Namespace) -> int:
    beta = args.beta[0] if len(args.beta) == 1 else 0.5
    frame = pca_frame(base, args.reps, beta=beta)
    pd.set_option("display.width", 200)
    print(f"models' outputs on the probes, first two principal components (β = {beta:g}, {args.reps} replications):")
    for alpha, share in frame.attrs["explained"].items():
        print(f"  α = {alpha:g}: PC 1 and PC 2 explain {share[0]:.1%} and {share[1]:.1%} of the variance")
    print("distance between the tasks' centroids (between) and of points from their centroid (within):")
    print(task_separation(frame).round(3).to_string())
    print(f"figure: {pca_figure(frame, args.figure or Path('vu_pca.png'))}")
    return 0


def _prompts(args: argparse.Namespace) -> int:
    try:
        base = yaml.safe_load(args.scenario.read_text())
        validate_scenario({k: v for k, v in base.items() if k != "sweep"}, overrides={
            "developers.publish.prompt": {"tokens": args.prompt_tokens, "source": "private"}})
    except (OSError, yaml.YAMLError, ScenarioError, AttributeError) as err:
        print(f"{args.scenario}: {err}", file=sys.stderr)
        return 2
    frame = prompts_frame(base, args.reps, args.prompt_tokens)
    table = frame.groupby(["alpha", "prompted"])[["own_share", "separation"]].agg(["mean", "std"])
    pd.set_option("display.width", 200)
    print(f"what the models wrote at the last generation, {args.reps} seeds (mean, s.d.); prompted: "
          f"{args.prompt_tokens} token(s) of each model's private data")
    print(table.round(3).to_string())
    return 0


if __name__ == "__main__":
    sys.exit(main())
