"""Replay results shown: a rich table for the terminal and a cost–quality plot (matplotlib).

Estimates never pass for measurements: an estimated latency or quality is printed with ``~``
and its basis, and drawn as a hollow marker.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

from rich.table import Table

from graphroute.errors import MissingExtraError
from graphroute.traces.replay import PlanResult


def money(value: float) -> str:
    """USD with enough digits for sub-cent runs: ``$12.35``, ``$0.004210``, ``$3.20e-06``."""
    if value == 0:
        return "$0"
    if abs(value) >= 100:
        return f"${value:,.2f}"
    if abs(value) >= 1:
        return f"${value:.4f}"
    if abs(value) >= 1e-4:
        return f"${value:.6f}"
    return f"${value:.2e}"


def change(result: PlanResult) -> str:
    ratio = result.cost_ratio
    if ratio is None:
        return "n/a"
    if abs(ratio - 1) < 5e-4:
        return "="
    return f"{(ratio - 1) * 100:+.1f}%".replace("-", "−")


def quality_text(result: PlanResult) -> tuple[str, str]:
    """(value, basis) as shown: ``~`` and the known share on anything estimated."""
    if result.quality is None and result.unscored_calls and result.unscored_calls < result.calls:
        return "n/a", f"unknown: {result.unscored_calls} of {result.calls} unscored"
    if result.quality is None:
        return "n/a", "unknown: no outcomes"
    if result.quality_basis == "exact":
        return f"{result.quality:.3f}", "exact"
    return f"~{result.quality:.3f}", f"estimated ({result.quality_known_share:.0%} known)"


def latency_text(result: PlanResult) -> str:
    if result.latency_s is None:
        return "n/a"
    return f"{'~' if result.latency_estimated else ''}{result.latency_s:.2f}"


def replay_table(results: Sequence[PlanResult], *, title: str = "Replay") -> Table:
    """One row per plan: cost, cost vs recorded, latency, quality and its basis, cloud share, models."""
    runs = results[0].runs if results else 0
    calls = results[0].calls if results else 0
    table = Table(title=f"{title} — {runs} runs, {calls} calls", title_justify="left")
    for column, justify in (
        ("plan", "left"),
        ("cost", "right"),
        ("vs recorded", "right"),
        ("latency s/run", "right"),
        ("quality", "right"),
        ("quality basis", "left"),
        ("cloud share", "right"),
        ("models (calls)", "left"),
    ):
        table.add_column(column, justify=justify, no_wrap=column != "models (calls)")  # type: ignore[arg-type]
    for result in results:
        quality, basis = quality_text(result)
        share = "n/a" if result.cloud_share is None else f"{result.cloud_share:.0%}"
        mix = ", ".join(f"{model} {count}" for model, count in result.models.items())
        table.add_row(
            result.name, money(result.cost_usd), change(result), latency_text(result), quality, basis, share, mix
        )
    table.caption = "~ = estimated (latency: per-model recorded figures; quality: success model, not a known result)"
    return table


def _coincident(results: Sequence[PlanResult]) -> dict[tuple[float, float], list[str]]:
    """Plans landing on the same point share one label (``recorded = as-recorded``)."""
    points: dict[tuple[float, float], list[str]] = {}
    for result in results:
        quality = 0.0 if result.quality is None else result.quality
        key = next(
            (
                k
                for k in points
                if math.isclose(k[0], result.cost_usd, rel_tol=1e-9, abs_tol=1e-15)
                and math.isclose(k[1], quality, abs_tol=1e-9)
            ),
            (result.cost_usd, quality),
        )
        points.setdefault(key, []).append(result.name)
    return points


def cost_quality_plot(results: Sequence[PlanResult], path: Path | str, *, title: str = "Cost vs quality") -> Path:
    """A PNG with one point per plan: cost (x) against quality (y); hollow markers are estimates.

    Plans without any quality figure are drawn on the x axis as crosses, labelled "quality n/a".
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise MissingExtraError("the cost–quality plot", "plot") from None
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure, axes = plt.subplots(figsize=(7.5, 5), dpi=120)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for number, result in enumerate(results):
        colour = colours[number % len(colours)]
        if result.quality is None:
            axes.scatter([result.cost_usd], [0.0], marker="x", color=colour, s=70, label=f"{result.name} (quality n/a)")
            continue
        exact = result.quality_basis == "exact"
        basis = "exact" if exact else f"estimated, {result.quality_known_share:.0%} known"
        axes.scatter(
            [result.cost_usd],
            [result.quality],
            s=90,
            marker="o",
            color=colour if exact else "none",
            edgecolors=colour,
            linewidths=2,
            label=f"{result.name} ({basis})",
        )
    for (cost, quality), names in _coincident(results).items():
        axes.annotate(" = ".join(names), (cost, quality), textcoords="offset points", xytext=(6, 6), fontsize=9)
    axes.set_xlabel("cost of the recorded runs under the plan (USD)")
    axes.set_ylabel("quality (mean call success)")
    axes.set_ylim(-0.05, 1.05)
    widest = max((r.cost_usd for r in results), default=0.0) or 1e-6
    axes.set_xlim(-0.04 * widest, 1.15 * widest)
    axes.grid(True, alpha=0.3)
    runs = results[0].runs if results else 0
    axes.set_title(f"{title} — {runs} recorded runs (hollow = estimated)")
    axes.legend(fontsize=8, loc="best")
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
    return path
