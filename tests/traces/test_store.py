"""The trace store: versioned migrations, typed queries, idempotent merges, concurrent writers."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

import graphroute
from graphroute import ConfigError, TraceStore
from graphroute.traces.records import CallRecord, FeedbackRecord
from graphroute.traces.store import MIGRATIONS

WRITER = """
import sys, time
from pathlib import Path
from graphroute.traces.records import CallRecord, FeedbackRecord, NodeRunRecord
from graphroute.traces.store import TraceStore

path, writer, gate = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3])
(gate / f"ready-{writer}").touch()
deadline = time.time() + 180
while len(list(gate.glob("ready-*"))) < 8 and time.time() < deadline:  # all open the new file at once
    time.sleep(0.002)
store = TraceStore(path)
run_id = f"run-{writer}"
store.start_run(run_id, "graph", {"writer": writer}, budget_usd=0.01)
for i in range(40):
    store.record_call(CallRecord(run_id, f"node-{i % 4}", None, "local", input_tokens=i, cost_usd=i * 1e-6))
    if i % 4 == 0:
        store.record_node_run(NodeRunRecord(run_id, f"node-{i % 4}", step=i))
    if i % 8 == 0:
        store.record_feedback(FeedbackRecord(run_id, score=0.5, node=f"node-{i % 4}"))
store.end_run(run_id)
store.close()
"""


def test_eight_concurrent_writer_processes_lose_nothing(tmp_path: Path) -> None:
    path = tmp_path / "shared.sqlite"
    script = tmp_path / "writer.py"
    script.write_text(WRITER, encoding="utf-8")
    gate = tmp_path / "gate"
    gate.mkdir()
    env = {**os.environ, "PYTHONPATH": str(Path(graphroute.__file__).parents[1])}
    writers = [
        subprocess.Popen([sys.executable, str(script), str(path), str(n), str(gate)], stderr=subprocess.PIPE, env=env)
        for n in range(8)
    ]
    errors = [writer.communicate(timeout=240)[1].decode() for writer in writers]

    assert [writer.returncode for writer in writers] == [0] * 8, errors
    store = TraceStore(path)
    assert store.schema_version == len(MIGRATIONS)
    assert store.integrity_check() == "ok"
    assert {run.run_id: run.status for run in store.runs()} == {f"run-{n}": "ok" for n in range(8)}
    calls = store.calls()
    assert len(calls) == 8 * 40 and len({call.call_id for call in calls}) == 8 * 40
    assert all(len(store.calls(run_id=f"run-{n}")) == 40 for n in range(8))
    assert store.count("node_runs") == 8 * 10
    assert store.count("feedback") == 8 * 5


def test_a_schema_2_database_is_upgraded_in_place_and_rows_get_global_ids(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    conn = sqlite3.connect(path)
    for number, script in enumerate(MIGRATIONS[:2], start=1):
        conn.executescript(f"BEGIN; {script}; PRAGMA user_version = {number}; COMMIT;")
    conn.execute("INSERT INTO runs(run_id, graph, started_at) VALUES ('r1', 'g', 1.0)")
    conn.execute(
        "INSERT INTO calls(run_id, node, model, cost_usd, started_at) VALUES ('r1', 'plan', 'cloud', 0.5, 1.0)"
    )
    conn.execute("INSERT INTO feedback(run_id, score, created_at) VALUES ('r1', 1.0, 2.0)")
    conn.commit()
    conn.close()

    store = TraceStore(path)

    assert store.schema_version == len(MIGRATIONS)
    [call] = store.calls()
    assert (call.node, call.model, call.cost_usd, call.quality) == ("plan", "cloud", 0.5, [])
    assert len(call.call_id) == 32
    [feedback] = store.feedback()
    assert feedback.score == 1.0 and feedback.feedback_id


def test_a_file_that_is_not_sqlite_is_refused_by_name_and_left_as_it_was(tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    page.write_text("<!doctype html><html><body>spend per node</body></html>\n", encoding="utf-8")

    with pytest.raises(ConfigError, match=r"report\.html is not a graphroute trace database") as refused:
        TraceStore(page)

    assert str(page) in str(refused.value)
    assert page.read_text(encoding="utf-8").startswith("<!doctype html>")
    assert sorted(path.name for path in tmp_path.glob("report.html*")) == ["report.html"]  # no -wal, no -shm


def test_another_programs_sqlite_database_is_refused_and_left_untouched(tmp_path: Path) -> None:
    import sqlite3

    theirs = tmp_path / "inventory.db"
    with sqlite3.connect(theirs) as conn:
        conn.execute("CREATE TABLE items (sku TEXT, count INTEGER)")
    before = theirs.read_bytes()

    with pytest.raises(ConfigError, match=r"inventory\.db is another program's SQLite database \(tables: items\)"):
        TraceStore(theirs)

    assert theirs.read_bytes() == before  # no tables of ours, no switch to WAL
    assert sorted(path.name for path in tmp_path.glob("inventory.db*")) == ["inventory.db"]  # no -wal, no -shm


def test_queries_filter_by_node_subgraph_model_and_time(trace_store: TraceStore) -> None:
    trace_store.start_run("r1", "g")
    for node, model, at in [("plan", "big", 10.0), ("report:draft", "big", 20.0), ("report:title", "small", 30.0)]:
        trace_store.record_call(CallRecord("r1", node, None, model, started_at=at))
    trace_store.record_call(CallRecord("r1", "report_x", None, "small", started_at=40.0))

    assert [c.node for c in trace_store.calls(node="report")] == ["report:draft", "report:title"]
    assert [c.node for c in trace_store.calls(model="big")] == ["plan", "report:draft"]
    assert [c.node for c in trace_store.calls(since=20.0, until=40.0)] == ["report:draft", "report:title"]
    assert [c.node for c in trace_store.calls(graph="other")] == []


def test_merge_skips_rows_it_already_holds_and_completes_runs(trace_store: TraceStore, tmp_path: Path) -> None:
    other = TraceStore(tmp_path / "other.sqlite")
    other.start_run("r1", "g")
    call = CallRecord("r1", "plan", None, "local", cost_usd=0.25)
    other.record_call(call)
    other.record_feedback(FeedbackRecord("r1", 1.0))
    before = [*other.runs(), *other.calls(), *other.feedback()]

    assert trace_store.merge(before) == {"runs": 1, "calls": 1, "node_runs": 0, "feedback": 1}
    other.end_run("r1", "ok")
    assert trace_store.merge([*other.runs(), *other.calls(), *other.feedback()]) == {
        "runs": 0,
        "calls": 0,
        "node_runs": 0,
        "feedback": 0,
    }
    assert trace_store.run("r1").status == "ok"  # the later copy completed the run
    assert trace_store.calls() == [call]
    other.close()
