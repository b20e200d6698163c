"""The one-glance summary figure of a single run (written as ``summary.png`` in its folder)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

PANELS = (
    ("nll", "held-out human NLL (nats/item)"),
    ("homogenization", "homogenization (mean pairwise divergence)"),
    ("variance", "model variance (diversity)"),
    ("train_synthetic_share", "synthetic share of training data"),
)


def summary_figure(model_df: pd.DataFrame, agents_df: pd.DataFrame, name: str) -> plt.Figure:
    """Quality, homogenization, diversity and synthetic share over generations; developers in grey."""
    panels = [(c, label) for c, label in PANELS if c in model_df.columns]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.4), squeeze=False)
    for ax, (column, label) in zip(axes[0], panels, strict=True):
        if column in agents_df.columns:
            sns.lineplot(agents_df, x="step", y=column, units="developer", estimator=None, color="0.8",
                         linewidth=0.7, ax=ax)
        sns.lineplot(model_df, x="step", y=column, color="C0", marker="o", linewidth=2, ax=ax)
        ax.set(xlabel="generation", ylabel="", title=label)
    fig.suptitle(f"{name}: {agents_df['developer'].nunique()} developers", fontsize=11)
    fig.tight_layout()
    return fig
