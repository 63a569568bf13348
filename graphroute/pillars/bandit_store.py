"""Where the bandit's arm state lives: the ``BanditStore`` contract and its SQLite implementation.

A store is four methods, so state can move from one process (``":memory:"``) to a file shared
by processes (SQLite, WAL) to many machines (``graphroute.scaleout.RedisBanditStore``) without
the pillar knowing; the conformance suite in ``tests/scaleout`` runs against every backend.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from abc import ABC, abstractmethod
from dataclasses import astuple
from pathlib import Path

from graphroute.pillars.bandit_arms import ArmState, Decay, Evidence


class BanditStore(ABC):
    """Where arm state lives. ``update`` must be atomic: concurrent updates all count.

    ``graphroute.scaleout.RedisBanditStore`` keeps a hash per context and runs ``update`` as a
    server-side script (``ArmState.add`` in Lua).
    """

    @abstractmethod
    def load(self, context: str) -> tuple[int, dict[str, ArmState]]:
        """The context's current step and its arms."""

    @abstractmethod
    def update(self, context: str, model: str, evidence: Evidence, decay: Decay) -> None:
        """Advance the context one step and add evidence to one arm."""

    @abstractmethod
    def contexts(self) -> list[str]:
        """Every context with state."""

    @abstractmethod
    def clear(self, context: str | None = None) -> None:
        """Forget one context, or everything."""

    def close(self) -> None:  # noqa: B027  (optional hook: most stores hold nothing to release)
        """Release connections (default: nothing to release)."""


class SQLiteBanditStore(BanditStore):
    """State in its own SQLite file (WAL): survives restarts, shared safely between processes.

    ``":memory:"`` keeps it in this process only (experiments, policy studies).
    """

    SCHEMA = """
    CREATE TABLE IF NOT EXISTS bandit_contexts (context TEXT PRIMARY KEY, step INTEGER NOT NULL);
    CREATE TABLE IF NOT EXISTS bandit_arms (
        context TEXT NOT NULL, model TEXT NOT NULL, success REAL NOT NULL, failure REAL NOT NULL,
        plays INTEGER NOT NULL, step INTEGER NOT NULL, streak INTEGER NOT NULL, rest_until INTEGER NOT NULL,
        updated_at REAL NOT NULL, PRIMARY KEY (context, model));
    """
    _COLUMNS = "success, failure, plays, step, streak, rest_until"

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        if str(path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path), timeout=30.0, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        # As the trace store: WAL + NORMAL survives a crashed process; FULL's fsync per update
        # cost ~5 ms of every routed call (benchmarks/shared_overhead.py).
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(self.SCHEMA)
        self._lock = threading.Lock()

    def load(self, context: str) -> tuple[int, dict[str, ArmState]]:
        with self._lock:
            row = self._db.execute("SELECT step FROM bandit_contexts WHERE context = ?", (context,)).fetchone()
            arms = self._db.execute(
                f"SELECT model, {self._COLUMNS} FROM bandit_arms WHERE context = ?", (context,)
            ).fetchall()
        return (row[0] if row else 0), {model: ArmState(*values) for model, *values in arms}

    def update(self, context: str, model: str, evidence: Evidence, decay: Decay) -> None:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")  # read-modify-write, atomic across processes
            try:
                row = self._db.execute("SELECT step FROM bandit_contexts WHERE context = ?", (context,)).fetchone()
                step = (row[0] if row else 0) + 1
                arm = self._db.execute(
                    f"SELECT {self._COLUMNS} FROM bandit_arms WHERE context = ? AND model = ?", (context, model)
                ).fetchone()
                state = (ArmState(*arm) if arm else ArmState()).add(step, evidence, decay)
                self._db.execute("INSERT OR REPLACE INTO bandit_contexts VALUES (?, ?)", (context, step))
                self._db.execute(
                    "INSERT OR REPLACE INTO bandit_arms VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (context, model, *astuple(state), time.time()),
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def contexts(self) -> list[str]:
        with self._lock:
            return [row[0] for row in self._db.execute("SELECT context FROM bandit_contexts ORDER BY context")]

    def clear(self, context: str | None = None) -> None:
        with self._lock:
            for table in ("bandit_contexts", "bandit_arms"):
                if context is None:
                    self._db.execute(f"DELETE FROM {table}")
                else:
                    self._db.execute(f"DELETE FROM {table} WHERE context = ?", (context,))

    def close(self) -> None:
        with self._lock:
            self._db.close()
