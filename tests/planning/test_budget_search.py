"""The search for λ on a long chain, where one λ can have two self-consistent plans."""

from __future__ import annotations

import numpy as np
import pytest

from graphroute.planning import NodeDemand, Planner, PoolPrices, Quorum, Retry, Step, Workflow, solve


@pytest.fixture(scope="module")
def long_chain() -> tuple[Workflow, dict[str, NodeDemand], PoolPrices]:
    """47 critical steps, a quorum and a retry loop over six models: when every step is cheap the
    run almost surely fails, which makes each step worth little — so a cheap plan is also
    self-consistent at budgets that could pay for a plan that works."""
    rng = np.random.default_rng(0)
    prices = PoolPrices.of({f"m{i}": (0.1 * (i + 1) ** 2, 0.2 * (i + 1) ** 2) for i in range(6)}, local=["m0", "m1"])
    parts = [Step(f"step{i}", criticality=float(rng.uniform(0.2, 1.0))) for i in range(47)]
    workflow = Workflow((*parts, Quorum("workers", 6, 4), Retry("solve", "critic", 3)))
    demands = {}
    for node in workflow.nodes():
        base = rng.uniform(0.95, 0.99, size=(100, 1))
        estimates = np.clip(base + np.linspace(-0.1, 0.03, 6)[None, :] + rng.normal(0, 0.05, (100, 6)), 0, 1)
        demands[node] = NodeDemand(
            node,
            estimates,
            rng.integers(100, 2000, 100).astype(float),
            250.0,
            outcomes=(rng.uniform(size=(100, 6)) < estimates).astype(float),
            contexts=np.array(rng.choice(["a", "b", "c"], 100)),
        )
    return workflow, demands, prices


def test_a_budget_is_spent_on_the_plan_that_works(long_chain) -> None:
    workflow, demands, prices = long_chain
    for budget in (0.05, 0.1, 0.15):
        plan = solve(workflow, demands, prices, budget_usd=budget)
        assert 0.85 * budget <= plan.expected_cost <= budget, (budget, plan.expected_cost)


def test_replans_for_a_moved_budget_follow_it(long_chain) -> None:
    workflow, demands, prices = long_chain
    planner = Planner(workflow, demands, prices)
    plans = {factor: planner.solve(budget_usd=0.05 * factor) for factor in (1.0, 1.1, 0.9, 1.05)}
    for factor, plan in plans.items():
        assert 0.85 * 0.05 * factor <= plan.expected_cost <= 0.05 * factor, (factor, plan.expected_cost)
    assert plans[0.9].expected_success < plans[1.0].expected_success < plans[1.1].expected_success
