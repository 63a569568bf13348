"""Preference pairs: two models answered the same request, and scores say which did better."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage
from typer.testing import CliRunner

from graphroute import TraceStore
from graphroute.cli import app as cli
from graphroute.feedback import feedback
from graphroute.traces.quality import call_details
from graphroute.traces.records import CallRecord, FeedbackRecord
from tests.traces.conftest import Recorded

REQUEST = [SystemMessage("Answer in one sentence."), HumanMessage("Why is the sky blue?")]


def record_answers(store: TraceStore, run_id: str, answers: dict[str, str]) -> dict[str, CallRecord]:
    """The same request answered by several models (an exploration or shadow call), as the router records it."""
    store.start_run(run_id, "g")
    calls = {}
    for model, text in answers.items():
        call = CallRecord(run_id, "research", None, model, **call_details(REQUEST, AIMessage(text)))
        store.record_call(call)
        calls[model] = call
    store.end_run(run_id)
    return calls


def test_scored_answers_to_the_same_request_become_a_pair(trace_store: TraceStore, tmp_path: Path) -> None:
    calls = record_answers(trace_store, "r1", {"small": "Because.", "big": "Rayleigh scattering favours blue light."})
    trace_store.record_feedback(FeedbackRecord("r1", 1.0, source="outcome", call_id=calls["big"].call_id))
    trace_store.record_feedback(FeedbackRecord("r1", 0.0, source="outcome", call_id=calls["small"].call_id))
    out = tmp_path / "pairs.jsonl"

    result = CliRunner().invoke(cli, ["export-preferences", str(trace_store.path), "--out", str(out)])

    assert result.exit_code == 0, result.output
    assert "1 preference pairs" in result.output
    [pair] = [json.loads(line) for line in out.read_text().splitlines()]
    assert pair["prompt"] == [
        {"role": "system", "content": "Answer in one sentence."},
        {"role": "user", "content": "Why is the sky blue?"},
    ]
    assert pair["chosen"] == [{"role": "assistant", "content": "Rayleigh scattering favours blue light."}]
    assert pair["rejected"] == [{"role": "assistant", "content": "Because."}]
    assert (pair["meta"]["chosen_model"], pair["meta"]["rejected_model"]) == ("big", "small")


def test_automatic_failures_and_an_outcome_file_rank_answers_too(trace_store: TraceStore, tmp_path: Path) -> None:
    calls = record_answers(trace_store, "r1", {"small": "I'm sorry, but I can't help with that.", "big": "Scattering."})
    outcomes = tmp_path / "outcomes.jsonl"
    outcomes.write_text(json.dumps({"call_id": calls["big"].call_id, "score": 0.9}) + "\n")
    out = tmp_path / "pairs.jsonl"

    result = CliRunner().invoke(
        cli,
        [
            "export-preferences",
            str(trace_store.path),
            "--out",
            str(out),
            "--outcomes",
            str(outcomes),
            "--format",
            "text",
        ],
    )

    assert result.exit_code == 0, result.output
    [pair] = [json.loads(line) for line in out.read_text().splitlines()]
    assert pair["prompt"] == "system: Answer in one sentence.\n\nuser: Why is the sky blue?"
    assert (pair["chosen"], pair["rejected"]) == ("Scattering.", "I'm sorry, but I can't help with that.")
    assert (pair["meta"]["chosen_score"], pair["meta"]["rejected_score"]) == (0.9, 0.0)  # the refusal scores 0


@pytest.mark.parametrize(
    ("scores", "margin", "pairs"),
    [((1.0, 1.0), 0.0, 0), ((0.6, 0.5), 0.2, 0), ((0.9, 0.5), 0.2, 1)],
    ids=["tie", "within-margin", "beyond-margin"],
)
def test_ties_and_small_differences_give_no_pair(
    trace_store: TraceStore, tmp_path: Path, scores, margin, pairs
) -> None:
    calls = record_answers(trace_store, "r1", {"small": "Short.", "big": "Longer."})
    for model, score in zip(("small", "big"), scores, strict=True):
        trace_store.record_feedback(FeedbackRecord("r1", score, source="outcome", call_id=calls[model].call_id))
    out = tmp_path / "pairs.jsonl"

    result = CliRunner().invoke(
        cli, ["export-preferences", str(trace_store.path), "--out", str(out), "--margin", str(margin)]
    )

    assert f"{pairs} preference pairs" in result.output


def test_no_pair_without_two_models_answering_the_same_request(recorded: Recorded, tmp_path: Path) -> None:
    for run_id in recorded.run_ids:
        feedback(run_id, 1.0, traces=recorded.path)
    out = tmp_path / "pairs.jsonl"

    result = CliRunner().invoke(cli, ["export-preferences", str(recorded.path), "--out", str(out)])

    assert result.exit_code == 0 and out.read_text() == ""
