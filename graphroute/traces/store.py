"""The trace store: every run and every routed call, in SQLite (WAL).

Why SQLite: one file a user can open with any SQL tool, safe under concurrent writers from
LangGraph's worker threads, and durable call by call, so a run that fails halfway keeps every
row written before the failure. WAL lets readers (reports, replay) work while a run writes.
Schema changes are numbered migrations tracked in ``PRAGMA user_version``.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from graphroute.paths import data_dir

MIGRATIONS: Sequence[str] = (
    # 1: runs and calls
    """
    CREATE TABLE runs (
        run_id      TEXT PRIMARY KEY,
        graph       TEXT NOT NULL,
        started_at  REAL NOT NULL,
        ended_at    REAL,
        status      TEXT NOT NULL DEFAULT 'running',
        error       TEXT,
        metadata    TEXT NOT NULL DEFAULT '{}'
    );
    CREATE TABLE calls (
        id              INTEGER PRIMARY KEY AUTOINCREMENT,
        run_id          TEXT REFERENCES runs(run_id),
        node            TEXT,
        requested_model TEXT,
        model           TEXT NOT NULL,
        reason          TEXT NOT NULL DEFAULT '',
        signals         TEXT NOT NULL DEFAULT '[]',
        input_tokens    INTEGER NOT NULL DEFAULT 0,
        output_tokens   INTEGER NOT NULL DEFAULT 0,
        latency_ms      REAL NOT NULL DEFAULT 0,
        cost_usd        REAL NOT NULL DEFAULT 0,
        cache_hit       INTEGER NOT NULL DEFAULT 0,
        error           TEXT,
        started_at      REAL NOT NULL
    );
    CREATE INDEX calls_run ON calls(run_id);
    CREATE INDEX calls_node ON calls(node);
    """,
    # 2: node executions (what graph profiles learn from), feedback, batching and plan columns
    """
    CREATE TABLE node_runs (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        run_id      TEXT REFERENCES runs(run_id),
        node        TEXT NOT NULL,
        step        INTEGER,
        pushed      INTEGER NOT NULL DEFAULT 0,
        started_at  REAL NOT NULL,
        duration_ms REAL NOT NULL DEFAULT 0,
        error       TEXT,
        cache_hit   INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX node_runs_run ON node_runs(run_id);
    CREATE TABLE feedback (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        run_id      TEXT REFERENCES runs(run_id),
        node        TEXT,
        score       REAL NOT NULL,
        comment     TEXT,
        source      TEXT NOT NULL DEFAULT 'user',
        created_at  REAL NOT NULL
    );
    CREATE INDEX feedback_run ON feedback(run_id);
    ALTER TABLE calls ADD COLUMN batched INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE calls ADD COLUMN deduped INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE calls ADD COLUMN retries INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE runs ADD COLUMN plan TEXT;
    ALTER TABLE runs ADD COLUMN budget_usd REAL;
    """,
)


@dataclass(frozen=True)
class CallRecord:
    """One routed chat-model call."""

    run_id: str | None
    node: str | None
    requested_model: str | None
    model: str
    reason: str = ""
    signals: list[dict[str, Any]] = field(default_factory=list)
    input_tokens: int = 0
    output_tokens: int = 0
    latency_ms: float = 0.0
    cost_usd: float = 0.0
    cache_hit: bool = False
    error: str | None = None
    started_at: float = field(default_factory=time.time)
    batched: bool = False
    deduped: bool = False
    retries: int = 0


@dataclass(frozen=True)
class NodeRunRecord:
    """One execution of a graph node (``pushed``: started by a ``Send``)."""

    run_id: str | None
    node: str
    step: int | None = None
    pushed: bool = False
    started_at: float = field(default_factory=time.time)
    duration_ms: float = 0.0
    error: str | None = None
    cache_hit: bool = False


@dataclass(frozen=True)
class RunRecord:
    run_id: str
    graph: str
    started_at: float
    ended_at: float | None
    status: str
    error: str | None
    metadata: dict[str, Any]
    plan: str | None = None
    budget_usd: float | None = None


def default_trace_path() -> Path:
    return data_dir() / "traces.sqlite"


class TraceStore:
    """Thread-safe writer and typed reader of the trace database.

    Usage::

        store = TraceStore()                      # <data dir>/traces.sqlite
        for call in store.calls(run_id=app.last_run.run_id):
            print(call.node, call.model, call.cost_usd)
    """

    def __init__(self, path: Path | str | None = None) -> None:
        self.path = Path(path) if path else default_trace_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=30)
        self._conn.row_factory = sqlite3.Row
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._migrate()

    def _migrate(self) -> None:
        with self._lock:
            version = self._conn.execute("PRAGMA user_version").fetchone()[0]
            for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
                self._conn.executescript(f"BEGIN; {script}; PRAGMA user_version = {number}; COMMIT;")

    @property
    def schema_version(self) -> int:
        return int(self._conn.execute("PRAGMA user_version").fetchone()[0])

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    # -- writing ----------------------------------------------------------------------------
    def start_run(self, run_id: str, graph: str, metadata: dict[str, Any] | None = None) -> None:
        with self._write() as conn:
            conn.execute(
                "INSERT INTO runs(run_id, graph, started_at, metadata) VALUES (?, ?, ?, ?)",
                (run_id, graph, time.time(), json.dumps(metadata or {})),
            )

    def end_run(self, run_id: str, status: str = "ok", error: str | None = None) -> None:
        with self._write() as conn:
            conn.execute(
                "UPDATE runs SET ended_at = ?, status = ?, error = ? WHERE run_id = ?",
                (time.time(), status, error, run_id),
            )

    def record_call(self, call: CallRecord) -> None:
        row = asdict(call)
        row["signals"] = json.dumps(row["signals"])
        self._insert("calls", row)

    def record_node_run(self, node_run: NodeRunRecord) -> None:
        self._insert("node_runs", asdict(node_run))

    def _insert(self, table: str, row: dict[str, Any]) -> None:
        row = {key: int(value) if isinstance(value, bool) else value for key, value in row.items()}
        columns = ", ".join(row)
        marks = ", ".join("?" for _ in row)
        with self._write() as conn:
            conn.execute(f"INSERT INTO {table}({columns}) VALUES ({marks})", tuple(row.values()))

    # -- reading ----------------------------------------------------------------------------
    def calls(self, run_id: str | None = None, node: str | None = None) -> list[CallRecord]:
        """Calls in the order they were recorded, optionally for one run and/or node."""
        query, args = "SELECT * FROM calls WHERE 1=1", []
        if run_id is not None:
            query += " AND run_id = ?"
            args.append(run_id)
        if node is not None:
            query += " AND node = ?"
            args.append(node)
        rows = self._conn.execute(query + " ORDER BY id", args).fetchall()
        return [_call_from_row(row) for row in rows]

    def node_runs(self, run_id: str | None = None, node: str | None = None) -> list[NodeRunRecord]:
        """Node executions in the order they finished."""
        query, args = "SELECT * FROM node_runs WHERE 1=1", []
        if run_id is not None:
            query += " AND run_id = ?"
            args.append(run_id)
        if node is not None:
            query += " AND node = ?"
            args.append(node)
        rows = self._conn.execute(query + " ORDER BY id", args).fetchall()
        records = []
        for row in rows:
            data = dict(row)
            data.pop("id")
            data["pushed"], data["cache_hit"] = bool(data["pushed"]), bool(data["cache_hit"])
            records.append(NodeRunRecord(**data))
        return records

    def runs(self, graph: str | None = None) -> list[RunRecord]:
        query, args = "SELECT * FROM runs", []
        if graph is not None:
            query += " WHERE graph = ?"
            args.append(graph)
        rows = self._conn.execute(query + " ORDER BY started_at", args).fetchall()
        return [_run_from_row(row) for row in rows]

    def run(self, run_id: str) -> RunRecord | None:
        row = self._conn.execute("SELECT * FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        return _run_from_row(row) if row else None

    def close(self) -> None:
        with self._lock:
            self._conn.close()


def _call_from_row(row: sqlite3.Row) -> CallRecord:
    data = dict(row)
    data.pop("id")
    data["signals"] = json.loads(data["signals"])
    for flag in ("cache_hit", "batched", "deduped"):
        data[flag] = bool(data[flag])
    return CallRecord(**data)


def _run_from_row(row: sqlite3.Row) -> RunRecord:
    data = dict(row)
    data["metadata"] = json.loads(data["metadata"])
    return RunRecord(**data)
