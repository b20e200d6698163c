"""The PCA figure of Vu, Reeves & Wenger (2025): the models' outputs on the probes projected on their first
two principal components, coloured by task, at t = 0 and t = 15 (``python -m analysis.vu_paper pca``)."""

from __future__ import annotations

from pathlib import Path

import matplotlib.image
import numpy as np
import pytest
import yaml

from analysis import vu_paper
from analysis.vu_paper import grid_scenario, pca_frame, principal_components, probe_sets, simulate_thetas

SCENARIO = Path(__file__).parent.parent / "scenarios" / "papers" / "vu_alpha_beta_grid.yaml"


def test_principal_components_by_hand() -> None:
    # Centred already; the sums of squares along x and y are 2 and 0.5: PC 1 is x (80%), PC 2 is y (20%).
    points = np.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 0.5], [0.0, -0.5]])
    scores, directions, share = principal_components(points)
    np.testing.assert_allclose(np.abs(directions), np.eye(2), atol=1e-12)
    np.testing.assert_allclose(share, [0.8, 0.2])
    np.testing.assert_allclose(np.abs(scores), np.abs(points), atol=1e-12)


def test_principal_components_match_the_covariance_eigenvectors() -> None:
    rng = np.random.default_rng(0)
    points = rng.normal(size=(30, 5)) @ rng.normal(size=(5, 5)) + 3.0
    scores, directions, share = principal_components(points)
    values, vectors = np.linalg.eigh(np.cov(points.T))  # ascending
    top = vectors[:, ::-1][:, :2].T
    np.testing.assert_allclose(np.abs(np.sum(directions * top, 1)), 1.0, atol=1e-10)  # same axes, up to sign
    np.testing.assert_allclose(share, values[::-1][:2] / values.sum(), rtol=1e-10)
    np.testing.assert_allclose(scores, (points - points.mean(0)) @ directions.T)
    assert (directions[np.arange(2), np.abs(directions).argmax(1)] > 0).all()  # the sign convention


def test_pca_figure_colours_each_task_and_the_projection_is_the_outputs(tmp_path: Path, monkeypatch) -> None:
    base = yaml.safe_load(SCENARIO.read_text()) | {"steps": 4}
    reps = 3
    frame = pca_frame(base, reps, alphas=(0.0, 0.5))
    assert set(frame["t"]) == {0, 3} and set(frame["task"]) == {0, 1}
    assert len(frame) == 2 * 2 * 2 * reps  # α × t × task × replication
    # At α = 0 the two outputs are fixed points and PC 1 holds all the variance: the tasks' distance in
    # the plane is the distance between the output vectors ŷ_k = X θ̂_k on the stacked probes.
    thetas, model = simulate_thetas(grid_scenario(base, 0.0, 0.5), 1)
    x = np.concatenate(list(probe_sets(model).values()))
    gap = np.linalg.norm(x @ (thetas[0, 0, 0] - thetas[0, 0, 1]))
    sep = vu_paper.task_separation(frame)
    assert sep.loc[(0.0, 0), "between"] == pytest.approx(gap, rel=1e-9)
    assert sep.loc[(0.0, 0), "within"] == pytest.approx(0.0, abs=1e-9)
    assert frame.attrs["explained"][0.0][0] == pytest.approx(1.0)
    # α = 0.5: the clusters move together (homogenization), from the paper's t = 0 to the last t.
    assert sep.loc[(0.5, 3), "between"] < 0.5 * sep.loc[(0.5, 0), "between"]

    captured = {}
    save = vu_paper.figures.save

    def keep(fig, path):
        captured["axes"] = fig.axes
        return save(fig, path)

    monkeypatch.setattr(vu_paper.figures, "save", keep)
    path = vu_paper.pca_figure(frame, tmp_path / "pca.png")
    assert matplotlib.image.imread(path).shape[0] > 100
    axes = [ax for ax in captured["axes"] if ax.get_visible()]
    assert len(axes) == 4  # α rows × (t = 0, last t)
    for ax in axes:
        groups = [c for c in ax.collections if (c.get_gid() or "").startswith("task ")]
        assert sorted(c.get_gid() for c in groups) == ["task 0", "task 1"]  # one colour per task
        assert all(len(c.get_offsets()) == reps for c in groups)
        assert len({tuple(np.round(c.get_facecolor()[0], 6)) for c in groups}) == 2


def test_pca_command_writes_the_figure(tmp_path: Path, capsys) -> None:
    small = tmp_path / "grid.yaml"
    small.write_text(yaml.safe_dump(yaml.safe_load(SCENARIO.read_text()) | {"steps": 3}))
    assert vu_paper.main(["pca", str(small), "--reps", "2", "--figure", str(tmp_path / "out.png")]) == 0
    assert (tmp_path / "out.png").stat().st_size > 0
    assert "between" in capsys.readouterr().out
