"""The value model: how much a call's success is worth to the run, checked by hand."""

from __future__ import annotations

import pytest

from graphroute.planning.structure import Expectation, Quorum, Retry, RunState, Step, Workflow


def flat(**success: float) -> dict[tuple[str, int], Expectation]:
    return {(node, 0): Expectation(p, 1.0) for node, p in success.items()}


def test_in_a_chain_a_step_is_worth_the_success_of_the_others() -> None:
    chain = Workflow.chain("a", "b", "c")
    expect = flat(a=0.5, b=0.8, c=0.9)
    assert chain.success(expect) == pytest.approx(0.36)
    assert chain.marginal("b", expect) == pytest.approx((0.5 * 0.9, 0.0))
    # Once "a" ran on a model estimated at 0.2, the rest of the run is worth less.
    state = RunState()
    state.record("a", 0.2)
    assert chain.marginal("b", expect, state)[0] == pytest.approx(0.2 * 0.9)


def test_a_side_branch_matters_by_its_criticality() -> None:
    workflow = Workflow((Step("main"), Step("side", criticality=0.25)))
    expect = flat(main=0.8, side=0.6)
    assert workflow.success(expect) == pytest.approx(0.8 * (1 - 0.25 * 0.4))
    assert workflow.marginal("side", expect)[0] == pytest.approx(0.25 * 0.8)


def test_a_worker_of_a_quorum_matters_only_when_it_is_pivotal() -> None:
    workflow = Workflow((Quorum("worker", width=3, need=2),))
    expect = flat(worker=0.5)
    # P(at least 2 of 3) = 3·0.25·0.5 + 0.125 = 0.5; pivotal when exactly one other succeeds: 2·0.5·0.5.
    assert workflow.success(expect) == pytest.approx(0.5)
    assert workflow.marginal("worker", expect)[0] == pytest.approx(0.5)
    state = RunState()
    state.record("worker", 1.0)
    state.record("worker", 1.0)
    assert workflow.marginal("worker", expect, state)[0] == pytest.approx(0.0)  # the quorum is already met


def retry_expect(p: float, r: float, cost: float = 1.0) -> dict[tuple[str, int], Expectation]:
    return {
        (node, a): Expectation(p if node == "solve" else r, cost) for a in (1, 2, 3) for node in ("solve", "critic")
    }


def test_a_retry_loop_values_first_attempts_less_and_the_last_critic_not_at_all() -> None:
    loop = Workflow((Retry("solve", "critic", attempts=3),))
    expect = retry_expect(p=0.5, r=0.8)
    s3 = 0.5
    s2 = 0.5 + 0.5 * 0.8 * s3
    s1 = 0.5 + 0.5 * 0.8 * s2
    assert loop.success(expect) == pytest.approx(s1)
    value, saving = loop.marginal("solve", expect)
    assert value == pytest.approx(1 - 0.8 * s2)  # a wrong first answer is often caught and retried
    assert saving > 0  # a right first answer saves the retry's spend
    state = RunState()
    for _ in range(3):
        state.record("solve", 0.4)
        state.record("critic", 0.8)
    state.calls["critic"].pop()  # the third answer is in; its critic is next
    assert loop.marginal("critic", expect, state) == pytest.approx((0.0, 0.0))
    second = RunState()
    second.record("solve", 0.3)
    second.record("critic", 0.8)
    assert loop.marginal("solve", expect, second)[0] == pytest.approx(1 - 0.8 * s3)  # escalates on retry
