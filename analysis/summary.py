"""The one-glance summary figure of a single run (written as ``summary.png`` in its folder)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.collections import LineCollection

from ecosystem.results import RunFolder

PANELS = (
    ("nll", "held-out human NLL (nats/item)"),
    ("divergence", "mean pairwise divergence between models"),
    ("variance", "model variance (diversity)"),
    ("validity", "validity of samples (share correct)"),
    ("levenshtein", "diversity of samples (Levenshtein)"),
    ("train_synthetic_share", "synthetic share of training data"),
)


def write_summary(folder: Path) -> None:
    """Draw a run folder's ``summary.png`` (the hook ``ecosim run`` hands to the runner)."""
    run = RunFolder(folder)
    fig = summary_figure(run.model, run.agents, run.name)
    fig.savefig(Path(folder) / "summary.png", dpi=110)
    plt.close(fig)


def _developer_lines(ax: plt.Axes, agents_df: pd.DataFrame, column: str, by_group: bool) -> None:
    """One thin line per developer (one LineCollection: thousands of developers draw in a blink), coloured
    by group when there are several."""
    rows = agents_df.dropna(subset=[column])
    wide = rows.pivot(index="developer", columns="step", values=column)
    steps = wide.columns.to_numpy(dtype=float)
    lines = [np.column_stack([steps, y])[np.isfinite(y)] for y in wide.to_numpy(dtype=float)]
    group = rows.groupby("developer")["group"].first().reindex(wide.index).to_numpy()
    palette = sns.color_palette("Set1", max(int(group.max()) + 1, 1)) if by_group and len(group) else ["0.75"]
    colours = [palette[int(g)] if by_group else palette[0] for g in group]
    ax.add_collection(LineCollection(lines, colors=colours, linewidths=0.7, alpha=0.6))
    if by_group:
        for g in sorted(set(group.tolist())):
            ax.plot([], [], color=palette[int(g)], lw=0.7, label=str(g))
    ax.autoscale_view()


def summary_figure(model_df: pd.DataFrame, agents_df: pd.DataFrame, name: str) -> plt.Figure:
    """Quality, homogenization, diversity and synthetic share over generations.

    Thin lines are developers, coloured by developer group when there are several; the thick line is the
    ecosystem mean.
    """
    panels = [(c, label) for c, label in PANELS if c in model_df.columns]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.6), squeeze=False)
    groups = agents_df["group"].nunique() > 1
    for ax, (column, label) in zip(axes[0], panels, strict=True):
        if column in agents_df.columns:
            _developer_lines(ax, agents_df, column, groups)
        sns.lineplot(model_df, x="step", y=column, color="black", linewidth=2, ax=ax, label="mean")
        ax.set(xlabel="generation", ylabel="", title=label)
        values = agents_df[column] if column in agents_df.columns else model_df[column]
        if values.min() > 0 and values.max() / values.min() > 20:
            ax.set_yscale("log")  # collapse moves NLL and variance by orders of magnitude
        ax.legend(fontsize=7, title="group" if groups else None, title_fontsize=7)
    fig.suptitle(f"{name}: {agents_df['developer'].nunique()} developers", fontsize=11)
    fig.tight_layout()
    return fig
