"""Fault injection: a provider failing 30 % of the time loses no output; an outage opens its circuit."""

from __future__ import annotations

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


@pytest.fixture
def breakers() -> Iterator[None]:
    BREAKERS.reset()
    BREAKERS.configure(failure_threshold=5, cooldown_s=0.5)
    yield
    BREAKERS.reset()
    BREAKERS.configure(failure_threshold=5, cooldown_s=30.0)


@pytest.fixture
def primary_and_backup() -> Iterator[tuple[Faults, ScriptedProvider, ScriptedProvider]]:
    faults = Faults(0.3, healthy=Reply("primary"), seed=7)
    with ScriptedProvider(faults) as primary, ScriptedProvider(lambda request: Reply("backup")) as backup:
        yield faults, primary, backup


def ask(session: RoutingSession, number: int) -> str:
    messages = [HumanMessage(f"question {number}")]
    call = dispatch.prepare(session, messages, {"langgraph_node": "solve"}, requested=None)
    result = dispatch.generate(call, None, messages, None, None, {})
    return str(result.generations[0].message.content)


def test_thirty_percent_faults_lose_no_output_and_an_outage_heals(
    breakers: None, primary_and_backup: tuple[Faults, ScriptedProvider, ScriptedProvider]
) -> None:
    faults, primary, backup = primary_and_backup
    pool = ModelPool.from_dict(
        {
            "models": {
                "primary": primary.pool_entry(timeout_s=2.0, max_retries=1, retry_delay_s=0.01, fallbacks=["backup"]),
                "backup": backup.pool_entry(),
            }
        }
    )
    session = RoutingSession(pool=pool, router=StaticRouter("primary"))

    with ThreadPoolExecutor(8) as workers:
        answers = list(workers.map(lambda n: ask(session, n), range(1000)))

    assert len(answers) == 1000 and set(answers) <= {"primary", "backup"}  # 0 lost outputs
    assert faults.injected > 200  # the faults really happened (500, 429, hang, drop)
    assert answers.count("primary") > 500
    assert all(call.error is None for call in session.calls)

    # An outage: every call to the primary fails; its circuit must open within 10 failures.
    faults.set_rate(1.0)
    before = len(primary.requests)
    for n in range(10):
        assert ask(session, n) == "backup"
    assert BREAKERS.state("primary") == "open"
    assert len(primary.requests) - before <= 10

    # Recovery: after the cool-down a probe reaches the primary and traffic returns to it.
    faults.set_rate(0.0)
    time.sleep(0.6)
    assert [ask(session, n) for n in range(5)] == ["primary"] * 5
    assert BREAKERS.state("primary") == "closed"
