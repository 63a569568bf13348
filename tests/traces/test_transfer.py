"""Traces move between machines as JSON lines; importing twice adds nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from graphroute import ConfigError, TraceStore
from graphroute.cli import app as cli
from graphroute.feedback import feedback
from graphroute.traces.records import CallRecord
from graphroute.traces.transfer import export_jsonl, import_jsonl, read_jsonl
from tests.traces.conftest import Recorded


def test_export_then_import_twice_on_another_machine(recorded: Recorded, tmp_path: Path) -> None:
    feedback(recorded.run_ids[0], 1.0, node="plan", traces=recorded.path)
    export = tmp_path / "week.jsonl"
    elsewhere = tmp_path / "elsewhere.sqlite"
    runner = CliRunner()

    exported = runner.invoke(cli, ["export", str(recorded.path), "--out", str(export)])
    first = runner.invoke(cli, ["import", str(export), "--into", str(elsewhere)])
    second = runner.invoke(cli, ["import", str(export), "--into", str(elsewhere)])

    assert exported.exit_code == first.exit_code == second.exit_code == 0
    assert "3 runs, 14 calls" in exported.output
    assert "added 3 runs, 14 calls" in first.output
    assert "added 0 runs, 0 calls, 0 node_runs, 0 feedback" in second.output
    original, copy = recorded.store(), TraceStore(elsewhere)
    assert copy.calls() == original.calls()  # every field, costs bit for bit
    assert copy.runs() == original.runs()
    assert copy.node_runs() == original.node_runs()
    assert copy.feedback() == original.feedback()


def test_an_export_can_leave_the_texts_behind(trace_store: TraceStore, tmp_path: Path) -> None:
    trace_store.start_run("r1", "g")
    trace_store.record_call(
        CallRecord(
            "r1",
            "n",
            None,
            "m",
            prompt='[{"role": "user", "content": "secret plan"}]',
            output="the answer",
            request_hash="h1",
            cost_usd=0.1,
        )
    )
    export = tmp_path / "lean.jsonl"

    export_jsonl(trace_store, export, keep_text=False)

    assert "secret plan" not in export.read_text() and "the answer" not in export.read_text()
    [_run, call] = list(read_jsonl(export))
    assert (call.request_hash, call.cost_usd, call.prompt, call.output) == ("h1", 0.1, None, None)


def test_one_run_can_be_exported_alone(recorded: Recorded, tmp_path: Path) -> None:
    export = tmp_path / "one.jsonl"
    counts = export_jsonl(recorded.store(), export, run_ids=[recorded.run_ids[1]])

    assert counts["run"] == 1 and counts["call"] == 4  # plan, answer_directly, draft, title


def test_a_newer_file_with_unknown_fields_still_imports(trace_store: TraceStore, tmp_path: Path) -> None:
    lines = [
        {"kind": "header", "format": "graphroute-traces", "version": 2, "schema": 9},
        {
            "kind": "call",
            "run_id": None,
            "node": "n",
            "requested_model": None,
            "model": "m",
            "call_id": "c1",
            "carbon_grams": 0.2,
        },
    ]
    path = tmp_path / "newer.jsonl"
    path.write_text("\n".join(json.dumps(line) for line in lines))

    assert import_jsonl(trace_store, path)["calls"] == 1
    assert trace_store.calls()[0].call_id == "c1"


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", r"\[line 2\] not valid JSON"),
        ('{"kind": "span"}', r"\[line 2\] unknown record kind 'span'"),
        ('{"kind": "call", "node": "n"}', r"\[line 2\] call record lacks model, requested_model, run_id"),
    ],
)
def test_a_damaged_file_names_the_bad_line(trace_store: TraceStore, tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"kind": "header", "format": "graphroute-traces", "version": 1}\n' + line + "\n")

    with pytest.raises(ConfigError, match=message):
        import_jsonl(trace_store, path)
