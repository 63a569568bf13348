"""``BudgetGuard``: a router's choice stands while the budget can pay for it, then the cheapest model serves."""

from __future__ import annotations

import pytest
from langchain_core.messages import HumanMessage

from graphroute import ModelPool
from graphroute.pillars.bandit import Outcome
from graphroute.pillars.base import RouteRequest
from graphroute.planning.pacing import BudgetPacer
from graphroute.routing.session import RoutingSession, active_session
from graphroute.routing.static import StaticRouter
from graphroute.scaleout.budget import BudgetGuard
from tests.planning.conftest import local_and_cloud

POOL = ModelPool.from_dict(
    {
        "models": {
            "local": {"provider": "openai-compatible", "model": "m", "base_url": "http://127.0.0.1:9/v1"},
            "cloud": {
                "provider": "openai-compatible",
                "model": "m",
                "base_url": "http://127.0.0.1:9/v1",
                "locality": "cloud",
                "input_price": 1000.0,
                "output_price": 1000.0,
            },
        }
    }
)
REQUEST = RouteRequest([HumanMessage("word " * 10)], node="answer")  # 10 input tokens
CALL = (10 + 10) * 1000.0 / 1_000_000  # the estimate: 10 tokens in, 10 expected out


def guard(total_usd: float) -> BudgetGuard:
    pacer = BudgetPacer(1.0, total_usd=total_usd, runs=10)
    return BudgetGuard(StaticRouter("cloud", known=POOL.names), POOL, pacer, expected_output_tokens=10)


def test_the_choice_stands_while_the_budget_can_pay_for_it() -> None:
    router = guard(total_usd=CALL * 2)

    assert router.cheapest == "local"
    first = router.route(REQUEST)
    router.observe(first, Outcome(cost_usd=CALL))
    second = router.route(REQUEST)
    router.observe(second, Outcome(cost_usd=CALL))
    third = router.route(REQUEST)

    assert (first.model, second.model, third.model) == ("cloud", "cloud", "local")
    assert "budget guard: cloud" in third.reason and "→ local" in third.reason
    assert router.pacer.spent_usd == pytest.approx(2 * CALL)


def test_a_run_end_books_what_its_calls_were_not_charged_for() -> None:
    router = guard(total_usd=1.0)
    session = RoutingSession(pool=POOL, router=router, run_id="run-1")
    with active_session(session):
        router.observe(router.route(REQUEST), Outcome(cost_usd=0.01))

    router.end_run("run-1", cost_usd=0.03)  # e.g. a fallback answered after the chosen model failed

    assert router.pacer.spent_usd == pytest.approx(0.03)
    assert router.pacer.finished_runs == 1
    assert router.default == "cloud"  # the wrapped router's own attributes show through


def test_two_optimized_apps_share_one_rolling_budget_through_redis(redis_url: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Two workers of one app, each with its own process-local pacer, one ledger in Redis: together
    they spend the rolling budget once, not twice."""
    from graphroute import RollingBudget, TraceStore, optimize
    from graphroute.testing import Reply, ScriptedProvider
    from tests.planning.test_router import chain

    with ScriptedProvider(lambda request: Reply("ok", prompt_tokens=500, completion_tokens=100)) as provider:
        pool = local_and_cloud(provider)
        one_call = pool["cloud"].cost(500, 100)
        store = TraceStore(tmp_path / "traces.sqlite")
        shared = RollingBudget(total_usd=0.03, runs=20, ledger=redis_url)
        workers = [
            optimize(chain(), pool=pool, budget_usd=0.008, rolling_budget=shared, traces=store, replan_every=None)
            for _ in range(2)
        ]
        for index in range(40):  # 20 runs each: alone, each worker would spend the whole $0.03
            workers[index % 2].invoke({"question": f"question {index}", "notes": []})
    spent = sum(call.cost_usd for call in store.calls())
    assert 0 < spent <= 0.03 + 2 * one_call  # at most one call over per worker
