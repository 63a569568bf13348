"""The strategies the plan is measured against, and how curves are compared."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from langchain_core.messages import HumanMessage

from graphroute.pillars.base import RouteRequest
from graphroute.planning import CallCoster, Workflow
from graphroute.planning.baselines import OracleRouter, PerCallRouter, RandomRouter, llmselector
from graphroute.planning.curves import compare, cost_at, frontier, match_ratio
from graphroute.planning.structure import Expectation

from .conftest import typical


def request(text: str = "question", node: str = "solve") -> RouteRequest:
    return RouteRequest([HumanMessage(text)], node=node)


def test_per_call_routing_trades_success_for_cost_with_one_lambda(two_models) -> None:
    coster = CallCoster(two_models, {"solve": 1_000_000}, tokens=lambda text: 1_000_000)  # $2 or $20 a call
    estimates = lambda r: {"cheap": 0.5, "strong": 0.9}  # noqa: E731
    assert PerCallRouter(coster, estimates, lam=1 / 100).route(request()).model == "strong"  # 0.4 × $100 > $18
    assert PerCallRouter(coster, estimates, lam=1 / 40).route(request()).model == "cheap"  # 0.4 × $40 < $18


def test_the_oracle_takes_the_cheapest_correct_model(two_models) -> None:
    coster = CallCoster(two_models, tokens=lambda text: 100)
    assert OracleRouter(coster, lambda r, model: model == "strong").route(request()).model == "strong"
    assert OracleRouter(coster, lambda r, model: True).route(request()).model == "cheap"
    assert OracleRouter(coster, lambda r, model: False).route(request()).model == "cheap"


def test_random_routing_sends_the_requested_share_to_the_strong_model() -> None:
    router = RandomRouter("cheap", "strong", share=0.3, seed=1)
    picks = [router.route(request()).model for _ in range(2000)]
    assert picks.count("strong") / len(picks) == pytest.approx(0.3, abs=0.03)


def test_llmselector_finds_the_best_per_node_assignment_of_a_small_chain(two_models) -> None:
    demands = {"a": typical("a", 0.3, 0.9), "b": typical("b", 0.8, 0.9), "c": typical("c", 0.6, 0.95)}
    workflow = Workflow.chain("a", "b", "c")
    lam = 1 / 60

    def objective(models: dict[str, int]) -> float:
        expect = {
            (n, 0): Expectation(float(demands[n].estimates[0, m]), 2.0 if m == 0 else 20.0) for n, m in models.items()
        }
        return workflow.success(expect) - lam * workflow.cost(expect)

    best = max((dict(zip("abc", combo, strict=True)) for combo in itertools.product((0, 1), repeat=3)), key=objective)
    expected = {n: two_models.models[m] for n, m in best.items()}
    assert llmselector(workflow, demands, two_models, lam=lam) == expected


def test_frontiers_and_their_comparison() -> None:
    points = [(1.0, 0.5), (2.0, 0.7), (3.0, 0.6), (4.0, 0.9), (10.0, 0.95)]
    assert frontier(points) == [(1.0, 0.5), (2.0, 0.7), (4.0, 0.9), (10.0, 0.95)]
    assert cost_at(frontier(points), 0.8) == pytest.approx(3.0)
    assert cost_at(frontier(points), 0.99) == float("inf")
    half = [(c / 2, s) for c, s in points]
    result = compare(half, points, floor=0.5)
    assert result["saving"] == pytest.approx(0.5) and result["worst"] == pytest.approx(0.5)
    assert match_ratio(points, (8.0, 0.9)) == pytest.approx(0.5)
    assert np.isclose(compare(points, points, floor=0.5)["worst"], 1.0)
