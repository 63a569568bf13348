"""Automatic quality signals, feedback, and the scores the bandit and planner read."""

from __future__ import annotations

import pytest
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage

from graphroute import ConfigError, TraceStore
from graphroute.feedback import feedback
from graphroute.traces.outcomes import call_outcomes, success_rates
from graphroute.traces.quality import call_details, request_fingerprint
from graphroute.traces.records import CallRecord, FeedbackRecord
from tests.traces.conftest import Recorded

ASK = [SystemMessage("You are terse."), HumanMessage("What is 2 + 2?")]
ASK_JSON = [SystemMessage("Reply in JSON with a key 'answer'."), HumanMessage("What is 2 + 2?")]


@pytest.mark.parametrize(
    ("messages", "output", "error", "expected"),
    [
        (ASK, AIMessage("4"), None, []),
        (ASK, AIMessage("I'm sorry, but I can't help with that."), None, ["refusal"]),
        (ASK, AIMessage("As an AI language model, I cannot provide that."), None, ["refusal"]),
        (ASK, AIMessage("  "), None, ["empty"]),
        (ASK_JSON, AIMessage('{"answer": 4'), None, ["unparsable"]),
        (ASK_JSON, AIMessage('```json\n{"answer": 4}\n```'), None, []),
        (ASK_JSON, AIMessage('Sure: {"answer": 4}'), None, []),
        (
            ASK,
            AIMessage("", invalid_tool_calls=[{"name": "calc", "args": "{2+", "id": "c1", "error": "bad JSON"}]),
            None,
            ["tool_call_failure"],
        ),
        (ASK, None, TimeoutError("provider timed out"), ["error"]),
    ],
    ids=["ok", "refusal", "as-an-ai", "empty", "broken-json", "fenced-json", "json-in-prose", "bad-tool-call", "error"],
)
def test_automatic_signals_of_one_call(messages, output, error, expected) -> None:
    assert call_details(messages, output, error)["quality"] == expected


def test_details_keep_the_request_fingerprint_and_scrubbed_texts() -> None:
    details = call_details(ASK, AIMessage("4, key sk-123"), redact=lambda text: text.replace("sk-123", "[redacted]"))

    assert details["request_hash"] == request_fingerprint(list(ASK)) != request_fingerprint(ASK_JSON)
    assert details["output"] == "4, key [redacted]"
    assert '"role": "user", "content": "What is 2 + 2?"' in details["prompt"]
    assert call_details(ASK, AIMessage("4"), keep_text=False)["prompt"] is None


def test_hindsight_signals_blame_the_tool_call_and_the_calls_before_a_failure(trace_store: TraceStore) -> None:
    trace_store.start_run("r1", "g")
    calls_with_tool = [*ASK, AIMessage("", tool_calls=[{"name": "calc", "args": {}, "id": "c1"}])]
    failed_tool = [*calls_with_tool, ToolMessage("calc crashed", tool_call_id="c1", status="error")]
    first = CallRecord("r1", "agent", None, "small", started_at=1.0, **call_details(ASK, calls_with_tool[-1]))
    second = CallRecord("r1", "agent", None, "small", started_at=2.0, **call_details(failed_tool, AIMessage("Sorry.")))
    broken = CallRecord("r1", "report", None, "big", started_at=3.0, error="ProviderError: 500")
    for call in (first, second, broken):
        trace_store.record_call(call)
    trace_store.end_run("r1", "error", "ProviderError: 500")

    outcomes = {o.call.call_id: o for o in call_outcomes(trace_store)}

    assert outcomes[first.call_id].signals == ("tool_call_failure", "downstream_failure")
    assert outcomes[first.call_id].score == 0.0 and outcomes[first.call_id].basis == "auto"
    assert outcomes[second.call_id].signals == ("tool_error_input", "downstream_failure")
    assert outcomes[second.call_id].score is None  # a later failure is no proof this answer was bad
    assert outcomes[broken.call_id].signals == ("error",)


def test_feedback_scores_a_run_and_a_node_and_the_bandit_reads_them(recorded: Recorded) -> None:
    first, second, _third = recorded.run_ids

    feedback(first, 1.0, traces=recorded.path)
    feedback(first, 0.0, node="write_report", comment="report misses the sunsets", traces=recorded.path)
    feedback(second, True, traces=recorded.path)

    store = recorded.store()
    outcomes = call_outcomes(store, run_id=first)
    by_node = {o.call.node: (o.score, o.basis) for o in outcomes}
    assert by_node["plan"] == (1.0, "feedback")
    assert by_node["write_report:draft"] == (0.0, "feedback")  # the node's score beats the run's
    assert by_node["write_report:title"] == (0.0, "feedback")
    rates = success_rates(store)
    assert (rates["plan", "big"].trials, rates["plan", "big"].mean) == (2, 1.0)
    assert (rates["write_report:draft", "big"].trials, rates["write_report:draft", "big"].mean) == (2, 0.5)
    assert ("plan", "small") not in rates  # never scored: no made-up figure
    [comment] = [f.comment for f in store.feedback(first, node="write_report")]
    assert comment == "report misses the sunsets"


def test_a_known_outcome_beats_feedback(recorded: Recorded) -> None:
    store = recorded.store()
    run = recorded.run_ids[0]
    feedback(run, 1.0, traces=store)
    plan_call = store.calls(run, "plan")[0]
    store.record_feedback(FeedbackRecord(run, 0.25, source="outcome", call_id=plan_call.call_id))

    scored = {o.call.call_id: (o.score, o.basis) for o in call_outcomes(store, run_id=run)}

    assert scored[plan_call.call_id] == (0.25, "outcome")


@pytest.mark.parametrize(
    ("score", "node", "message"),
    [
        (1.5, None, r"score must be in \[0, 1\]"),
        ("great", None, r"must be a number in \[0, 1\] or a bool"),
        (1.0, "summarise", r"has no node 'summarise'; its nodes are: .*write_report:draft"),
    ],
)
def test_bad_feedback_is_refused_with_the_fix(recorded: Recorded, score, node, message) -> None:
    with pytest.raises(ConfigError, match=message):
        feedback(recorded.run_ids[0], score, node=node, traces=recorded.path)


def test_feedback_on_an_unknown_run_names_where_it_looked(recorded: Recorded) -> None:
    with pytest.raises(ConfigError, match=r"unknown run id 'nope' in .*traces\.sqlite"):
        feedback("nope", 1.0, traces=recorded.path)


def test_feedback_goes_to_the_default_store_like_optimize(recorded: Recorded, data_home) -> None:
    store = TraceStore()  # <GRAPHROUTE_HOME>/traces.sqlite
    store.merge([*recorded.store().runs()])

    record = feedback(recorded.run_ids[1], 0.5)

    assert store.feedback() == [record]


def test_optimized_runs_record_fingerprints_texts_and_signals(recorded: Recorded) -> None:
    calls = recorded.store().calls()
    if calls[0].request_hash is None:
        pytest.skip("routing/dispatch.py does not pass call_details(...) into CallRecord yet")

    research = [call for call in calls if call.node == "research"]
    assert len(research) == 4 and len({call.request_hash for call in research}) == 2  # runs 1 and 3 asked alike
    assert all(call.prompt and call.output for call in calls)
    assert {call.output for call in research} == {"An answer."}
    assert all(call.quality == [] for call in calls)
