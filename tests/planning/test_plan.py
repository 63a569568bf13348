"""Planner unit tests on small graphs whose optimal plans are known by hand."""

from __future__ import annotations

import numpy as np
import pytest
from langchain_core.messages import HumanMessage

from graphroute.errors import ConfigError, UnknownModelError
from graphroute.pillars.base import RouteRequest
from graphroute.planning import NodeDemand, RunState, Workflow, solve
from graphroute.planning.calibration import cloud_thresholds, quantile_thresholds
from graphroute.planning.live import pinned_demands
from graphroute.planning.router import PlannedRouter
from graphroute.planning.structure import Retry

from .conftest import MILLION, typical


def chain_demands() -> dict[str, NodeDemand]:
    # "hard": strong lifts success 0.3 → 0.9; "easy": 0.8 → 0.9. Calls cost $2 (cheap) or $20 (strong).
    return {"hard": typical("hard", 0.3, 0.9), "easy": typical("easy", 0.8, 0.9)}


@pytest.mark.parametrize(
    ("budget", "hard", "easy", "success"),
    [
        (4.0, "cheap", "cheap", 0.3 * 0.8),  # nothing affordable beyond the cheap model
        (22.0, "strong", "cheap", 0.9 * 0.8),  # one strong call: where it lifts the run most
        (40.0, "strong", "strong", 0.9 * 0.9),
    ],
)
def test_a_budget_buys_the_strong_model_where_it_matters_most(two_models, budget, hard, easy, success) -> None:
    plan = solve(Workflow.chain("hard", "easy"), chain_demands(), two_models, budget_usd=budget)
    assert plan.slots[("hard", 0)].ladder.models == (hard,)
    assert plan.slots[("easy", 0)].ladder.models == (easy,)
    assert plan.expected_success == pytest.approx(success)
    assert plan.expected_cost <= budget + 1e-9


def test_more_budget_never_buys_less_success(two_models) -> None:
    successes = [
        solve(Workflow.chain("hard", "easy"), chain_demands(), two_models, budget_usd=b).expected_success
        for b in (4.0, 10.0, 22.0, 30.0, 40.0)
    ]
    assert successes == sorted(successes)


def test_a_cloud_share_target_is_met(two_models) -> None:
    plan = solve(Workflow.chain("hard", "easy"), chain_demands(), two_models, cloud_share=0.5)
    assert plan.cloud_share <= 0.5
    assert [row["threshold"] for row in cloud_thresholds(plan)] == [0.0, None]  # hard: always cloud


def test_the_live_decision_uses_what_the_run_knows(two_models) -> None:
    plan = solve(Workflow.chain("hard", "easy"), chain_demands(), two_models, lam=1 / 250)
    # A run is worth $250; "easy" is worth 0.9 of it: 0.1 more success ($22.5) pays the $18 extra.
    assert plan.decide("easy").model == "strong"
    doomed = RunState()
    doomed.record("hard", 0.1)  # the first step most likely failed: the run is lost anyway
    assert plan.decide("easy", state=doomed).model == "cheap"


def test_the_last_critic_of_a_retry_loop_gets_the_cheapest_model(two_models) -> None:
    demands = {"solve": typical("solve", 0.5, 0.9), "critic": typical("critic", 0.5, 0.9)}
    plan = solve(Workflow((Retry("solve", "critic", attempts=2),)), demands, two_models, lam=1e-6)
    first = RunState()
    first.record("solve", 0.5)
    assert plan.decide("critic", state=first).model == "strong"  # a catch buys a retry
    last = RunState()
    for node in ("solve", "critic", "solve"):
        last.record(node, 0.5)
    assert plan.decide("critic", state=last).model == "cheap"  # nothing left to retry


def test_ladders_follow_difficulty(two_models) -> None:
    difficulty = np.linspace(0.0, 1.0, 20)
    estimates = np.stack([1.0 - difficulty, np.full(20, 0.95)], axis=1)  # cheap fails as calls get harder
    demand = NodeDemand("solve", estimates, np.full(20, 1e6), 1e6, difficulty=difficulty)
    plan = solve(Workflow.chain("solve"), {"solve": demand}, two_models, lam=1 / 60)
    ladder = plan.slots[("solve", 0)].ladder
    assert ladder.models == ("cheap", "strong")
    assert 0.2 < ladder.thresholds[0] < 0.5  # strong once 0.95 − (1 − d) pays $18: d ≥ 0.35
    assert ladder.pick(0.1) == "cheap" and ladder.pick(0.9) == "strong"
    assert "solve" in str(plan) and "cheap → ≥" in str(plan)


def test_run_contexts_change_what_later_calls_are_worth(two_models) -> None:
    # Two kinds of task: in "easy" runs both steps succeed on the cheap model; in "hard" runs
    # the second step fails whatever model runs it, so the first step's strong model is wasted.
    contexts = np.array(["easy"] * 30 + ["hard"] * 30)
    first = NodeDemand(
        "first", np.repeat([[0.5, 0.9], [0.4, 0.9]], 30, axis=0), np.full(60, 1e6), 1e6, contexts=contexts
    )
    second = NodeDemand(
        "second", np.repeat([[0.95, 0.95], [0.05, 0.05]], 30, axis=0), np.full(60, 1e6), 1e6, contexts=contexts
    )
    plan = solve(Workflow.chain("first", "second"), {"first": first, "second": second}, two_models, lam=1 / 60)
    assert plan.decide("first", estimates=np.array([0.5, 0.9])).model == "strong"
    assert plan.decide("first", estimates=np.array([0.4, 0.9])).model == "cheap"


