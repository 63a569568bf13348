"""Traces as JSON lines: export on one machine, import on another, any number of times.

One object per line, ``kind`` first: a ``header`` line, then ``run``, ``call``, ``node_run`` and
``feedback`` lines holding the record's fields. Every record has a global id, so importing the
same file twice (or two overlapping exports) adds each row once. Fields a newer version wrote
and this one does not know are ignored, so older installs can read newer files.

Usage::

    export_jsonl(TraceStore("prod.sqlite"), "week.jsonl", since=time.time() - 7 * 86400)
    import_jsonl(TraceStore(), "week.jsonl")          # {'runs': 12, 'calls': 96, ...}
"""

from __future__ import annotations

import atexit
import dataclasses
import json
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from graphroute.errors import ConfigError
from graphroute.traces.records import CallRecord, FeedbackRecord, NodeRunRecord, RunRecord
from graphroute.traces.store import MIGRATIONS, TraceStore

FORMAT = "graphroute-traces"
FORMAT_VERSION = 1

Record = RunRecord | CallRecord | NodeRunRecord | FeedbackRecord
_KINDS: dict[str, type[Record]] = {
    "run": RunRecord,
    "call": CallRecord,
    "node_run": NodeRunRecord,
    "feedback": FeedbackRecord,
}
_KIND_OF = {cls: kind for kind, cls in _KINDS.items()}


def records(
    store: TraceStore, *, run_ids: Iterable[str] | None = None, since: float | None = None, keep_text: bool = True
) -> Iterator[Record]:
    """Every record of the chosen runs (all by default), runs first."""
    runs = store.runs(since=since)
    if run_ids is not None:
        wanted = set(run_ids)
        runs = [run for run in runs if run.run_id in wanted]
    chosen = {run.run_id for run in runs}
    everything = run_ids is None and since is None
    yield from runs
    for call in store.calls():
        if everything or call.run_id in chosen:
            yield call if keep_text else dataclasses.replace(call, prompt=None, output=None)
    for node_run in store.node_runs():
        if everything or node_run.run_id in chosen:
            yield node_run
    for item in store.feedback():
        if everything or item.run_id in chosen:
            yield item


def export_jsonl(
    store: TraceStore,
    out: Path | str,
    *,
    run_ids: Iterable[str] | None = None,
    since: float | None = None,
    keep_text: bool = True,
) -> dict[str, int]:
    """Write the store (or some runs of it) to ``out``; returns how many lines of each kind.

    ``keep_text=False`` leaves prompts and outputs behind (costs, tokens and signals travel).
    """
    counts = dict.fromkeys(_KINDS, 0)
    header = {"kind": "header", "format": FORMAT, "version": FORMAT_VERSION, "schema": len(MIGRATIONS)}
    with Path(out).open("w", encoding="utf-8") as handle:
        handle.write(json.dumps(header) + "\n")
        for record in records(store, run_ids=run_ids, since=since, keep_text=keep_text):
            kind = _KIND_OF[type(record)]
            handle.write(json.dumps({"kind": kind, **dataclasses.asdict(record)}, ensure_ascii=False) + "\n")
            counts[kind] += 1
    return counts


def read_jsonl(path: Path | str) -> Iterator[Record]:
    """Parse an export, line by line; a bad line raises ``ConfigError`` naming it."""
    path = Path(path)
    try:
        handle = path.open(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError("trace file not found", path=path) from None
    with handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            record = _parse_line(line, path, number)
            if record is not None:
                yield record


def _parse_line(line: str, path: Path, number: int) -> Record | None:
    where = f"line {number}"
    try:
        row: Any = json.loads(line)
    except ValueError as error:
        raise ConfigError(f"not valid JSON ({error})", path=path, entry=where) from None
    kind = row.pop("kind", None) if isinstance(row, dict) else None
    if kind == "header":
        if row.get("format") != FORMAT:
            raise ConfigError(f"not a graphroute trace export (format {row.get('format')!r})", path=path, entry=where)
        return None
    cls = _KINDS.get(str(kind))
    if cls is None:
        raise ConfigError(f"unknown record kind {kind!r}; expected one of {', '.join(_KINDS)}", path=path, entry=where)
    known = {f.name for f in dataclasses.fields(cls)}
    required = {
        f.name
        for f in dataclasses.fields(cls)
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    }
    missing = sorted(required - row.keys())
    if missing:
        raise ConfigError(f"{kind} record lacks {', '.join(missing)}", path=path, entry=where)
    try:
        return cls(**{key: value for key, value in row.items() if key in known})
    except (TypeError, ValueError) as error:
        raise ConfigError(f"bad {kind} record: {error}", path=path, entry=where) from None


def import_jsonl(store: TraceStore, path: Path | str, *, batch: int = 500) -> dict[str, int]:
    """Add an export's records to ``store``; rows already there are skipped. Returns new rows per table."""
    added = {"runs": 0, "calls": 0, "node_runs": 0, "feedback": 0}
    pending: list[Record] = []

    def flush() -> None:
        for table, count in store.merge(pending).items():
            added[table] += count
        pending.clear()

    for record in read_jsonl(path):
        pending.append(record)
        if len(pending) >= batch:
            flush()
    flush()
    return added


def open_traces(path: Path | str | None) -> TraceStore:
    """A store for a path a user typed: a SQLite file as is (it must exist), a ``.jsonl`` export
    loaded into a temp copy."""
    from graphroute.scaleout.factory import open_existing_trace_store

    if path is None:
        return open_existing_trace_store(None)
    path = Path(path)
    if path.suffix in (".jsonl", ".ndjson"):
        if not path.exists():
            raise ConfigError("trace file not found", path=path)
        scratch = Path(tempfile.mkdtemp(prefix="graphroute-traces-"))
        atexit.register(shutil.rmtree, scratch, ignore_errors=True)
        store = TraceStore(scratch / "imported.sqlite")
        import_jsonl(store, path)
        return store
    return open_existing_trace_store(path)
