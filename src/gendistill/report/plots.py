"""Line plots of results (accuracy against IPC, distillation time, stored bytes), written as PNG files."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

Series = Mapping[str, Sequence[tuple[float, float]]]  # label -> (x, y) points


def line_plot(series: Series, xlabel: str, ylabel: str, path: str | os.PathLike, title: str = "",
              logx: bool = False) -> None:  # fmt: skip
    """One line per series, points sorted by x; a figure with no points says so instead of being blank."""
    import matplotlib

    matplotlib.use("Agg")  # files only: no display, no GUI toolkit
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.6, 3.8), dpi=110)
    for label, points in sorted(series.items()):
        pts = sorted(p for p in points if p[0] is not None and p[1] is not None and (p[0] > 0 or not logx))
        if pts:
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=label)
    if not ax.lines:
        ax.text(0.5, 0.5, "no results with this axis yet", ha="center", va="center", transform=ax.transAxes)
    if logx and ax.lines:
        ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    if ax.lines:
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, format="png")
    plt.close(fig)
