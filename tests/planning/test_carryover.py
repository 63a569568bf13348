"""A critic's rejection is something the run has learned: the next calls' estimates follow it."""

from __future__ import annotations

import numpy as np
import pytest

from graphroute.planning import NodeDemand, Planner, PoolPrices, RunState, Workflow, solve
from graphroute.planning.carryover import Carryover
from graphroute.planning.structure import Expectation, Retry

from .conftest import typical


def two_tasks(rows: int = 4000) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Half the questions from an easy task (both models right 90 %), half from a hard one (10 %);
    the estimator cannot tell the tasks apart and says 50 % everywhere."""
    rng = np.random.default_rng(0)
    task = np.repeat(["easy", "hard"], rows // 2)
    rate = np.where(task == "easy", 0.9, 0.1)[:, None]
    outcomes = (rng.random((rows, 2)) < rate).astype(float)
    return np.full((rows, 2), 0.5), outcomes, task


def test_a_failure_on_the_task_lowers_the_next_estimates_and_a_success_raises_them() -> None:
    estimates, outcomes, task = two_tasks()

    carry = Carryover.fit(estimates, outcomes, task)

    # After a failure the run is a hard one with probability 0.9: next success ≈ 0.9·0.1 + 0.1·0.9 = 0.18.
    assert carry.wrong == pytest.approx(np.full((2, 2), 0.18 / 0.5), abs=0.03)
    assert carry.right == pytest.approx(np.full((2, 2), 0.82 / 0.5), abs=0.03)
    assert carry.adjust(np.array([0.5, 0.6]), [(0, False)]) == pytest.approx([0.18, 0.216], abs=0.02)
    assert carry.adjust(np.array([0.5, 0.6]), []).tolist() == [0.5, 0.6]


def test_several_known_results_are_weighed_together_not_multiplied() -> None:
    estimates, outcomes, task = two_tasks()

    carry = Carryover.fit(estimates, outcomes, task)

    # A wrong answer (a hard task: 9 to 1) and a right verdict (an easy one: 9 to 1) cancel out:
    # the next question is right half the time, as estimated. Multiplied, the two ratios say 0.59.
    assert carry.ratio([(0, False), (1, True)]) == pytest.approx([1.0, 1.0], abs=0.08)
    assert carry.wrong[0, 0] * carry.right[1, 0] == pytest.approx(0.59, abs=0.05)
    # Two wrong answers: hard with probability 0.81 / 0.82, so the next is right 0.11 of the time.
    assert carry.adjust(np.array([0.5, 0.5]), [(0, False), (1, False)]) == pytest.approx([0.11, 0.11], abs=0.03)
    # The order the run saw them in does not matter, and a pattern is measured once.
    assert carry.ratio([(1, True), (0, False)]) is carry.ratio([(0, False), (1, True)])


def test_without_tasks_a_result_says_nothing_about_the_next_call() -> None:
    estimates, outcomes, _ = two_tasks()

    carry = Carryover.fit(estimates, outcomes, np.full(len(outcomes), "all"))

    assert carry.wrong == pytest.approx(np.ones((2, 2)), abs=0.05)
    assert carry.right == pytest.approx(np.ones((2, 2)), abs=0.05)


def test_a_retry_loop_reveals_a_rejected_answer_and_the_critic_that_caught_it() -> None:
    loop = Workflow((Retry("solve", "critic", 3),))
    state = RunState()
    state.record("solve", 0.6, model=0)
    state.record("critic", 0.7, model=1)
    assert loop.verdicts(state) == []  # the answer may have been accepted: nothing known yet
    rejected = [("solve", 0, False), ("critic", 0, True)]
    assert loop.verdicts(state, upcoming="solve") == rejected  # called again: the critic rejected it

    state.record("solve", 0.6, model=0)

    assert loop.verdicts(state) == loop.verdicts(state, upcoming="critic") == rejected


def test_after_a_rejection_the_plan_sees_the_run_is_hard(two_models: PoolPrices) -> None:
    loop = Workflow((Retry("solve", "critic", 3),))
    demands: dict[str, NodeDemand] = {"solve": typical("solve", 0.5, 0.9), "critic": typical("critic", 0.9, 0.9)}
    gloomy = Carryover(wrong=np.full((2, 2), 0.2), right=np.ones((2, 2)))
    plan = solve(loop, demands, two_models, lam=0.05, carryover=gloomy)
    state = RunState()
    first = plan.decide("solve", state=state, estimates=np.array([0.5, 0.9]), input_tokens=1e6)
    plan.observe(state, "solve", first)
    critic = plan.decide("critic", state=state, estimates=np.array([0.9, 0.9]), input_tokens=1e6)
    plan.observe(state, "critic", critic)

    second = plan.decide("solve", state=state, estimates=np.array([0.5, 0.9]), input_tokens=1e6)

    assert first.estimates.tolist() == [0.5, 0.9]  # nothing known yet: the estimates as they are
    assert second.estimates == pytest.approx([0.1, 0.18])  # the first answer was wrong: 0.2× for both


@pytest.mark.parametrize("target", [0.2, 0.5, 0.8])
def test_many_sample_calls_plan_within_a_budget_and_a_cloud_share(target: float) -> None:
    rng = np.random.default_rng(1)
    prices = PoolPrices.of({"a": (0.1, 0.1), "b": (0.2, 0.2), "c": (0.9, 0.9)}, local=["a", "b"])
    nodes = [f"n{i}" for i in range(8)]
    demands = {
        node: NodeDemand(node, np.sort(rng.random((60, 3)), axis=1), rng.integers(50, 900, 60).astype(float), 200.0)
        for node in nodes
    }
    workflow = Workflow.chain(*nodes)
    richest = solve(workflow, demands, prices, lam=1e-9).expected_cost

    by_budget = solve(workflow, demands, prices, budget_usd=target * richest)
    by_share = solve(workflow, demands, prices, cloud_share=target)

    assert by_budget.expected_cost <= target * richest * (1 + 1e-9)
    assert by_share.cloud_share <= target + 1e-9
    planner = Planner(workflow, demands, prices)
    for budget in (target * richest, 0.9 * target * richest, target * richest):  # re-plans as the budget moves
        again = planner.solve(budget_usd=budget)
        assert again.expected_cost <= budget * (1 + 1e-9)
        assert again.expected_cost >= 0.97 * solve(workflow, demands, prices, budget_usd=budget).expected_cost


def test_a_rejection_is_likelier_where_answers_fail_more() -> None:
    loop = Retry("solve", "critic", 3)
    slots = [(node, a) for a in (1, 2, 3) for node in ("solve", "critic")]
    easy = {slot: Expectation(0.9 if slot[0] == "solve" else 0.8, 1.0) for slot in slots}
    hard = {slot: Expectation(0.1 if slot[0] == "solve" else 0.8, 1.0) for slot in slots}
    state = RunState()
    state.record("solve", 0.5, model=0)
    state.record("critic", 0.8, model=0)

    before = [loop.evidence(state, e) for e in (easy, hard)]
    after = [loop.evidence(state, e, upcoming="solve") for e in (easy, hard)]

    assert before == [1.0, 1.0]  # the answer may yet be accepted
    assert after == pytest.approx([0.1 * 0.8, 0.9 * 0.8])  # wrong, and caught
