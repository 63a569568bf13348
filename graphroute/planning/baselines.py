"""The strategies a plan is measured against, each a ``Router`` the benchmark (and replay) can run.

- all-cloud / all-local: ``StaticRouter(model)`` (the foundation's, reused as is);
- ``PerCallRouter``: every call routed alone by the same success estimates and one global
  trade-off λ — RouteLLM's single threshold generalised to N models (``argmax p − λ·c``);
  a retry is a fresh call to it;
- ``RandomRouter``: the strong model with a fixed probability, else the cheap one (random
  routing at equal spend);
- ``llmselector``: LLMSelector-style greedy per-node assignment — one model per node, improved
  one node at a time while end-to-end ``P(ok) − λ·E[spend]`` rises;
- ``OracleRouter``: the cheapest model that gets the call right, knowing the outcomes (upper bound).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping

import numpy as np

from graphroute.pillars.base import RouteRequest
from graphroute.planning.plan import NodeDemand, worth_of
from graphroute.planning.pricing import CallCoster, PoolPrices
from graphroute.planning.router import EstimateSource, aligned, per_call_choice
from graphroute.planning.structure import Expectation, Workflow
from graphroute.routing.base import RouteDecision, Router
from graphroute.routing.static import StaticRouter


class PerCallRouter(Router):
    """Each call alone: the model maximising ``p̂·(1/λ) − cost``; one λ for every call."""

    def __init__(self, coster: CallCoster, estimates: EstimateSource, *, lam: float) -> None:
        self.coster, self.estimates, self.lam = coster, estimates, lam

    def route(self, request: RouteRequest) -> RouteDecision:
        prices = self.coster.prices
        costs = self.coster(request.text, request.node)
        estimates = aligned(self.estimates(request), prices)
        index = 0 if estimates is None else per_call_choice(estimates, costs, self.lam)
        return RouteDecision(prices.models[index], f"per-call: worth ${worth_of(1.0, 0.0, self.lam):.3g}")


class RandomRouter(Router):
    """``strong`` with probability ``share``, else ``cheap`` (seeded, thread-safe)."""

    def __init__(self, cheap: str, strong: str, *, share: float, seed: int = 0) -> None:
        self.cheap, self.strong, self.share = cheap, strong, share
        self._rng = np.random.default_rng(seed)
        self._lock = threading.Lock()

    def route(self, request: RouteRequest) -> RouteDecision:
        with self._lock:
            strong = bool(self._rng.random() < self.share)
        return RouteDecision(self.strong if strong else self.cheap, f"random: strong with p={self.share:.2f}")


class OracleRouter(Router):
    """The cheapest model that answers this call correctly (``correct`` knows); else the cheapest."""

    def __init__(self, coster: CallCoster, correct: Callable[[RouteRequest, str], bool]) -> None:
        self.coster, self.correct = coster, correct

    def route(self, request: RouteRequest) -> RouteDecision:
        prices = self.coster.prices
        costs = self.coster(request.text, request.node)
        for index in np.argsort(costs, kind="stable"):
            if self.correct(request, prices.models[index]):
                return RouteDecision(prices.models[index], "oracle: cheapest correct model")
        return RouteDecision(prices.models[int(np.argmin(costs))], "oracle: no model is correct; cheapest")


def _node_means(demands: Mapping[str, NodeDemand], prices: PoolPrices, labels: list[str]) -> dict:
    """Per context label (or "all"), per node: mean success and mean cost of each model."""
    out: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]] = {}
    for label in labels:
        out[label] = {}
        for node, demand in demands.items():
            rows = np.arange(len(demand.input_tokens))
            if label != "all" and demand.contexts is not None:
                rows = np.flatnonzero(np.asarray(demand.contexts).astype(str) == label)
                rows = rows if len(rows) else np.arange(len(demand.input_tokens))
            costs = prices.cost(demand.input_tokens[rows], demand.output_tokens)
            out[label][node] = (demand.truth()[rows].mean(axis=0), costs.mean(axis=0))
    return out


def llmselector(
    workflow: Workflow, demands: Mapping[str, NodeDemand], prices: PoolPrices, *, lam: float, rounds: int = 6
) -> dict[str, str]:
    """LLMSelector-style greedy: one model per node, chosen node by node for end-to-end gain."""
    labelled = [d.contexts for d in demands.values() if d.contexts is not None]
    labels = sorted({str(c) for contexts in labelled for c in contexts}) or ["all"]
    counts = np.array([sum(int((np.asarray(c).astype(str) == label).sum()) for c in labelled) for label in labels])
    weights = counts / counts.sum() if labelled else np.ones(1)
    means = _node_means(demands, prices, labels)
    nodes = workflow.nodes()
    assignment = {node: 0 for node in nodes}

    def objective(choice: Mapping[str, int]) -> float:
        total = 0.0
        for weight, label in zip(weights, labels, strict=True):
            expect = {
                slot: Expectation(
                    float(means[label][slot[0]][0][choice[slot[0]]]), float(means[label][slot[0]][1][choice[slot[0]]])
                )
                for slot in workflow.slots()
            }
            total += weight * (workflow.success(expect) - lam * workflow.cost(expect))
        return total

    best = objective(assignment)
    for _ in range(rounds):
        improved = False
        for node in nodes:
            for model in range(len(prices)):
                trial = {**assignment, node: model}
                score = objective(trial)
                if score > best + 1e-12:
                    best, assignment, improved = score, trial, True
        if not improved:
            break
    return {node: prices.models[index] for node, index in assignment.items()}


def assignment_router(assignment: Mapping[str, str], default: str) -> StaticRouter:
    """A per-node assignment (e.g. from ``llmselector``) as a router."""
    return StaticRouter(default, dict(assignment))
