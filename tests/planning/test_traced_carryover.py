"""A live app learns its carryover from its traces: call-level outcomes of runs it has made.

In half the runs every answer is wrong (a hard task), in the other half every answer is right:
a known wrong answer then says the run's next answers are likely wrong too. Scores given to a
whole run say nothing of the kind (all its calls share them by construction) and are not used.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from graphroute import ModelPool, TraceStore, optimize
from graphroute.planning.failures import ANSWER, RunFailure
from graphroute.planning.live import MIN_CARRYOVER_RUNS, plan_app
from graphroute.planning.structure import RunState
from graphroute.testing import Reply, ScriptedProvider
from graphroute.traces.records import FeedbackRecord
from tests.planning.conftest import local_and_cloud
from tests.planning.test_router import chain


@pytest.fixture
def pool():
    with ScriptedProvider(lambda request: Reply("ok", prompt_tokens=500, completion_tokens=100)) as provider:
        yield local_and_cloud(provider)


def traced_runs(pool: ModelPool, store: TraceStore, runs: int, *, per_call: bool) -> None:
    """``runs`` runs of the chain on the local model, scored hard/easy in turn."""
    app = optimize(chain(), pool=pool, traces=store)
    for index in range(runs):
        app.invoke({"question": f"question {index}", "notes": []})
        score = float(index % 2)  # even runs: a hard task, every answer wrong
        run = app.last_run
        if per_call:
            for call in run.calls:
                store.record_feedback(
                    FeedbackRecord(run.run_id, score, source="outcome", call_id=call.call_id, model=call.model)
                )
        else:
            store.record_feedback(FeedbackRecord(run.run_id, score, source="outcome"))


def test_call_level_outcomes_teach_the_plan_what_a_wrong_answer_says_about_the_run(
    pool: ModelPool, tmp_path: Path
) -> None:
    store = TraceStore(tmp_path / "traces.sqlite")
    traced_runs(pool, store, 40, per_call=True)

    plan = plan_app(chain().compile(), pool, budget_usd=0.01, traces=store)

    assert plan.carryover is not None
    local = plan.prices.index("local")
    assert plan.carryover.wrong[local, local] < 0.5 < 1.0 < plan.carryover.right[local, local]
    assert any("as 120 call-level outcomes in traced runs measured" in note for note in plan.notes)
    # Live: once the run has seen the local model's answer fail, the next step expects less of it.
    fresh, failed = RunState(), RunState()
    plan.observe(failed, "plan", plan.decide("plan", state=failed, difficulty=0.5), index=local)
    failed.fail(RunFailure("plan", 0, local, ANSWER))
    before = plan.decide("solve", state=fresh, difficulty=0.5).estimates[local]
    after = plan.decide("solve", state=failed, difficulty=0.5).estimates[local]
    assert after < before


def test_run_level_scores_and_too_few_runs_leave_the_plan_without_carryover(pool: ModelPool, tmp_path: Path) -> None:
    whole_runs = TraceStore(tmp_path / "runs.sqlite")
    traced_runs(pool, whole_runs, 40, per_call=False)
    assert plan_app(chain().compile(), pool, budget_usd=0.01, traces=whole_runs).carryover is None

    few = TraceStore(tmp_path / "few.sqlite")
    traced_runs(pool, few, MIN_CARRYOVER_RUNS - 1, per_call=True)
    assert plan_app(chain().compile(), pool, budget_usd=0.01, traces=few).carryover is None
