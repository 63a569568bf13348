"""Calibration: thresholds that reach a target cloud share or budget, per node.

RouteLLM calibrates one threshold so that a given share of calls goes to the strong model: the
``1 − share`` quantile of the router's scores over sample prompts. Here the share is decided
per node by the plan (``solve(..., cloud_share=x)`` or ``budget_usd=...``) — a critical node
gets more of the cloud than a side branch — and each node's threshold is then the quantile of
*its own* difficulty distribution (from outcome data, or from the difficulties its calls got
in traces).

Usage::

    plan = solve(workflow, demands, prices, cloud_share=0.2)
    cloud_thresholds(plan)                 # [{"node": "solve", "threshold": 0.62, ...}, ...]
    quantile_thresholds({"solve": difficulties}, {"solve": 0.3})
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from graphroute.planning.plan import Plan


def cloud_thresholds(plan: Plan) -> list[dict[str, object]]:
    """Per slot: the difficulty from which the plan's ladder uses a cloud model (None: never)."""
    local = dict(zip(plan.prices.models, plan.prices.local, strict=True))
    rows: list[dict[str, object]] = []
    for (node, attempt), slot in plan.slots.items():
        threshold: float | None = None
        ladder = slot.ladder
        for position, model in enumerate(ladder.models):
            if not local[model]:
                threshold = 0.0 if position == 0 else ladder.thresholds[position - 1]
                break
        rows.append(
            {
                "node": node if not attempt else f"{node} #{attempt}",
                "threshold": threshold,
                "cloud_share": slot.cloud_share,
            }
        )
    return rows


def quantile_thresholds(difficulties: Mapping[str, Sequence[float]], shares: Mapping[str, float]) -> dict[str, float]:
    """RouteLLM-style per node: the threshold sending ``shares[node]`` of its calls to the cloud."""
    out = {}
    for node, share in shares.items():
        values = np.asarray(difficulties.get(node, ()), dtype=np.float64)
        if not len(values) or share <= 0:
            out[node] = float("inf")
        elif share >= 1:
            out[node] = float("-inf")
        else:
            out[node] = float(np.quantile(values, 1.0 - share))
    return out
