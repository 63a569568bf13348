"""From an app's ``NodeProfile``s (graph inspection) to what the solver needs.

Each model-calling node becomes a ``Step`` weighted by its criticality (how likely a wrong
output sinks the run) and called ``calls_per_run`` times; its sample calls are the profile's
complexity bins (difficulty at each bin's centre, weighted by the bin's probability) with the
profile's token counts.

Per-model success on a call of difficulty ``d`` comes from the success estimator when one
covers the pool's models; otherwise from a *skill* per model (its success on a call of medium
difficulty): ``p(d) = skill ** (2d)`` — certain on trivial calls, ``skill`` at d = 0.5,
``skill²`` on the hardest. Skills come from the caller (measured, e.g. from feedback), else
from a placeholder prior that ranks models by price: 0.5 for the cheapest up to 0.9 for the
dearest. The prior only orders models sensibly until traces or feedback measure them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from graphroute.errors import ConfigError
from graphroute.planning.plan import NodeDemand
from graphroute.planning.pricing import PoolPrices
from graphroute.planning.shape import infer_workflow
from graphroute.planning.structure import Step, Workflow

SAMPLES_PER_NODE = 20


def prior_skills(prices: PoolPrices) -> dict[str, float]:
    """The price-rank prior: cheapest 0.5 … dearest 0.9 (one model: 0.7)."""
    n = len(prices)
    if n == 1:
        return {prices.models[0]: 0.7}
    return {model: 0.5 + 0.4 * rank / (n - 1) for rank, model in enumerate(prices.models)}


def success_at(skills: np.ndarray, difficulty: np.ndarray) -> np.ndarray:
    """``[k, m]`` success of each model at each difficulty: ``skill ** (2d)``."""
    return np.clip(skills[None, :], 1e-6, 1.0) ** (2.0 * np.asarray(difficulty, dtype=np.float64)[:, None])


def plan_inputs(
    profiles: Mapping[str, Any],
    prices: PoolPrices,
    *,
    skills: Mapping[str, float] | None = None,
    graph: Any = None,
    quorums: Mapping[str, float] | None = None,
) -> tuple[Workflow, dict[str, NodeDemand]]:
    """The workflow and per-node demands of an annotated graph (``annotate(graph, ...)``'s output).

    With the inspected ``graph``, solver/critic loops become ``Retry`` parts and ``quorums``
    declare fan-outs that need only some copies to succeed (``shape.infer_workflow``).
    """
    known = {**prior_skills(prices), **(skills or {})}
    skill = np.array([known[m] for m in prices.models])
    steps: list[Step] = []
    demands: dict[str, NodeDemand] = {}
    for node, profile in profiles.items():
        if getattr(profile, "kind", "llm") != "llm" or profile.calls_per_run <= 0:
            continue
        bins = np.asarray(profile.complexity.bins, dtype=np.float64)
        centres = (np.arange(len(bins)) + 0.5) / len(bins)
        counts = np.maximum(np.round(bins / bins.sum() * SAMPLES_PER_NODE), 0).astype(int)
        difficulty = np.repeat(centres, counts) if counts.sum() else np.array([profile.complexity.mean])
        demands[node] = NodeDemand(
            node,
            success_at(skill, difficulty),
            np.full(len(difficulty), float(profile.input_tokens)),
            float(profile.output_tokens),
            difficulty=difficulty,
        )
        criticality = float(np.clip(profile.criticality, 0.0, 1.0))
        steps.append(Step(node, calls=float(profile.calls_per_run), criticality=criticality))
    if not steps:
        raise ConfigError("no node of this graph calls a model: there is nothing to plan")
    if graph is not None:
        shape = {step.node: (step.calls, step.criticality) for step in steps}
        return infer_workflow(graph, shape, quorums=quorums), demands
    if quorums:
        raise ConfigError("quorums need the app's graph (plan_inputs(..., graph=inspect(app)))")
    return Workflow(tuple(steps)), demands
