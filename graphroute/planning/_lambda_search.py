"""The search for λ: narrowing a bracket on log λ until the plan's spend meets its limit.

Kept apart from the problem it steers: it only sees ``gap(log λ, warm start)``, the log of
measured spend (or cloud share) over the limit, and the fixed points to warm-start from.
"""

from __future__ import annotations

from collections.abc import Callable

from graphroute.planning._problem import Expect


def search(
    gap: Callable[[float, list[Expect] | None], tuple[float, list[Expect]]],
    lo: float,
    hi: float,
    g_lo: float,
    g_hi: float,
    warm: list[Expect],
    iterations: int,
    tolerance: float,
    warm_over: list[Expect] | None = None,
) -> tuple[float, tuple[float, list[Expect]]]:
    """Narrow ``[lo, hi]`` (log λ; over budget at ``lo``, within at ``hi``) to ``tolerance``.

    Regula falsi with the Illinois correction on log(spend / budget), which is close to linear
    in log λ over wide ranges, so a handful of evaluations replaces ~22 bisection steps; every
    step is clamped to the middle 90 % of the bracket and falls back to bisection when the
    secant stalls, so it never does worse than bisection by more than a constant.

    Each evaluation starts from the fixed point of the nearest λ that was over the limit
    (``warm_over``, a plan that spends more): where two self-consistent plans exist at one λ
    (see ``solver.py``), the search then follows the more successful one, so spend falls
    steadily as λ rises instead of jumping between the two with the search's path.
    """
    side = 0
    for _ in range(iterations):
        if hi - lo <= tolerance:
            break
        x = hi - g_hi * (hi - lo) / (g_hi - g_lo) if g_hi != g_lo else (lo + hi) / 2
        width = hi - lo
        x = min(max(x, lo + 0.05 * width), hi - 0.05 * width)
        if abs(side) >= 2 or not (g_lo < 8 and g_hi > -8):  # stalled, or still on the flat ends
            x, side = (lo + hi) / 2, 0
        g, expects = gap(x, warm_over if warm_over is not None else warm)
        if g == (g_lo if g > 0 else g_hi) and g != 0:  # a flat stretch: the secant learns nothing there
            side = 2
        if g > 0:
            lo, g_lo, warm_over = x, g, expects
            side = side + 1 if side >= 0 else 1
            g_hi /= 2  # Illinois: the end that stays is given half its weight
        else:
            hi, g_hi, warm = x, g, expects
            side = side - 1 if side <= 0 else -1
            g_lo /= 2
    return lo, (hi, warm)
