"""The roofline plot: measured points at their arithmetic intensity under the two roofs, prefill and decode apart."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from benchmarks.phases.points import Headline, Point
from benchmarks.phases.roofs import Peaks


def plot_roofline(
    path: Path,
    prefill: Sequence[Point],
    decode: Sequence[Point],
    headline: Headline,
    measured: Peaks,
    spec: Peaks | None,
    title: str,
) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 6))
    points = [*prefill, *decode, headline.prefill, headline.decode]
    intensities = [p.intensity for p in points]
    low = min(min(intensities), measured.ridge) / 4
    high = max(max(intensities), measured.ridge) * 4
    _roof(ax, measured, low, high, "black", "-", "measured roof")
    if spec is not None:
        _roof(ax, spec, low, high, "grey", "--", spec.source)
    ax.axvline(measured.ridge, color="grey", linestyle=":", linewidth=1)
    ax.annotate(
        f"ridge {measured.ridge:.0f} FLOP/B",
        (measured.ridge, measured.flops_per_s),
        xytext=(6, -14),
        textcoords="offset points",
        fontsize=8,
        color="grey",
    )

    contexts = sorted({p.context for p in decode})
    cmap = plt.get_cmap("viridis")
    for i, context in enumerate(contexts):
        row = sorted((p for p in decode if p.context == context), key=lambda p: p.batch)
        color = cmap(i / max(1, len(contexts) - 1) * 0.85)
        _labelled_points(
            ax, row, lambda p: str(p.batch), (3, 3), "o-", color, markersize=5, linewidth=0.8,
            label=f"decode, context {context}",
        )  # fmt: skip
    _labelled_points(
        ax, prefill, lambda p: f"{p.batch}x{p.context}", (4, -10), "s", "tab:red", markersize=6,
        label="prefill (batch x length)",
    )  # fmt: skip
    for p, star in ((headline.prefill, "tab:red"), (headline.decode, "tab:blue")):
        ax.plot(
            [p.intensity],
            [p.flops_per_s],
            "*",
            color=star,
            markersize=14,
            markeredgecolor="black",
            label=f"headline {p.phase}: {p.batch} requests, {p.tokens_per_s:,.0f} tok/s",
        )

    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(low, high)
    ax.set_xlabel("arithmetic intensity (FLOP / byte)")
    ax.set_ylabel("achieved FLOP/s")
    ax.set_title(title, fontsize=10)
    ax.grid(True, which="both", linewidth=0.3, alpha=0.5)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def _labelled_points(
    ax: Any,
    points: Sequence[Point],
    text: Callable[[Point], str],
    offset: tuple[int, int],
    style: str,
    color: Any,
    **plot: Any,
) -> None:
    """One series at (intensity, FLOP/s), each point tagged with `text(point)` in the series' colour."""
    ax.plot([p.intensity for p in points], [p.flops_per_s for p in points], style, color=color, **plot)
    for p in points:
        ax.annotate(
            text(p), (p.intensity, p.flops_per_s), xytext=offset, textcoords="offset points", fontsize=7, color=color
        )


def _roof(ax: Any, peaks: Peaks, low: float, high: float, color: str, style: str, label: str) -> None:
    xs = [low, peaks.ridge, high]
    ax.plot(
        xs,
        [peaks.attainable(x) for x in xs],
        style,
        color=color,
        linewidth=1.5,
        label=f"{label}: {peaks.flops_per_s / 1e9:,.0f} GFLOP/s, {peaks.bytes_per_s / 1e9:,.1f} GB/s",
    )
