"""Closed-form predictions that simulated ecosystems must reproduce.

Shumailov et al. (Nature 2024), Kazdan et al. (2024, Thm 1), Vu, Reeves & Wenger (2025, Thm 1), and least
squares relabelled by its own fits (Dohmatob et al. 2024; Gerstgrasser et al. 2024).

All functions are pure numpy; variances are relative to the true variance σ² unless σ² is passed.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def gaussian_replace_variance(m: int, n: int | np.ndarray) -> np.ndarray:
    """E[σ̂²_n]/σ² = ((M−1)/M)^n for a single Gaussian refitted by MLE on M of its own samples each generation.

    Shumailov et al., Nature 2024 (single-Gaussian analysis), with the MLE variance as in Kazdan et al. 2024.
    ``n`` counts fits: fit 1 saw real data.
    """
    return ((m - 1) / m) ** np.asarray(n, dtype=float)


def gaussian_replace_mean_sq(m: int, n: int | np.ndarray) -> np.ndarray:
    """E[(μ̂_n − μ)²]/σ² = 1 − ((M−1)/M)^n: the mean random-walks away from the truth."""
    return 1.0 - gaussian_replace_variance(m, n)


def gaussian_accumulate_variance(n: int, t: int | np.ndarray) -> np.ndarray:
    """E[σ̂²_t]/σ² = ∏_{k=1..t}(1 − 1/(k²n)) when every fit trains on all data so far (n new items a generation).

    Kazdan et al. 2024, Theorem 1; the limit is sin(π/√n)/(π/√n): no collapse.
    """
    t = np.asarray(t)
    k = np.arange(1, int(t.max()) + 1)
    cumulative = np.concatenate([[1.0], np.cumprod(1.0 - 1.0 / (k**2 * n))])  # index t: product up to t
    return cumulative[t]


def gaussian_accumulate_limit(n: int) -> float:
    x = np.pi / np.sqrt(n)
    return float(np.sin(x) / x)


def regression_relabel_error(t: int | np.ndarray, retention: str, scale: float | np.ndarray) -> np.ndarray:
    """E[δ_tᵀ A δ_t], δ_t = θ̂_t − θ, for least squares refitted on its own labels on a reused design X₀.

    Fit 1 is OLS on the real data (X₀, y₀), y₀ = X₀θ + w₀; fit t + 1 relabels the same design,
    y_t = X₀θ̂_t + w_t, with w_t ~ N(0, σ²I) independent of everything before. Write e_t = (X₀ᵀX₀)⁻¹X₀ᵀw_t,
    independent with E[e_t] = 0 and Cov(e_t) = σ²(X₀ᵀX₀)⁻¹, so E[e_tᵀAe_t] = σ² tr(A(X₀ᵀX₀)⁻¹) =: ``scale``
    (A = I: ‖θ̂ − θ‖²; A = Σ: the test error's excess over σ²).

    - ``replace`` (train on the newest labels only; Dohmatob et al. 2024, "Model collapse demystified: the
      case of regression"): θ̂_{t+1} = θ̂_t + e_{t+1}, so δ_t = Σ_{k≤t} e_k and E = t · scale, linear in t.
    - ``accumulate`` (train on the real and every synthetic set so far, pooled with equal weights;
      Gerstgrasser et al. 2024, "Is model collapse inevitable?"): on one design the pooled OLS is the mean of
      the per-set OLS, t θ̂_t = (t − 1)θ̂_{t−1} + (θ̂_{t−1} + e_t), so δ_t = δ_{t−1} + e_t / t,
      δ_t = Σ_{k≤t} e_k / k and E = scale · Σ_{k≤t} 1/k², bounded by scale · π²/6.

    For Gaussian designs, x ~ N(0, Σ) with n rows, E tr(Σ(X₀ᵀX₀)⁻¹) = d/(n − d − 1) (the inverse-Wishart
    mean), which gives Dohmatob et al.'s t σ² d/(n − d − 1). ``t`` counts fits: fit 1 saw real data.
    """
    t = np.asarray(t)
    if retention == "replace":
        return t * np.asarray(scale, dtype=float)
    if retention == "accumulate":
        k = np.arange(1, int(t.max(initial=1)) + 1)
        partial = np.concatenate([[0.0], np.cumsum(1.0 / k**2)])  # index t: Σ_{k≤t} 1/k²
        return partial[t] * np.asarray(scale, dtype=float)
    raise ValueError(f"retention: closed form for replace or accumulate, got {retention!r}")


def regression_fresh_design_error(t: int | np.ndarray, sigma: float, d: int, n: int, m: int) -> np.ndarray:
    """E‖θ̂_t − θ‖² under ``replace`` when each generation labels a fresh Gaussian design x ~ N(0, I).

    Fit 1 is OLS on n real rows; fit t + 1 is OLS on m fresh rows X_t labelled X_tθ̂_t + w_t. The errors
    add independently, each with E‖(X_tᵀX_t)⁻¹X_tᵀw_t‖² = σ² d/(rows − d − 1) (the inverse-Wishart mean), so
    E = σ²(d/(n − d − 1) + (t − 1) d/(m − d − 1)) (Dohmatob et al. 2024, their fresh-design case).
    """
    if min(n, m) <= d + 1:
        raise ValueError(f"the Gaussian-design mean needs more than d + 1 = {d + 1} rows, got n={n}, m={m}")
    t = np.asarray(t, dtype=float)
    return sigma**2 * (d / (n - d - 1) + (t - 1) * d / (m - d - 1))


def vu_moments(
    private: Sequence[tuple[np.ndarray, np.ndarray]],
    public: tuple[np.ndarray, np.ndarray],
    designs: Sequence[np.ndarray],
    reading: np.ndarray,
    alpha: float,
    beta: float,
    sigma: float,
    steps: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance of K linear models reading each other's synthetic data (Vu, Reeves & Wenger 2025).

    Entity k minimises (1−α)β‖ỹ_k − X̃_kθ‖² + (1−α)(1−β)‖y* − X*θ‖² + α Σ_j W_kj ‖y_tj − X_jθ‖², where
    y_tj = X_j θ̂_{t−1,j} + w, w ~ N(0, σ²I), and the first generation is their t = 0: real data only,
    weights β and 1 − β (α₀ ≡ 0; for α < 1 the same fit as (1−α)β, (1−α)(1−β), since weighted least squares
    is unchanged by scaling every weight, and at α = 1 the fit on real data their recursion starts from). With
    W = (1/K)11ᵀ this is their Theorem 1; a reading graph generalises Π to W ⊗ I. Conditional on the real
    data and the designs X_j:

        m_t = c_t + Q_t m_{t−1},   C_t = Q_t C_{t−1} Q_tᵀ + α²σ² [G_k⁺ (Σ_j W_kj W_lj S_j) G_l⁺]_{k,l}

    with G_k = (1−α)β S̃_k + (1−α)(1−β) S* + α Σ_j W_kj S_j and (Q_t)_{kj} = α W_kj G_k⁺ S_j.

    Returns ``means (steps, K, D)`` and ``covs (steps, K·D, K·D)`` of the stacked estimates, generation 1 first.
    """
    k_n = len(private)
    d = public[0].shape[1]
    a, b = (1 - alpha) * beta, (1 - alpha) * (1 - beta)
    s_priv = np.stack([x.T @ x for x, _ in private])  # (K, D, D)
    r_priv = np.stack([x.T @ y for x, y in private])  # (K, D)
    s_pub, r_pub = public[0].T @ public[0], public[0].T @ public[1]
    s_syn = np.stack([x.T @ x for x in designs])  # (K, D, D)
    w = np.asarray(reading, dtype=float)
    # Σ_j W_kj S_j (K, D, D) and Σ_j W_kj W_lj S_j (K, K, D, D): what each model's synthetic data weigh.
    read = np.einsum("kj,jab->kab", w, s_syn)
    shared = np.einsum("kj,lj,jab->klab", w, w, s_syn)

    def blocks(x: np.ndarray) -> np.ndarray:  # (K, K, D, D) → (K·D, K·D)
        return x.transpose(0, 2, 1, 3).reshape(k_n * d, k_n * d)

    means, covs = [], []
    mean = np.zeros((k_n, d))
    cov = np.zeros((k_n * d, k_n * d))
    for t in range(steps):
        synthetic = t > 0
        a_t, b_t = (a, b) if synthetic else (beta, 1 - beta)
        g = a_t * s_priv + b_t * s_pub + (alpha * read if synthetic else 0.0)
        g_inv = np.linalg.pinv(g, hermitian=True)  # (K, D, D)
        rhs = a_t * r_priv + b_t * r_pub  # (K, D)
        if synthetic:
            rhs = rhs + alpha * np.einsum("kj,jab,jb->ka", w, s_syn, mean)
            q = blocks(alpha * np.einsum("kj,kab,jbc->kjac", w, g_inv, s_syn))
            noise = blocks(alpha**2 * sigma**2 * np.einsum("kab,klbc,ldc->klad", g_inv, shared, g_inv))
            cov = q @ cov @ q.T + noise
        mean = np.einsum("kab,kb->ka", g_inv, rhs)
        means.append(mean.copy())
        covs.append(cov.copy())
    return np.stack(means), np.stack(covs)


def vu_applicable(scenario) -> bool:
    """Whether a scenario meets the assumptions of :func:`vu_moments`: a linear world with fixed designs (any
    ``synthetic_features`` source; a real design is always fixed), the linear family sampling with the
    world's noise, and one policy for everyone that weights whole data sets in the loss (``mix: weight``),
    keeps only the newest synthetic data, and uses no fresh human data, no detector and no verifier."""
    world, devs = scenario.world, scenario.developers
    policies = devs.policies()
    return (world.kind == "linear" and world.fixed_design
            and devs.family.kind == "linear"
            and devs.family.noise == world.noise and devs.family.ridge == 0
            and all(p == policies[0] for p in policies)
            and all(p.mix == "weight" and p.retention == "replace" and p.human_fresh == 0
                    and p.detector is None and p.verifier is None for p in policies))


def vu_expected_distance(scenario) -> np.ndarray:
    """E‖θ̂_{t,k} − θ‖² averaged over developers, for generations 1..steps (the ``distance`` metric's
    expectation), from :func:`vu_moments` on the run's own world: its private and public data, designs and
    reading matrix W, rebuilt from the resolved scenario. Conditional on the real data and designs, so it is
    exact for every replication that shares the world seed.
    """
    from ecosystem.model import EcosystemModel  # analysis reads the ecosystem, never the other way round
    from ecosystem.network import reading_matrix

    if not vu_applicable(scenario):
        raise ValueError("vu_expected_distance: the scenario does not meet the assumptions of vu_moments")
    model = EcosystemModel(scenario)
    world, devs = model.world, scenario.developers
    data = devs.policies()[0]
    from ecosystem.scrape import first_shares

    alpha = data.synthetic
    beta = float(first_shares(data)[0])  # generation 1's private weight: β (no fresh human data here)
    k = devs.count

    def arrays(batch):
        return batch.items[:, :-1].cpu().numpy(), batch.items[:, -1].cpu().numpy()

    private = [arrays(world.original(i)) for i in range(k)]
    designs = list(world.prompts(devs.publish.samples, model.generator).cpu().numpy())
    means, covs = vu_moments(private, arrays(world.public()), designs, reading_matrix(model.graph), alpha, beta,
                             world.spec.noise, scenario.steps)
    theta = world.theta.cpu().numpy()
    d = theta.shape[0]
    bias = ((means - theta) ** 2).sum(-1)  # (T, K)
    variance = np.stack([[np.trace(c[i * d : (i + 1) * d, i * d : (i + 1) * d]) for i in range(k)] for c in covs])
    return (bias + variance).mean(1)


def vu_transition(
    private: Sequence[tuple[np.ndarray, np.ndarray]],
    public: tuple[np.ndarray, np.ndarray],
    designs: Sequence[np.ndarray],
    reading: np.ndarray,
    alpha: float,
    beta: float,
) -> np.ndarray:
    """Q ``(K·D, K·D)`` of :func:`vu_moments` for t ≥ 1 (fixed designs): (Q)_{kj} = α W_kj G_k⁺ S_j.

    Its spectral radius ρ(Q) is the rate at which the estimates forget their start (Vu et al. 2025, Thms 2–3):
    below 1 for α < 1 and rising with α; at α = 1, Q maps equal estimates θ, …, θ to themselves, so ρ = 1 and
    there is no convergence (the covariance then grows linearly).
    """
    k_n, d = len(private), public[0].shape[1]
    a, b = (1 - alpha) * beta, (1 - alpha) * (1 - beta)
    s_syn = [x.T @ x for x in designs]
    w = np.asarray(reading, dtype=float)
    q = np.zeros((k_n * d, k_n * d))
    for k in range(k_n):
        x_k = private[k][0]
        g = a * x_k.T @ x_k + b * public[0].T @ public[0] + alpha * sum(w[k, j] * s_syn[j] for j in range(k_n))
        g_inv = np.linalg.pinv(g, hermitian=True)
        for j in range(k_n):
            q[k * d : (k + 1) * d, j * d : (j + 1) * d] = alpha * w[k, j] * g_inv @ s_syn[j]
    return q


def vu_limit(means: np.ndarray, q: np.ndarray) -> np.ndarray:
    """The fixed point m_∞ = (I − Q)⁻¹ c ``(K, D)`` of the mean recursion m_t = c + Q m_{t−1} (t ≥ 1), from
    :func:`vu_moments`' ``means (T ≥ 2, K, D)`` and :func:`vu_transition`'s Q (ρ(Q) < 1, i.e. α < 1).

    Vu et al. 2025, Theorem 2: the bias m_t − m_∞ = Q^{t−1}(m_1 − m_∞) decays geometrically at the rate
    ρ(Q). When the synthetic features span ℝ^d every entity's limit draws on every entity's private data
    (private knowledge crosses over).
    """
    shape = means.shape[1:]
    c = means[1].ravel() - q @ means[0].ravel()
    return np.linalg.solve(np.eye(len(c)) - q, c).reshape(shape)


def ols_excess_loss(x: np.ndarray, sigma: float, task_var: np.ndarray) -> np.ndarray:
    """E[(θ̂ − θ)ᵀ Σ_j (θ̂ − θ)] = σ² tr(Σ_j (XᵀX)⁻¹) ``(J,)`` of ordinary least squares on the design ``x (n, D)``
    (full column rank), for tasks with diagonal feature covariances ``task_var (J, D)``.

    With ``x`` all the real data of every entity pooled, this is the oracle that Vu et al. (2025) measure
    the relative efficiency of interacting models against: the best linear unbiased use of all real data.
    """
    inv_diag = np.diag(np.linalg.inv(x.T @ x))  # (D,)
    return sigma**2 * np.asarray(task_var) @ inv_diag
