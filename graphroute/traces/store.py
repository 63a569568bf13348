"""The trace store: every run and every routed call, in SQLite (WAL).

Why SQLite: one file a user can open with any SQL tool, safe under concurrent writers from
LangGraph's worker threads, and durable call by call, so a run that fails halfway keeps every
row written before the failure. WAL lets readers (reports, replay) work while a run writes.
Schema changes are numbered migrations tracked in ``PRAGMA user_version``.

Many workers on many machines use ``graphroute.scaleout.PostgresTraceStore`` instead: the same
schema (these migrations, translated) and the same query API. The SQL here is written once
with ``?`` placeholders; a dialect changes only how rows are fetched and written
(``_fetch``/``_write``) and how an insert skips rows already held (``_INSERT_IGNORE``).
"""

from __future__ import annotations

import json
import random
import sqlite3
import threading
import time
from collections.abc import Collection, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any, Literal

from graphroute.errors import ConfigError
from graphroute.paths import data_dir
from graphroute.traces.records import CallRecord, FeedbackRecord, NodeRunRecord, RunRecord

__all__ = [
    "MIGRATIONS",
    "CallRecord",
    "FeedbackRecord",
    "NodeRunRecord",
    "RunRecord",
    "TraceStore",
    "default_trace_path",
]

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
    # 3: global ids (traces move between machines: import skips rows it already holds), the
    # request fingerprint and texts (preference pairs, exact replay quality), automatic quality
    # signals beside each call, and feedback aimed at one call or one model's answer (outcomes)
    """
    ALTER TABLE calls ADD COLUMN call_id TEXT;
    ALTER TABLE calls ADD COLUMN request_hash TEXT;
    ALTER TABLE calls ADD COLUMN prompt TEXT;
    ALTER TABLE calls ADD COLUMN output TEXT;
    ALTER TABLE calls ADD COLUMN quality TEXT NOT NULL DEFAULT '[]';
    UPDATE calls SET call_id = lower(hex(randomblob(16))) WHERE call_id IS NULL;
    CREATE UNIQUE INDEX calls_call_id ON calls(call_id);
    CREATE INDEX calls_request ON calls(request_hash);
    ALTER TABLE node_runs ADD COLUMN node_run_id TEXT;
    UPDATE node_runs SET node_run_id = lower(hex(randomblob(16))) WHERE node_run_id IS NULL;
    CREATE UNIQUE INDEX node_runs_uid ON node_runs(node_run_id);
    ALTER TABLE feedback ADD COLUMN feedback_id TEXT;
    ALTER TABLE feedback ADD COLUMN call_id TEXT;
    ALTER TABLE feedback ADD COLUMN request_hash TEXT;
    ALTER TABLE feedback ADD COLUMN model TEXT;
    UPDATE feedback SET feedback_id = lower(hex(randomblob(16))) WHERE feedback_id IS NULL;
    CREATE UNIQUE INDEX feedback_uid ON feedback(feedback_id);
    CREATE INDEX feedback_call ON feedback(call_id);
    CREATE INDEX calls_started ON calls(started_at);
    """,
    # 4: feedback read by time, so a reader that keeps a cursor fetches only the new rows
    """
    CREATE INDEX feedback_created ON feedback(created_at);
    """,
)


_TABLES = {"runs": "run_id", "calls": "call_id", "node_runs": "node_run_id", "feedback": "feedback_id"}


def default_trace_path() -> Path:
    return data_dir() / "traces.sqlite"