def test_sample_calls_shared_by_every_node_count_once_in_the_run_context_model(two_models) -> None:
    # The same 600 training calls stand in for each of four steps, as they do when one prompt set
    # describes the whole workflow. Fitted on four copies, a call's nearest neighbours would be
    # counted several times over, and the 2,000-call reference would hold fewer distinct calls.
    rng = np.random.default_rng(3)
    contexts = np.array(["easy", "hard"] * 300)
    estimates = np.clip(rng.normal(np.where(contexts == "easy", 0.7, 0.4)[:, None], 0.15, (600, 2)), 0.01, 0.99)
    shared = NodeDemand("step", estimates, np.full(600, 1e3), 1e3, contexts=contexts)
    steps = ("plan", "solve", "check", "answer")
    plan = solve(Workflow.chain(*steps), dict.fromkeys(steps, shared), two_models, lam=1.0)
    assert len(plan.contexts.reference) == 600
    np.testing.assert_array_equal(np.sort(plan.contexts.reference, axis=0), np.sort(estimates, axis=0))
    # A node with calls of its own still adds them.
    own = NodeDemand("answer", estimates[:100] / 2, np.full(100, 1e3), 1e3, contexts=contexts[:100])
    plan = solve(Workflow.chain(*steps), {**dict.fromkeys(steps[:3], shared), "answer": own}, two_models, lam=1.0)
    assert len(plan.contexts.reference) == 700


def test_every_planned_node_needs_demand(two_models) -> None:
    with pytest.raises(ConfigError, match="no demand"):
        solve(Workflow.chain("a", "b"), {"a": typical("a", 0.5, 0.9)}, two_models, lam=1.0)
    with pytest.raises(ConfigError, match="exactly one"):
        solve(Workflow.chain("a"), {"a": typical("a", 0.5, 0.9)}, two_models)


def test_quantile_thresholds_send_the_requested_share_to_the_cloud() -> None:
    difficulties = {"solve": np.linspace(0, 1, 101), "check": np.linspace(0, 1, 101)}
    thresholds = quantile_thresholds(difficulties, {"solve": 0.3, "check": 0.0})
    assert thresholds["solve"] == pytest.approx(0.7)
    assert thresholds["check"] == float("inf")


@pytest.mark.parametrize(
    ("budget", "pins", "hard", "easy", "success"),
    [
        # Unpinned, $22 buys one strong call, for "hard" (0.9 · 0.8). Pinning "easy" to strong
        # spends $20 of it there, so "hard" must take the cheap model: 0.3 · 0.9.
        (22.0, {"easy": "strong"}, "cheap", "strong", 0.3 * 0.9),
        # $40 buys both strong calls; a pin to the cheap model gives its $18 back, unspent.
        (40.0, {"hard": "cheap"}, "cheap", "strong", 0.3 * 0.9),
    ],
)
def test_a_pinned_node_keeps_its_model_and_the_budget_is_spent_around_it(
    two_models, budget, pins, hard, easy, success
) -> None:
    demands = pinned_demands(chain_demands(), pins, two_models)
    plan = solve(Workflow.chain("hard", "easy"), demands, two_models, budget_usd=budget)
    assert plan.slots[("hard", 0)].ladder.models == (hard,)
    assert plan.slots[("easy", 0)].ladder.models == (easy,)
    assert plan.expected_success == pytest.approx(success)
    assert plan.expected_cost <= budget + 1e-9
    assert plan.pins == pins
    # Live, too, whatever the run knows: after a first step that surely failed, an unpinned
    # "easy" would get the cheap model (see above); a pinned one keeps its pin.
    doomed = RunState()
    doomed.record("hard", 0.0)
    for node, model in pins.items():
        assert plan.decide(node, state=doomed).model == model


def test_a_pin_to_a_model_outside_the_pool_is_named(two_models) -> None:
    with pytest.raises(UnknownModelError, match=r"unknown model 'gpt-5'.*cheap, strong"):
        pinned_demands(chain_demands(), {"easy": "gpt-5"}, two_models)


def test_a_pin_inside_a_planned_subgraph_holds_for_that_node_only(two_models) -> None:
    """The plan sees a subgraph as one node; a pin on one of its inner nodes is kept live."""
    demands = {"report": typical("report", 0.8, 0.9)}
    plan = solve(Workflow.chain("report"), demands, two_models, lam=1.0)  # success is worth $1: cheap
    plan.pins = {"report:draft": "strong"}
    router = PlannedRouter(plan)

    def model_for(node: str) -> str:
        return router.route(RouteRequest([HumanMessage("write it")], node=node)).model

    assert model_for("report:draft") == "strong"
    assert model_for("report:edit") == "cheap"


def test_an_unmeasured_outcome_counts_at_the_estimate(two_models) -> None:
    # Two sample calls of "hard"; the strong model's outcome on the second was never measured.
    estimates = np.array([[0.3, 0.9], [0.3, 0.8]])
    outcomes = np.array([[0.0, 1.0], [0.0, np.nan]])
    demand = NodeDemand("hard", estimates, np.full(2, MILLION), MILLION, outcomes=outcomes)
    np.testing.assert_allclose(demand.truth(), [[0.0, 1.0], [0.0, 0.8]])
    plan = solve(Workflow.chain("hard"), {"hard": demand}, two_models, budget_usd=25.0)
    assert plan.expected_success == pytest.approx(0.9)  # (1 + 0.8) / 2, not NaN
