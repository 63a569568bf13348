"""Crash safety: a run killed with SIGKILL at any moment leaves every store intact and resumes.

A child process runs a traced, cached, checkpointed graph (``tests/crash_app.py``: four nodes,
two model calls each, against a scripted OpenAI-compatible server in this process) and is
killed with SIGKILL. After each kill: every SQLite file under the data dir passes
``PRAGMA integrity_check``, both caches open and read every entry, the trace store opens; then
a fresh child resumes the thread from its last checkpoint to the same final state as a run
that was never interrupted.

Kills come three ways: *inside* request k (the server kills the child before answering, so
calls 1..k-1 are known to be answered and cached: exactly those must not be sent again), a
random delay after request k (lands anywhere: parsing the reply, writing the cache, the trace,
the checkpoint), and a random time after start (also during start-up and schema creation).

Children come from a fork server that has imported the app once, so a trial costs the run
itself, not ~4 s of imports.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import random
import signal
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from multiprocessing.connection import wait
from pathlib import Path
from typing import Any

import diskcache
import pytest

from graphroute import TraceStore
from graphroute.testing import ReceivedRequest, Reply, ScriptedProvider
from tests.crash_app import CALLS_PER_RUN, run_essay

KILLS = 20
# A kill after a random delay, or at a random time, misses a run that has already ended (a fast
# machine runs the 8 scripted calls in a fraction of a second): trials go on until KILLS kills.
MAX_TRIALS = 80
QUESTION = "Why do checkpoints matter?"
SQLITE_HEADER = b"SQLite format 3\x00"


def prompt_of(request: ReceivedRequest) -> str | None:
    """The request's prompt; None for a request cut short by the kill (never answered)."""
    messages = request.body.get("messages")
    return str(messages[-1]["content"]) if messages else None


def prompts(requests: list[ReceivedRequest]) -> list[str]:
    return [prompt for prompt in map(prompt_of, requests) if prompt is not None]


class KillSwitch:
    """Answers every prompt with its digest; kills the armed child at its k-th request."""

    def __init__(self) -> None:
        self.process: Any = None
        self.kill_at: int | None = None
        self.delay_s: float | None = None  # None: kill before answering request k
        self.seen = 0
        self._lock = threading.Lock()

    def arm(self, process: Any, kill_at: int | None, delay_s: float | None = None) -> None:
        with self._lock:
            self.process, self.kill_at, self.delay_s, self.seen = process, kill_at, delay_s, 0

    def __call__(self, request: ReceivedRequest) -> Reply:
        with self._lock:
            self.seen += 1
            fire, delay_s = self.seen == self.kill_at, self.delay_s
        if fire and delay_s is None:
            self.process.kill()
            wait([self.process.sentinel])  # dead before any answer could reach it
            return Reply(drop=True)
        if fire and delay_s is not None:
            threading.Timer(delay_s, self.process.kill).start()
        return Reply(content=hashlib.sha256(str(prompt_of(request)).encode()).hexdigest()[:12])


@dataclass
class Child:
    """Runs ``run_essay`` in a forked child; the same data dir and thread on every start."""

    context: Any
    home: Path
    pool: dict[str, Any]

    def start(self, result: str) -> Any:
        """A child process (not started yet) that runs or resumes the thread into ``result``."""
        args = (str(self.home), self.pool, "thread-1", QUESTION, str(self.home / result))
        return self.context.Process(target=run_essay, args=args)

    def final_state(self) -> Any:
        return json.loads((self.home / "final.json").read_text())


@pytest.fixture(scope="module")
def forkserver() -> Any:
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["tests.crash_app"])
    return context


@pytest.fixture
def server() -> Iterator[tuple[ScriptedProvider, KillSwitch]]:
    switch = KillSwitch()
    with ScriptedProvider(switch) as provider:
        yield provider, switch


def run_to_end(process: Any) -> None:
    process.start()
    process.join(120)
    assert process.exitcode == 0, f"the run failed (exit code {process.exitcode}); see the captured stderr"


