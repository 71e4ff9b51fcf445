"""The report's figures (PNG): latency CDFs per arm, SLO attainment and goodput against the offered rate (with
each point's confidence interval as an error bar when rates were repeated)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.figure import Figure

# Fixed colours for the known arms, so every plot of every report reads the same; others take the cycle.
COLORS = {
    "colocated": "tab:orange",
    "colocated-prefill-first": "tab:red",
    "colocated-decode-first": "tab:purple",
    "disaggregated": "tab:blue",
}


def cdf_plot(
    series: Mapping[str, Sequence[float]],
    xlabel: str,
    title: str,
    path: Path,
    scale: float = 1.0,
    unit: str = "requests",
    log_x: bool = False,
) -> None:
    """Empirical CDFs, one line per arm; values are multiplied by `scale` (e.g. 1000 for ms). A log x axis
    keeps a long tail visible."""
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for arm, values in series.items():
        if not values:
            continue
        xs = sorted(v * scale for v in values)
        ys = [(i + 1) / len(xs) for i in range(len(xs))]
        ax.step(xs, ys, where="post", label=f"{arm} (n={len(xs)})", color=COLORS.get(arm))
    ax.set_xlabel(xlabel)
    ax.set_ylabel(f"fraction of {unit} ≤ x")
    if log_x:
        ax.set_xscale("log")
    ax.set_ylim(0, 1.01)
    _finish(fig, ax, title, path)


# A point of a rate plot: offered rate, value, and the value's interval (low, high; both the value for one run).
RatePoint = tuple[float, float, float, float]


def rate_plot(
    series: Mapping[str, Sequence[RatePoint]],
    ylabel: str,
    title: str,
    path: Path,
    reference: str,
    overloaded: Mapping[str, set[float]] | None = None,
) -> None:
    """One line per arm over the offered rate. `reference`: "attainment" draws the 90% line; "goodput" draws
    goodput = 90% of the offered rate. Intervals are drawn as error bars; points at an arm's `overloaded` rates are
    crossed out."""
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    rates = sorted({point[0] for points in series.values() for point in points})
    for arm, points in series.items():
        ordered = sorted(points)
        xs, ys = [p[0] for p in ordered], [p[1] for p in ordered]
        below, above = [p[1] - p[2] for p in ordered], [p[3] - p[1] for p in ordered]
        ax.errorbar(xs, ys, yerr=[below, above], marker="o", capsize=4, label=arm, color=COLORS.get(arm))
        crossed = [(x, y) for x, y, _, _ in points if x in (overloaded or {}).get(arm, set())]
        if crossed:
            cx, cy = zip(*crossed, strict=True)
            ax.scatter(cx, cy, marker="x", s=90, color="black", zorder=3, label=f"{arm}: overloaded")
    if reference == "attainment":
        ax.axhline(90, color="gray", linestyle="--", label="90% SLO attainment")
        ax.set_ylim(0, 102)
    elif rates:
        ax.plot([0, max(rates)], [0, 0.9 * max(rates)], color="gray", linestyle="--", label="90% of offered rate")
    ax.set_xlabel("offered rate, as sent (requests/s)")
    ax.set_ylabel(ylabel)
    ax.set_xlim(left=0)
    _finish(fig, ax, title, path)


def _finish(fig: Figure, ax: Axes, title: str, path: Path) -> None:
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="best")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def stacked_bars(summaries: Mapping[str, Mapping[str, tuple[float, float]]], parts: Sequence[str], title: str,
                 path: Path) -> None:  # fmt: skip
    """Two stacked bars per arm, the medians' and the p90s' of each part (seconds, drawn in ms)."""
    fig, ax = plt.subplots(figsize=(7.2, 4.2))
    arms = list(summaries)
    colors = plt.get_cmap("tab10")
    for column in (0, 1):  # 0: medians, 1: p90s
        xs = [i * 3 + column for i in range(len(arms))]
        bottoms = [0.0] * len(arms)
        for k, part in enumerate(parts):
            heights = [max(0.0, summaries[arm].get(part, (0.0, 0.0))[column]) * 1e3 for arm in arms]
            if not any(heights):
                continue
            ax.bar(xs, heights, bottom=bottoms, color=colors(k), label=part if column == 0 else None, width=0.9)
            bottoms = [b + h for b, h in zip(bottoms, heights, strict=True)]
    ax.set_xticks([i * 3 + 0.5 for i in range(len(arms))], [f"{arm}\n(median | p90)" for arm in arms])
    ax.set_ylabel("ms")
    _finish(fig, ax, title, path)
