"""The one-glance summary figure of a single run (written as ``summary.png`` in its folder)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

from analysis import figures
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


def summary_figure(model_df: pd.DataFrame, agents_df: pd.DataFrame, name: str) -> plt.Figure:
    """Quality, homogenization, diversity and synthetic share over generations.

    Thin lines are developers, coloured by developer group when there are several; the thick line is the
    ecosystem mean.
    """
    panels = [(c, label) for c, label in PANELS if c in model_df.columns]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.6), squeeze=False)
    groups = agents_df["group"].nunique() > 1
    levels = sorted(agents_df["group"].unique().tolist())
    palette = dict(zip(levels, sns.color_palette("Set1", len(levels)), strict=True))
    for ax, (column, label) in zip(axes[0], panels, strict=True):
        if column in agents_df.columns:
            figures.unit_lines(agents_df, "step", column, ["developer"], color="0.75", ax=ax, lw=0.7, alpha=0.6,
                               **({"hue": "group", "palette": palette} if groups else {}))
        sns.lineplot(model_df, x="step", y=column, color="black", linewidth=2, ax=ax, label="mean")
        ax.set(xlabel="generation", ylabel="", title=label)
        values = agents_df[column] if column in agents_df.columns else model_df[column]
        if values.min() > 0 and values.max() / values.min() > 20:
            ax.set_yscale("log")  # collapse moves NLL and variance by orders of magnitude
        ax.legend(fontsize=7, title="group" if groups else None, title_fontsize=7)
    fig.suptitle(f"{name}: {agents_df['developer'].nunique()} developers", fontsize=11)
    fig.tight_layout()
    return fig