def assert_intact(home: Path) -> None:
    """Every SQLite file passes integrity_check; the caches read every entry; traces open."""
    for path in sorted(home.rglob("*")):
        if path.is_file() and path.read_bytes()[:16] == SQLITE_HEADER:
            with closing(sqlite3.connect(path)) as db:
                assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)], path
    for directory in sorted(path.parent for path in home.rglob("cache.db")):
        with diskcache.Cache(str(directory)) as cache:
            assert [str(warning.message) for warning in cache.check()] == [], directory
            assert all(cache.get(key) is not None for key in list(cache)), directory
    if (home / "traces.sqlite").exists():
        with TraceStore(home / "traces.sqlite") as store:
            store.runs()
            store.calls()


def test_runs_killed_at_random_points_resume_to_the_same_state_without_repeating_cached_calls(
    forkserver: Any, server: tuple[ScriptedProvider, KillSwitch], tmp_path: Path
) -> None:
    provider, switch = server
    pool = {"models": {"cloud": provider.pool_entry(input_price=1.0, output_price=2.0)}}
    rng = random.Random(20261126)

    reference = Child(forkserver, tmp_path / "reference", pool)
    reference.home.mkdir()
    started = time.monotonic()
    run_to_end(reference.start("final.json"))
    # Kills "at a random time" fall within a whole run's length, start-up included: a quick
    # machine finishes a run in well under a second, and a kill after the end kills nothing.
    random_kill_window_s = min(0.8, 0.9 * (time.monotonic() - started))
    expected_state = reference.final_state()
    expected_prompts = prompts(provider.requests)
    assert len(expected_prompts) == len(set(expected_prompts)) == CALLS_PER_RUN
    assert len(expected_state["notes"]) == 4

    kills = 0
    for trial in range(MAX_TRIALS):
        if kills >= KILLS:
            break
        child = Child(forkserver, tmp_path / f"trial-{trial}", pool)
        child.home.mkdir()
        before = len(provider.requests)
        way = trial % 3
        process = child.start("killed.json")
        kill_at = 1 + trial % CALLS_PER_RUN if way == 0 else rng.randint(1, CALLS_PER_RUN)
        timer = None
        if way == 0:  # inside request k
            switch.arm(process, kill_at)
        elif way == 1:  # a random delay after request k
            switch.arm(process, kill_at, rng.uniform(0.0, 0.05))
        else:  # a random time after start
            switch.arm(None, None)
            timer = threading.Timer(rng.uniform(0.0, random_kill_window_s), process.kill)
        process.start()
        if timer is not None:
            timer.start()
        process.join(120)
        if timer is not None:
            timer.cancel()
        switch.arm(None, None)
        killed = process.exitcode == -signal.SIGKILL
        assert killed or process.exitcode == 0, f"trial {trial}: exit code {process.exitcode}"
        kills += killed

        assert_intact(child.home)
        run_to_end(child.start("final.json"))
        assert child.final_state() == expected_state, f"trial {trial} resumed to another state"

        sent = Counter(prompts(provider.requests[before:]))
        assert set(sent) == set(expected_prompts)
        repeated = [prompt for prompt, times in sent.items() if times > 1]
        assert len(repeated) <= 1 and sent.total() <= CALLS_PER_RUN + 1, f"trial {trial}: {sent}"
        if way == 0:  # calls answered before the kill were cached: only the call in flight is sent again
            assert repeated == [expected_prompts[kill_at - 1]]
            with TraceStore(child.home / "traces.sqlite") as store:
                resumed = store.runs()[-1]
                hits = [call.cache_hit for call in store.calls(run_id=resumed.run_id)]
            # Killed in a node's second call: the node runs again and its first answer comes from
            # the response cache (the checkpoint alone does not have it).
            assert any(hits) or kill_at % 2, f"trial {trial}: killed in call {kill_at}, no cache hit on resume"

    assert kills >= KILLS, f"{kills} kills in {MAX_TRIALS} trials"
