"""The budget pacer: 100 runs with a scripted spend pattern stay within budget + one call."""

from __future__ import annotations

import numpy as np
import pytest
from langchain_core.messages import HumanMessage

from graphroute.errors import ConfigError
from graphroute.pillars.base import RouteRequest
from graphroute.planning import BudgetPacer, NodeDemand, PlannedRouter, PoolPrices, Workflow, solve
from graphroute.planning.router import RUN_ID_KEY

STEPS = ("plan", "solve", "answer")


def words(count: int) -> str:
    return " ".join(["word"] * count)


@pytest.fixture
def router_and_pacer() -> tuple[PlannedRouter, BudgetPacer]:
    """A free local model and a cloud model ($10 per 1M tokens); the cloud lifts success 0.6 → 0.9."""
    prices = PoolPrices.of({"local": (0.0, 0.0), "cloud": (10.0, 10.0)}, local=["local"])
    tokens = np.linspace(200, 1800, 17)  # typical prompts: 200–1,800 tokens
    demand = {step: NodeDemand(step, np.tile([0.6, 0.9], (len(tokens), 1)), tokens, 100.0) for step in STEPS}
    plan = solve(Workflow.chain(*STEPS), demand, prices, budget_usd=0.012)
    pacer = BudgetPacer(plan.lam, run_budget_usd=0.03, total_usd=2.0, runs=100, target_usd=plan.expected_cost)
    router = PlannedRouter(
        plan, estimates=lambda request: {"local": 0.6, "cloud": 0.9}, pacer=pacer, tokens=lambda text: len(text.split())
    )
    return router, pacer


def run(router: PlannedRouter, index: int, prompt_tokens: int) -> float:
    """One scripted run: three calls whose prompts have ``prompt_tokens`` tokens; returns its spend."""
    spend = 0.0
    for step in STEPS:
        request = RouteRequest([HumanMessage(words(prompt_tokens))], node=step, metadata={RUN_ID_KEY: f"run-{index}"})
        model = router.route(request).model
        spend += router.plan.prices.cost(prompt_tokens, 100.0)[router.plan.prices.index(model)]
    router.end_run(f"run-{index}", spend)
    return float(spend)


def test_a_hundred_runs_stay_within_budget_and_lambda_follows_spend(router_and_pacer) -> None:
    router, pacer = router_and_pacer
    biggest_call = float(router.plan.prices.cost(1000, 100.0).max())
    start = pacer.lam
    # Scripted pattern: 30 runs of 1,000-token prompts (three cloud calls would cost $0.033), then
    # 70 runs of 200-token prompts ($0.009).
    spends = [run(router, i, 1000 if i < 30 else 200) for i in range(100)]
    after_costly, final = pacer.history[30], pacer.history[-1]
    assert sum(spends) <= 2.0 + biggest_call
    assert max(spends) <= 0.03 + biggest_call
    assert after_costly > start  # costly runs made λ rise: later calls prefer the free model
    assert final < after_costly  # cheap runs let it fall back
    assert sum(spends[30:]) > 0  # and the cloud is used again once spend allows


def test_an_early_overspend_makes_later_runs_cheaper() -> None:
    pacer = BudgetPacer(1.0, total_usd=10.0, runs=10)
    pacer.charge(6.0)  # the first run spent 60 % of the whole budget
    pacer.end_run(6.0, charged_usd=6.0)
    assert pacer.affordable() == pytest.approx(4.0 / 9)
    assert pacer.lam == pytest.approx((6.0 / (4.0 / 9)) ** 0.5)  # λ × (spend / affordable) ** gain
    assert not pacer.allows(4.5, run_spent_usd=0.0)  # the guard keeps the rest of the budget
    assert pacer.allows(4.0, run_spent_usd=0.0)


def test_a_rolling_budget_needs_a_horizon() -> None:
    with pytest.raises(ConfigError, match="horizon"):
        BudgetPacer(1.0, total_usd=10.0)


def test_a_monthly_budget_paces_by_elapsed_time() -> None:
    now = [0.0]
    pacer = BudgetPacer(1.0, total_usd=30.0, period_s=30.0, clock=lambda: now[0])
    for day in range(1, 11):  # ten daily runs at $1 each: on track for $30 in 30 days
        now[0] = float(day)
        pacer.charge(1.0)
        pacer.end_run(1.0, charged_usd=1.0)
    assert pacer.lam == pytest.approx(1.0, rel=0.15)
    now[0] = 11.0
    pacer.charge(5.0)  # one expensive day
    pacer.end_run(5.0, charged_usd=5.0)
    assert pacer.lam > 1.2
