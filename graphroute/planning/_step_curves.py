"""A node's mean success, cost and cloud share per call, as step functions of worth.

This is what makes a λ evaluation cheap: a slot's expected success, cost and cloud share only
change where a sample call switches model — where two models' lines ``p·w − c`` cross — so
every node's curve is built once, all nodes in one vectorised pass (each sample's upper
envelope walked from the cheapest model), and a choice at any worth is a binary search.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence

import numpy as np

from graphroute.planning.plan import NodeDemand, choose
from graphroute.planning.pricing import PoolPrices


class StepCurve:
    """A node's mean success, cost and cloud share per call, as step functions of worth."""

    def __init__(self, base: tuple[float, float, float], worths: list[float], values: list[list[float]]) -> None:
        self.base, self.worths, self.values = base, worths, values

    def at(self, worth: float) -> tuple[float, float, float]:
        index = bisect_right(self.worths, worth)
        return self.base if index == 0 else tuple(self.values[index - 1])  # type: ignore[return-value]


def step_curves(demands: Sequence[NodeDemand], prices: PoolPrices) -> list[StepCurve]:
    """Every demand's curve, built in one vectorised pass over all their sample calls.

    Per sample call, the models it can switch between are found where two models' lines
    ``p·w − c`` cross (``w = Δc/Δp``); walking its crossings by rising worth, each one where
    the best model changes is a step of the node's curve. The steps of all nodes are sorted by
    (node, worth) together and summed per node.
    """
    estimates = np.concatenate([d.estimates for d in demands])
    truth = np.concatenate([d.truth() for d in demands])
    costs = np.concatenate([d.costs(prices) for d in demands])
    sizes = np.array([len(d.estimates) for d in demands])
    owner = np.repeat(np.arange(len(demands)), sizes)
    cloud = (~prices.local).astype(np.float64)
    base = choose(estimates, costs, 0.0)
    samples = np.arange(len(estimates))
    base_values = np.stack([truth[samples, base], costs[samples, base], cloud[base]], axis=1)
    base_mean = np.stack([np.bincount(owner, base_values[:, i], len(demands)) for i in range(3)], axis=1)
    base_mean = base_mean / sizes[:, None]

    # Walk each sample's upper envelope of the lines p·w − c from the cheapest model: the next
    # model is where the current one's line is first crossed by a better one.
    found: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
    current = base.copy()
    live = samples
    while len(live):
        p, c = estimates[live], costs[live]
        here = current[live]
        gain = p - p[np.arange(len(live)), here][:, None]
        extra = c - c[np.arange(len(live)), here][:, None]
        better = gain > 1e-12
        crossing = np.where(better & (extra > 0), extra / np.where(better, gain, 1.0), np.inf)
        worth = crossing.min(axis=1)
        moving = np.isfinite(worth)
        live, worth, here = live[moving], worth[moving], here[moving]
        if not len(live):
            break
        probe = worth * (1 + 1e-9) + 1e-300
        nxt = np.argmax(estimates[live] * probe[:, None] - costs[live], axis=1)
        stuck = nxt == here  # a crossing the probe cannot resolve: stop this sample here
        live, worth, here, nxt = live[~stuck], worth[~stuck], here[~stuck], nxt[~stuck]
        found.append((live, worth, nxt, here))
        current[live] = nxt
    if found:
        rows, worths, picks, previous = (np.concatenate(parts) for parts in zip(*found, strict=True))
    else:
        rows = picks = previous = np.zeros(0, dtype=np.int64)
        worths = np.zeros(0)
    steps = (
        np.stack(
            [
                truth[rows, picks] - truth[rows, previous],
                costs[rows, picks] - costs[rows, previous],
                cloud[picks] - cloud[previous],
            ],
            axis=1,
        )
        / sizes[owner[rows], None]
    )
    node = owner[rows]
    order = np.lexsort((worths, node))
    node, worths, steps = node[order], worths[order], steps[order]
    totals = np.cumsum(steps, axis=0)
    bounds = np.searchsorted(node, np.arange(len(demands) + 1))
    before = np.vstack([np.zeros((1, 3)), totals])[bounds[:-1]]  # the running sum where each node starts
    values = (base_mean[node] + totals - before[node]).tolist()
    all_worths, bases = worths.tolist(), base_mean.tolist()
    return [
        StepCurve(tuple(bases[i]), all_worths[bounds[i] : bounds[i + 1]], values[bounds[i] : bounds[i + 1]])  # type: ignore[arg-type]
        for i in range(len(demands))
    ]
