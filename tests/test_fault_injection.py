"""Fault injection: a provider failing 30 % of the time loses no output; an outage opens its circuit."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from langchain_core.messages import HumanMessage

from graphroute import ModelPool, StaticRouter
from graphroute.providers.resilience import BREAKERS
from graphroute.routing import dispatch
from graphroute.routing.session import RoutingSession
from graphroute.testing import Faults, Reply, ScriptedProvider


class CallClock:
    """A clock that moves one tick per question asked, so a cool-down lasts a number of calls.

    With wall time, how many calls an open circuit sends to the backup depends on how fast the
    machine is; counted in calls, the test means the same thing everywhere.
    """

    def __init__(self, tick_s: float) -> None:
        self.tick_s = tick_s
        self.now = 0.0
        self._lock = threading.Lock()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self.now += seconds

    def tick(self) -> None:
        self.advance(self.tick_s)


@pytest.fixture
def clock() -> Iterator[CallClock]:
    clock = CallClock(tick_s=0.025)  # with the 0.5 s cool-down below: open for 20 questions
    BREAKERS.reset()
    BREAKERS.configure(failure_threshold=5, cooldown_s=0.5, clock=clock)
    yield clock
    BREAKERS.reset()
    BREAKERS.configure(failure_threshold=5, cooldown_s=30.0, clock=time.monotonic)


@pytest.fixture
def primary_and_backup() -> Iterator[tuple[Faults, ScriptedProvider, ScriptedProvider]]:
    faults = Faults(0.3, healthy=Reply("primary"), seed=7)
    with ScriptedProvider(faults) as primary, ScriptedProvider(lambda request: Reply("backup")) as backup:
        yield faults, primary, backup


def ask(session: RoutingSession, number: int, clock: CallClock) -> str:
    clock.tick()
    messages = [HumanMessage(f"question {number}")]
    call = dispatch.prepare(session, messages, {"langgraph_node": "solve"}, requested=None)
    result = dispatch.generate(call, None, messages, None, None, {})
    return str(result.generations[0].message.content)


def test_thirty_percent_faults_lose_no_output_and_an_outage_heals(
    clock: CallClock, primary_and_backup: tuple[Faults, ScriptedProvider, ScriptedProvider]
) -> None:
    faults, primary, backup = primary_and_backup
    # A hung reply ends at the client's timeout, in wall time; while a half-open circuit's probe
    # hangs, every other question goes to the backup. A short timeout keeps that window small,
    # so how much traffic it diverts hardly depends on the machine (2 s once left 488 of 1000).
    pool = ModelPool.from_dict(
        {
            "models": {
                "primary": primary.pool_entry(timeout_s=0.5, max_retries=1, retry_delay_s=0.01, fallbacks=["backup"]),
                "backup": backup.pool_entry(),
            }
        }
    )
    session = RoutingSession(pool=pool, router=StaticRouter("primary"))

    with ThreadPoolExecutor(8) as workers:
        answers = list(workers.map(lambda n: ask(session, n, clock), range(1000)))

    assert len(answers) == 1000 and set(answers) <= {"primary", "backup"}  # 0 lost outputs
    assert faults.injected > 200  # the faults really happened (500, 429, hang, drop)
    assert answers.count("primary") > 500, answers.count("primary")
    assert all(call.error is None for call in session.calls)

    # An outage: every call to the primary fails; its circuit must open within 10 failures.
    faults.set_rate(1.0)
    before = len(primary.requests)
    for n in range(10):
        assert ask(session, n, clock) == "backup"
    assert BREAKERS.state("primary") == "open"
    assert len(primary.requests) - before <= 10

    # Recovery: after the cool-down a probe reaches the primary and traffic returns to it.
    faults.set_rate(0.0)
    clock.advance(0.6)
    assert [ask(session, n, clock) for n in range(5)] == ["primary"] * 5
    assert BREAKERS.state("primary") == "closed"
