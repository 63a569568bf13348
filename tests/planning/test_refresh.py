"""Re-planning from traces while an app runs: the plan learns, the pacer keeps its correction."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import pytest

from graphroute import TraceStore, optimize
from graphroute.errors import ConfigError
from graphroute.planning import BudgetPacer, PlannedRouter, Workflow, solve
from graphroute.planning.refresh import PlanRefresher
from graphroute.testing import Reply, ScriptedProvider
from tests.planning.conftest import local_and_cloud, typical
from tests.planning.test_router import chain


def small_plan(two_models, lam: float):
    return solve(Workflow.chain("a"), {"a": typical("a", 0.5, 0.9)}, two_models, lam=lam)


def test_a_replan_is_started_every_n_runs_and_never_twice_at_once() -> None:
    release = threading.Event()
    made = []

    def make_plan():
        release.wait(5)
        made.append(1)
        return "plan"

    adopted = []
    refresher = PlanRefresher(make_plan, every=3)
    started = [refresher.run_finished(adopted.append) for _ in range(6)]
    assert started == [False, False, True, False, False, False]  # the 6th run: one is still running
    release.set()
    refresher.wait(5)
    assert adopted == ["plan"] and refresher.replans == 1
    assert [refresher.run_finished(adopted.append) for _ in range(3)] == [False, False, True]
    refresher.wait(5)
    assert adopted == ["plan", "plan"]


def test_a_failed_replan_keeps_the_current_plan_and_says_why(two_models, caplog) -> None:
    def broken():
        raise ConfigError("the trace store is gone")

    plan = small_plan(two_models, lam=1e-3)
    router = PlannedRouter(plan, refresher=PlanRefresher(broken, every=1))
    with caplog.at_level(logging.WARNING, logger="graphroute.planning.refresh"):
        router.end_run("run-1", 0.0)
        router.refresher.wait(5)
    assert router.plan is plan and router.refresher.failures == 1
    assert "re-planning failed, the current plan stays in use: the trace store is gone" in caplog.text


def test_the_pacer_keeps_what_spend_taught_it_across_a_new_plan(two_models) -> None:
    old, new = small_plan(two_models, lam=1e-3), small_plan(two_models, lam=4e-3)
    pacer = BudgetPacer(old.lam, run_budget_usd=30.0)
    pacer.lam = old.lam * 2  # overspending has doubled λ
    router = PlannedRouter(old, pacer=pacer)
    router.adopt(new)
    assert router.plan is new
    assert pacer.lam == pytest.approx(new.lam * 2)
    assert pacer.target_usd == pytest.approx(new.expected_cost)


def test_a_budgeted_app_replans_from_its_own_traces(tmp_path: Path) -> None:
    # Every call is billed 2,000 tokens in: far more than the first plan guessed from the prompts.
    with ScriptedProvider(lambda request: Reply("ok", prompt_tokens=2000, completion_tokens=100)) as provider:
        pool = local_and_cloud(provider)
        app = optimize(
            chain(), pool=pool, budget_usd=0.05, replan_every=4, traces=TraceStore(tmp_path / "traces.sqlite")
        )
        first = app.plan
        assert "profiles from priors" in str(first)
        for index in range(4):
            app.invoke({"question": f"question {index}", "notes": []})
        app.router.refresher.wait(30)
        replanned = app.plan
        assert replanned is not first and app.router.refresher.replans == 1
        assert "profiles from traces" in str(replanned)
        assert replanned.bins["solve"].input_tokens == pytest.approx(2000)
        assert first.bins["solve"].input_tokens == pytest.approx(500)  # the prior
        app.invoke({"question": "after the re-plan", "notes": []})  # routes by the new plan
        assert all(call.reason.startswith("plan: ") for call in app.last_run.calls)


@pytest.mark.parametrize("value", [0, -3, 2.5, True, "10"])
def test_replan_every_must_be_a_positive_number_of_runs(value) -> None:
    with pytest.raises(ConfigError, match="replan_every must be a whole number of runs"):
        optimize(chain(), budget_usd=0.01, replan_every=value)
