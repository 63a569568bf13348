"""Cost–success curves and how two strategies compare on them.

A strategy swept over its trade-off gives points (cost per run, end-to-end success). Mixing two
settings run by run reaches any point between them, so a strategy's frontier is the *lower
convex hull* of its points: the least cost at which each success level is reachable. Two
strategies are compared at equal success on that frontier.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

Point = tuple[float, float]


def frontier(points: Sequence[Point]) -> list[Point]:
    """Lower convex hull of cost as a function of success (success strictly rising)."""
    efficient: list[Point] = []
    for cost, success in sorted(points, key=lambda p: (p[0], -p[1])):
        if not efficient or success > efficient[-1][1] + 1e-12:
            efficient.append((float(cost), float(success)))
    hull: list[Point] = []
    for point in efficient:
        while len(hull) >= 2:
            (c1, s1), (c2, s2) = hull[-2], hull[-1]
            # Drop the middle point when it lies on or above the chord: cost must be convex in success.
            if (c2 - c1) * (point[1] - s1) >= (point[0] - c1) * (s2 - s1):
                hull.pop()
            else:
                break
        hull.append(point)
    return hull


def cost_at(hull: Sequence[Point], success: float) -> float:
    """Least cost reaching ``success`` on a frontier (linear interpolation); inf beyond its top."""
    successes = [p[1] for p in hull]
    if success > successes[-1] + 1e-12:
        return float("inf")
    if success <= successes[0]:
        return hull[0][0]
    return float(np.interp(success, successes, [p[0] for p in hull]))


def compare(
    plan: Sequence[Point], baseline: Sequence[Point], *, floor: float, levels: int = 20
) -> dict[str, float | list[float]]:
    """Cost ratios plan/baseline on ``levels`` success levels from ``floor`` to the lower top.

    ``saving`` = 1 − mean ratio, ``worst`` = max ratio.
    """
    a, b = frontier(plan), frontier(baseline)
    top = min(a[-1][1], b[-1][1])
    grid = np.linspace(floor, top, levels) if top > floor else np.array([top])
    ratios = [cost_at(a, s) / cost_at(b, s) for s in grid]
    return {
        "saving": float(1.0 - np.mean(ratios)),
        "worst": float(np.max(ratios)),
        "levels": [float(s) for s in grid],
        "ratios": [float(r) for r in ratios],
    }


def match_ratio(curve: Sequence[Point], reference: Point) -> float | None:
    """Cost on ``curve`` at the reference point's success, over the reference's cost (None: unreachable)."""
    cost = cost_at(frontier(curve), reference[1])
    return None if not np.isfinite(cost) or reference[0] <= 0 else float(cost / reference[0])
