"""Line plots of results (accuracy against IPC, distillation time, stored bytes), written as PNG files."""

from __future__ import annotations

import os
from collections.abc import Collection, Mapping, Sequence

Series = Mapping[str, Sequence[tuple[float, float]]]  # label -> (x, y) points


MARKERS = "osD^v<>Ph*"


def line_plot(
    series: Series,
    xlabel: str,
    ylabel: str,
    path: str | os.PathLike,
    title: str = "",
    logx: bool = False,
    dashed: Collection[str] = (),
    logy: bool = False,
    joined: bool = True,
) -> None:
    """One line per series, points sorted by x; a figure with no points says so instead of being blank.

    Series beyond the ten colours change marker too, so no two look alike; ``dashed`` series are drawn
    dashed with hollow markers (e.g. results carried over from elsewhere). The legend sits outside the
    axes so it never hides a point. ``joined=False`` draws points only (where x does not order the points
    of one series, e.g. time across several IPCs)."""
    import matplotlib

    matplotlib.use("Agg")  # files only: no display, no GUI toolkit
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    fig, ax = plt.subplots(figsize=(7.6, 3.9), dpi=110)
    colours = plt.get_cmap("tab10" if len(series) <= 10 else "tab20").colors
    for i, (label, points) in enumerate(sorted(series.items())):
        pts = sorted(
            p
            for p in points
            if p[0] is not None and p[1] is not None and (p[0] > 0 or not logx) and (p[1] > 0 or not logy)
        )
        if not pts:
            continue
        colour, marker = colours[i % len(colours)], MARKERS[(i // len(colours)) % len(MARKERS)]
        hollow = label in dashed
        ax.plot(
            [p[0] for p in pts],
            [p[1] for p in pts],
            marker=marker,
            color=colour,
            label=label,
            linestyle="none" if not joined else "--" if hollow else "-",
            markerfacecolor="none" if hollow else colour,
        )
    if not ax.lines:
        ax.text(0.5, 0.5, "no results with this axis yet", ha="center", va="center", transform=ax.transAxes)
    if logx and ax.lines:
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())  # minor labels overlap the major ones
    if logy and ax.lines:
        ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    if ax.lines:
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    fig.tight_layout()
    fig.savefig(path, format="png")
    plt.close(fig)
