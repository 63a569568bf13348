"""Feedback read by time: a reader that keeps the newest time it has seen asks only for what is new."""

from __future__ import annotations

from pathlib import Path

from graphroute import TraceStore
from graphroute.pillars.bandit import BanditPillar
from graphroute.pillars.bandit_feedback import learn_from_feedback
from graphroute.traces.records import CallRecord, FeedbackRecord


def test_feedback_since_a_time_returns_only_the_rows_given_after_it(trace_store: TraceStore) -> None:
    trace_store.start_run("r1", "g")
    for node, score, at in [("plan", 1.0, 10.0), ("answer", 0.0, 20.0), ("plan", 0.5, 30.0), ("answer", 1.0, 40.0)]:
        trace_store.record_feedback(FeedbackRecord("r1", score, node=node, created_at=at))

    assert [f.created_at for f in trace_store.feedback(since=25.0)] == [30.0, 40.0]
    assert [f.created_at for f in trace_store.feedback(since=20.0)] == [30.0, 40.0]  # strictly after: a cursor
    assert [f.created_at for f in trace_store.feedback("r1", "plan", since=15.0)] == [30.0]
    assert trace_store.feedback(since=40.0) == []
    assert len(trace_store.feedback(since=None)) == 4


def test_learning_again_from_the_newest_time_seen_credits_only_the_new_scores(
    trace_store: TraceStore, tmp_path: Path
) -> None:
    bandit = BanditPillar(store=tmp_path / "bandit.sqlite", seed=0)
    trace_store.start_run("r1", "g")
    call = CallRecord("r1", "answer", None, "cheap", signals=[{"pillar": "bandit", "context": "answer|easy"}])
    trace_store.record_call(call)
    trace_store.record_feedback(FeedbackRecord("r1", 1.0, call_id=call.call_id, created_at=100.0))
    trace_store.record_feedback(FeedbackRecord("r1", 1.0, call_id=call.call_id, created_at=200.0))

    seen = learn_from_feedback(bandit, trace_store)
    assert seen == 200.0
    assert bandit.arms("answer|easy", ["cheap"])[0].plays == 2

    trace_store.record_feedback(FeedbackRecord("r1", 0.0, call_id=call.call_id, created_at=300.0))
    assert learn_from_feedback(bandit, trace_store, since=seen) == 300.0
    assert bandit.arms("answer|easy", ["cheap"])[0].plays == 3  # the two old scores were not counted again
    assert learn_from_feedback(bandit, trace_store, since=300.0) == 300.0  # nothing new: the cursor stays
    assert bandit.arms("answer|easy", ["cheap"])[0].plays == 3