class TraceStore:
    """Thread- and process-safe writer and typed reader of the trace database (SQLite).

    Usage::

        store = TraceStore()                      # <data dir>/traces.sqlite
        for call in store.calls(run_id=app.last_run.run_id):
            print(call.node, call.model, call.cost_usd)
    """

    _INSERT_IGNORE = "INSERT OR IGNORE INTO {table}({columns}) VALUES ({marks})"

    def __init__(self, path: Path | str | None = None) -> None:
        self.path: Path = Path(path).expanduser() if path else default_trace_path()
        if self.path.is_dir():
            raise ConfigError(
                f"the trace store {self.path} is a directory: give a database file, e.g. {self.path / 'traces.sqlite'}"
            )
        self._lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=30)
        except (OSError, sqlite3.Error) as error:
            raise ConfigError(f"cannot open the trace store {self.path}: {error}") from error
        self._conn.row_factory = sqlite3.Row
        try:
            self._conn.execute("PRAGMA busy_timeout = 30000")
            self._refuse_foreign()  # the first read of the file: where a file that is not SQLite shows
            self._enable_wal()
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._migrate()
        except sqlite3.DatabaseError as error:
            self._conn.close()
            if error.sqlite_errorcode != sqlite3.SQLITE_NOTADB:
                raise
            raise ConfigError(
                f"{self.path} is not a graphroute trace database (SQLite: {error}); "
                f"point at a trace file graphroute wrote, by default {default_trace_path()}"
            ) from error

    def _refuse_foreign(self) -> None:
        """Leave another program's database as it is: no WAL switch, no tables of ours added.

        Our schema versions start at 1, so a version-0 file that already has tables is not ours.
        """
        # One statement, one snapshot: another process may be creating our schema at this moment.
        rows = self._conn.execute(
            "SELECT name, (SELECT user_version FROM pragma_user_version) FROM sqlite_master WHERE type='table'"
        ).fetchall()
        tables = sorted(row[0] for row in rows if row[1] == 0)
        if tables:
            self._conn.close()
            raise ConfigError(
                f"{self.path} is another program's SQLite database (tables: {', '.join(tables)}); "
                f"graphroute keeps its traces in a file of its own, by default {default_trace_path()}"
            )

    def _enable_wal(self) -> None:
        """Switch to WAL, retrying: SQLite answers "locked" at once, without waiting, while another
        process is creating the same new file (seen with 8 processes opening it together)."""
        deadline = time.monotonic() + 30
        while True:
            try:
                self._conn.execute("PRAGMA journal_mode=WAL").fetchall()
                return
            except sqlite3.OperationalError as error:
                if "locked" not in str(error) or time.monotonic() > deadline:
                    raise
                time.sleep(0.005 + random.random() * 0.02)

    def _migrate(self) -> None:
        """Apply missing migrations; the version is re-read under the write lock because
        several processes may open a new database at the same moment."""
        with self._lock:
            if self._conn.execute("PRAGMA user_version").fetchone()[0] >= len(MIGRATIONS):
                return
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                version = self._conn.execute("PRAGMA user_version").fetchone()[0]
                for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
                    for statement in _statements(script):
                        self._conn.execute(statement)
                    self._conn.execute(f"PRAGMA user_version = {number}")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    @property
    def schema_version(self) -> int:
        return int(self._conn.execute("PRAGMA user_version").fetchone()[0])

    def _fetch(self, sql: str, args: Sequence[Any] = ()) -> list[dict[str, Any]]:
        """Rows of a query as dicts (the dialect seam for reading)."""
        return [dict(row) for row in self._conn.execute(sql, args).fetchall()]

    @contextmanager
    def _write(self) -> Iterator[Any]:
        """One write transaction; yields an object whose ``execute(sql, args)`` returns a cursor."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    # -- writing ----------------------------------------------------------------------------
    def start_run(
        self,
        run_id: str,
        graph: str,
        metadata: dict[str, Any] | None = None,
        *,
        plan: str | None = None,
        budget_usd: float | None = None,
    ) -> None:
        with self._write() as conn:
            conn.execute(
                "INSERT INTO runs(run_id, graph, started_at, metadata, plan, budget_usd) VALUES (?, ?, ?, ?, ?, ?)",
                (run_id, graph, time.time(), json.dumps(metadata or {}), plan, budget_usd),
            )

    def end_run(self, run_id: str, status: str = "ok", error: str | None = None) -> None:
        with self._write() as conn:
            conn.execute(
                "UPDATE runs SET ended_at = ?, status = ?, error = ? WHERE run_id = ?",
                (time.time(), status, error, run_id),
            )

    def record_call(self, call: CallRecord) -> None:
        self._insert("calls", _call_row(call))

    def record_node_run(self, node_run: NodeRunRecord) -> None:
        self._insert("node_runs", asdict(node_run))

    def record_feedback(self, feedback: FeedbackRecord) -> None:
        self._insert("feedback", asdict(feedback))

    def _insert(self, table: str, row: dict[str, Any]) -> None:
        columns, values = _columns(row)
        with self._write() as conn:
            conn.execute(f"INSERT INTO {table}({columns}) VALUES ({', '.join('?' * len(values))})", values)

    def merge(self, records: Iterable[RunRecord | CallRecord | NodeRunRecord | FeedbackRecord]) -> dict[str, int]:
        """Add records made elsewhere, skipping those already held (by their global id).

        A run already present is completed from the incoming copy (end time, status) when the
        incoming copy has ended: re-importing a later export of the same database adds nothing
        twice and loses nothing. Returns the number of new rows per table.
        """
        added = dict.fromkeys(_TABLES, 0)
        with self._write() as conn:
            for record in records:
                table, row = _row_of(record)
                columns, values = _columns(row)
                marks = ", ".join("?" * len(values))
                cursor = conn.execute(self._INSERT_IGNORE.format(table=table, columns=columns, marks=marks), values)
                added[table] += cursor.rowcount
                if table == "runs" and cursor.rowcount == 0 and row["ended_at"] is not None:
                    conn.execute(
                        "UPDATE runs SET ended_at = ?, status = ?, error = ? WHERE run_id = ? AND ended_at IS NULL",
                        (row["ended_at"], row["status"], row["error"], row["run_id"]),
                    )
        return added

    # -- reading ----------------------------------------------------------------------------
    def calls(
        self,
        run_id: str | None = None,
        node: str | None = None,
        *,
        nodes: Collection[str] | None = None,
        model: str | None = None,
        request_hash: str | None = None,
        graph: str | None = None,
        since: float | None = None,
        until: float | None = None,
    ) -> list[CallRecord]:
        """Calls in the order they were recorded, filtered by any of the given fields.

        ``node`` matches the node and, for a subgraph's name, every node inside it; ``nodes``
        does the same for any of several (one app's nodes, in a store several apps share; an
        empty collection matches nothing). ``since``/``until`` are Unix times on the call's start.
        """
        where, args = _where(run_id=run_id, model=model, request_hash=request_hash, since=since, until=until)
        if node is not None:
            where += f" AND {_NODE_MATCH}"
            args += [node, _like_prefix(node)]
        if nodes is not None:
            names = sorted(set(nodes))
            where += " AND (" + (" OR ".join([_NODE_MATCH] * len(names)) or "1=0") + ")"
            args += [value for name in names for value in (name, _like_prefix(name))]
        if graph is not None:
            where += " AND run_id IN (SELECT run_id FROM runs WHERE graph = ?)"
            args.append(graph)
        rows = self._fetch(f"SELECT * FROM calls WHERE {where} ORDER BY id", args)
        return [_call_from_row(row) for row in rows]

    def node_runs(self, run_id: str | None = None, node: str | None = None) -> list[NodeRunRecord]:
        """Node executions in the order they finished."""
        where, args = _where(run_id=run_id, node=node)
        rows = self._fetch(f"SELECT * FROM node_runs WHERE {where} ORDER BY id", args)
        records = []
        for row in rows:
            data = dict(row)
            data.pop("id")
            data["pushed"], data["cache_hit"] = bool(data["pushed"]), bool(data["cache_hit"])
            records.append(NodeRunRecord(**data))
        return records

    def runs(
        self, graph: str | None = None, *, since: float | None = None, until: float | None = None
    ) -> list[RunRecord]:
        """Runs in the order they started."""
        where, args = _where(graph=graph, since=since, until=until)
        rows = self._fetch(f"SELECT * FROM runs WHERE {where} ORDER BY started_at", args)
        return [_run_from_row(row) for row in rows]

    def run(self, run_id: str) -> RunRecord | None:
        rows = self._fetch("SELECT * FROM runs WHERE run_id = ?", (run_id,))
        return _run_from_row(rows[0]) if rows else None

    def feedback(
        self,
        run_id: str | None = None,
        node: str | None = None,
        *,
        source: str | None = None,
        call_id: str | None = None,
        since: float | None = None,
        graph: str | None = None,
    ) -> list[FeedbackRecord]:
        """Feedback and known outcomes in the order they were given.

        ``since`` keeps only rows given strictly after that Unix time, so the newest
        ``created_at`` a reader has seen works as its cursor: the next read fetches only what
        is new instead of the whole table. ``graph`` keeps the rows on that graph's runs and
        the rows on no run (known outcomes aimed at a request or a call, which any app may share).
        """
        where, args = _where(run_id=run_id, node=node, source=source, call_id=call_id)
        if since is not None:
            where += " AND created_at > ?"
            args.append(since)
        if graph is not None:
            where += " AND (run_id IS NULL OR run_id IN (SELECT run_id FROM runs WHERE graph = ?))"
            args.append(graph)
        rows = self._fetch(f"SELECT * FROM feedback WHERE {where} ORDER BY id", args)
        records = []
        for row in rows:
            data = dict(row)
            data.pop("id")
            records.append(FeedbackRecord(**data))
        return records

    def count(self, table: Literal["runs", "calls", "node_runs", "feedback"]) -> int:
        if table not in _TABLES:
            raise ValueError(f"unknown table {table!r}")
        return int(self._fetch(f"SELECT COUNT(*) AS n FROM {table}")[0]["n"])

    def integrity_check(self) -> str:
        """SQLite's own verdict on the file: ``"ok"`` or a description of the damage."""
        return "; ".join(str(row[0]) for row in self._conn.execute("PRAGMA integrity_check").fetchall())

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> TraceStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _statements(script: str) -> list[str]:
    """A migration script split into statements (``executescript`` would commit on its own)."""
    return [statement.strip() for statement in script.split(";") if statement.strip()]


