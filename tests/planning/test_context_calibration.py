"""Reading a call's estimates by the kind of run it is in (``ContextCalibration``)."""

from __future__ import annotations

import numpy as np
import pytest

from graphroute.errors import ConfigError
from graphroute.planning import NodeDemand, RunState, Workflow, solve
from graphroute.planning.context import ContextCalibration, platt
from graphroute.planning.plan import QUESTION_LEVEL_WORTH
from graphroute.planning.structure import Retry


def test_platt_recovers_the_map_the_outcomes_were_drawn_from() -> None:
    rng = np.random.default_rng(0)
    estimates = rng.uniform(0.05, 0.95, 20_000)
    logits = np.log(estimates / (1 - estimates))
    outcomes = rng.random(20_000) < 1 / (1 + np.exp(-(2.0 * logits - 1.0)))
    slope, intercept = platt(estimates, outcomes.astype(float))
    assert slope == pytest.approx(2.0, abs=0.1)
    assert intercept == pytest.approx(-1.0, abs=0.1)


def test_a_context_where_estimates_run_high_reads_them_lower() -> None:
    rng = np.random.default_rng(1)
    estimates = rng.uniform(0.3, 0.9, (4000, 2))
    labels = np.array(["easy"] * 2000 + ["hard"] * 2000)
    truth = np.where(labels[:, None] == "hard", estimates / 3, estimates)  # "hard": a third as often right
    outcomes = (rng.random(truth.shape) < truth).astype(float)
    outcomes[0, 1] = np.nan  # an unmeasured pair is left out of the fit
    calibration = ContextCalibration.fit(estimates, outcomes, labels)
    assert calibration.names == ("easy", "hard")
    call = np.array([0.6, 0.6])
    easy, hard = calibration.apply(call, np.array([1.0, 0.0])), calibration.apply(call, np.array([0.0, 1.0]))
    np.testing.assert_allclose(easy, 0.6, atol=0.04)
    np.testing.assert_allclose(hard, 0.2, atol=0.04)
    np.testing.assert_allclose(calibration.apply(call, np.array([0.5, 0.5])), (easy + hard) / 2)


def two_kinds_of_run(two_models):
    """One step; in "easy" runs both models get it right, in "hard" runs only the strong one does.
    Calls show which kind they are by their estimates: easy [0.9, 0.95], hard [0.2, 0.6]."""
    contexts = np.array(["easy"] * 30 + ["hard"] * 30)
    estimates = np.repeat([[0.9, 0.95], [0.2, 0.6]], 30, axis=0)
    outcomes = np.repeat([[1.0, 1.0], [0.0, 1.0]], 30, axis=0)
    demand = NodeDemand("solve", estimates, np.full(60, 1e6), 1e6, outcomes=outcomes, contexts=contexts)
    calibration = ContextCalibration.fit(estimates, outcomes, contexts)
    return {"solve": demand}, calibration


def run_seen_as(kind: str) -> RunState:
    """A run whose earlier calls said, strongly, what kind of run it is (likelihood per context)."""
    state = RunState()
    state.evidence.extend([np.array([1.9, 0.1]) if kind == "easy" else np.array([0.1, 1.9])] * 4)
    return state


def test_a_priced_call_is_routed_by_what_the_run_says_about_its_kind(two_models) -> None:
    demands, calibration = two_kinds_of_run(two_models)
    # A run worth $100; the strong model costs $18 more. On its own estimates (0.5 vs 0.6) this
    # call is not worth it; in a hard run the cheap model almost surely fails, so it is.
    plan = solve(Workflow.chain("solve"), demands, two_models, lam=1 / 100, recalibration=calibration)
    call = np.array([0.5, 0.6])
    assert solve(Workflow.chain("solve"), demands, two_models, lam=1 / 100).decide("solve", estimates=call).model == (
        "cheap"
    )
    assert plan.decide("solve", estimates=call, state=run_seen_as("hard")).model == "strong"
    assert plan.decide("solve", estimates=call, state=run_seen_as("easy")).model == "cheap"


def test_a_call_worth_far_more_than_its_price_keeps_its_own_estimates(two_models) -> None:
    demands, calibration = two_kinds_of_run(two_models)
    lam = 1 / (2 * QUESTION_LEVEL_WORTH * 20.0)  # the call is worth 100× its priciest model
    plan = solve(Workflow.chain("solve"), demands, two_models, lam=lam, recalibration=calibration)
    call = np.array([0.5, 0.6])
    for kind in ("easy", "hard"):
        np.testing.assert_array_equal(plan.decide("solve", estimates=call, state=run_seen_as(kind)).estimates, call)


def test_a_calibration_for_other_contexts_is_refused_by_name(two_models) -> None:
    demands, _ = two_kinds_of_run(two_models)
    other = ContextCalibration.fit(np.full((4, 2), 0.5), np.ones((4, 2)), ["a", "a", "b", "b"])
    with pytest.raises(ConfigError, match=r"recalibration is for contexts \['a', 'b'\]"):
        solve(Workflow.chain("solve"), demands, two_models, lam=1.0, recalibration=other)


def test_a_retry_loop_keeps_its_own_estimates(two_models) -> None:
    # A critic's rejection tells a retry loop how its answer went; the loop steers by that
    # (Carryover, measured against the estimates as given), not by the context recalibration.
    demands, calibration = two_kinds_of_run(two_models)
    demands["critic"] = NodeDemand("critic", **{k: v for k, v in vars(demands["solve"]).items() if k != "node"})
    loop = Workflow((Retry("solve", "critic", attempts=2),))
    plan = solve(loop, demands, two_models, lam=1 / 100, recalibration=calibration)
    call = np.array([0.5, 0.6])
    np.testing.assert_array_equal(plan.decide("solve", estimates=call, state=run_seen_as("hard")).estimates, call)