# A node, or any node inside it when it is a subgraph (``parent`` matches ``parent:child``).
_NODE_MATCH = "(node = ? OR node LIKE ? ESCAPE '\\')"


def _like_prefix(node: str) -> str:
    escaped = node.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped + ":%"


def _where(**filters: Any) -> tuple[str, list[Any]]:
    clauses, args = ["1=1"], []
    for name, value in filters.items():
        if value is None:
            continue
        if name == "since":
            clauses.append("started_at >= ?")
        elif name == "until":
            clauses.append("started_at < ?")
        else:
            clauses.append(f"{name} = ?")
        args.append(value)
    return " AND ".join(clauses), args


def _columns(row: dict[str, Any]) -> tuple[str, tuple[Any, ...]]:
    values = tuple(int(value) if isinstance(value, bool) else value for value in row.values())
    return ", ".join(row), values


def _call_row(call: CallRecord) -> dict[str, Any]:
    row = asdict(call)
    row["signals"] = json.dumps(row["signals"])
    row["quality"] = json.dumps(row["quality"])
    return row


def _row_of(record: RunRecord | CallRecord | NodeRunRecord | FeedbackRecord) -> tuple[str, dict[str, Any]]:
    if isinstance(record, CallRecord):
        return "calls", _call_row(record)
    row = asdict(record)
    if isinstance(record, RunRecord):
        row["metadata"] = json.dumps(row["metadata"])
        return "runs", row
    if isinstance(record, NodeRunRecord):
        return "node_runs", row
    return "feedback", row


def _call_from_row(row: dict[str, Any]) -> CallRecord:
    data = dict(row)
    data.pop("id")
    data["signals"] = json.loads(data["signals"])
    data["quality"] = json.loads(data["quality"])
    for flag in ("cache_hit", "batched", "deduped"):
        data[flag] = bool(data[flag])
    return CallRecord(**data)


def _run_from_row(row: dict[str, Any]) -> RunRecord:
    data = dict(row)
    data["metadata"] = json.loads(data["metadata"])
    return RunRecord(**data)
