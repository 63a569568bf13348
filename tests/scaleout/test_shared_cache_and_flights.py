"""Workers sharing one Redis: an answer one worker got is every worker's, and an identical
request in flight on one worker is not sent again by another (cross-process single flight)."""

from __future__ import annotations

import asyncio
import multiprocessing
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from langchain_core.messages import HumanMessage
from langchain_openai import ChatOpenAI
from langgraph.graph import END, START, StateGraph

from graphroute import ModelPool, optimize
from graphroute.cache import CacheConfig
from graphroute.scaleout import open_single_flight
from graphroute.scaleout.redis_cache import RedisNodeCache, RedisResponseCache
from graphroute.testing import Reply, ScriptedProvider
from tests.cache.test_response_cache import QA, qa_graph


@pytest.fixture
def provider() -> Iterator[ScriptedProvider]:
    with ScriptedProvider(lambda request: Reply(content="Paris", delay_s=0.4)) as scripted:
        yield scripted


@pytest.fixture
def pool(provider: ScriptedProvider, monkeypatch: pytest.MonkeyPatch) -> ModelPool:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-the-app-own-key")  # the app's ChatOpenAI needs one to be built
    return ModelPool.from_dict({"models": {"cloud": provider.pool_entry(input_price=1.0)}})


def worker_app(pool: ModelPool, redis_url: str, tmp_path: Path, name: str):  # type: ignore[no-untyped-def]
    """One worker's optimized app: its own process-local state, the shared Redis for answers."""
    return optimize(qa_graph(), pool=pool, cache=CacheConfig(path=redis_url, nodes=()), traces=tmp_path / f"{name}.db")


def test_a_cache_url_puts_node_state_and_answers_in_redis(pool: ModelPool, redis_url: str, tmp_path: Path) -> None:
    app = optimize(qa_graph(), pool=pool, cache=redis_url, traces=tmp_path / "t.sqlite")
    assert app.cache_layer is not None
    assert isinstance(app.cache_layer.responses, RedisResponseCache)
    assert isinstance(app.cache_layer.node_backend, RedisNodeCache)


def test_an_answer_one_worker_got_is_a_cache_hit_on_another(
    pool: ModelPool, provider: ScriptedProvider, redis_url: str, tmp_path: Path
) -> None:
    first, second = worker_app(pool, redis_url, tmp_path, "a"), worker_app(pool, redis_url, tmp_path, "b")

    first.invoke({"question": "Capital of France?"})
    again = second.invoke({"question": "Capital of France?"})

    assert len(provider.requests) == 1
    assert again["answers"] == ["Paris"]
    [call] = second.last_run.calls
    assert call.cache_hit and call.cost_usd == 0.0


def test_identical_requests_in_flight_on_two_workers_are_sent_once(
    pool: ModelPool, provider: ScriptedProvider, redis_url: str, tmp_path: Path
) -> None:
    apps = [worker_app(pool, redis_url, tmp_path, name) for name in ("a", "b", "c")]
    results: dict[int, dict] = {}

    def run(index: int) -> None:
        results[index] = apps[index].invoke({"question": "Capital of Spain?"})

    threads = [threading.Thread(target=run, args=(i,)) for i in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(provider.requests) == 1
    assert [results[i]["answers"] for i in range(3)] == [["Paris"]] * 3
    calls = [app.last_run.calls[0] for app in apps]
    sent = [call for call in calls if not (call.deduped or call.cache_hit)]
    assert len(sent) == 1 and sent[0].cost_usd > 0
    others = [call for call in calls if call is not sent[0]]
    assert all(call.deduped or call.cache_hit for call in others)  # a late one finds the answer cached
    assert any(call.deduped and "another worker" in call.reason for call in others)
    assert sum(app.last_run.cost_usd for app in apps) == sent[0].cost_usd


def _flight_worker(url: str, results: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    import redis

    flights = open_single_flight(url)
    counter = redis.Redis.from_url(url)

    def work() -> str:
        counter.incr("test:work-ran")
        time.sleep(0.5)
        return "the answer"

    counter.incr("test:ready")  # start together: the processes take seconds to spawn on a busy machine
    deadline = time.monotonic() + 120
    while int(counter.get("test:ready")) < 4 and time.monotonic() < deadline:
        time.sleep(0.005)
    landing = flights.run("request-digest", work, encode=str)
    results.put((landing.led, landing.value if landing.led else landing.shared))


def test_four_processes_with_one_request_in_flight_do_the_work_once(redis_url: str) -> None:
    import redis

    context = multiprocessing.get_context("fork")  # graphroute already imported: starts in ms, not seconds
    results = context.Queue()
    processes = [context.Process(target=_flight_worker, args=(redis_url, results)) for _ in range(4)]
    for process in processes:
        process.start()
    landings = [results.get(timeout=60) for _ in processes]
    for process in processes:
        process.join(timeout=30)

    assert int(redis.Redis.from_url(redis_url).get("test:work-ran")) == 1
    assert sorted(led for led, _ in landings) == [False, False, False, True]
    assert {value for _, value in landings} == {"the answer"}


def test_a_failed_leader_hands_the_flight_to_a_follower(redis_url: str) -> None:
    flights = [open_single_flight(redis_url) for _ in range(2)]
    started = threading.Event()
    outcome: dict[str, object] = {}

    def failing() -> str:
        started.set()
        time.sleep(0.2)
        raise ConnectionError("provider went away")

    def leader() -> None:
        with pytest.raises(ConnectionError):
            flights[0].run("k", failing, encode=str)

    thread = threading.Thread(target=leader)
    thread.start()
    started.wait(5)
    landing = flights[1].run("k", lambda: "retried by the follower", encode=str)
    thread.join()
    outcome["led"], outcome["value"] = landing.led, landing.value

    assert outcome == {"led": True, "value": "retried by the follower"}


def test_a_flight_needs_a_redis_url(tmp_path: Path) -> None:
    from graphroute import ConfigError

    with pytest.raises(ConfigError, match="single flight: a local path is not supported here"):
        open_single_flight(str(tmp_path))


def async_qa_graph() -> StateGraph:
    async def answer(state: QA) -> QA:
        reply = await ChatOpenAI(model="gpt-4o", temperature=0.0).ainvoke([HumanMessage(state["question"])])
        return {"answers": [str(reply.content)]}

    graph = StateGraph(QA)
    graph.add_node("answer", answer)
    graph.add_edge(START, "answer")
    graph.add_edge("answer", END)
    return graph


async def test_async_runs_on_two_workers_share_one_flight_too(
    pool: ModelPool, provider: ScriptedProvider, redis_url: str, tmp_path: Path
) -> None:
    apps = [
        optimize(async_qa_graph(), pool=pool, cache=CacheConfig(path=redis_url, nodes=()), traces=tmp_path / f"{n}.db")
        for n in ("a", "b")
    ]

    results = await asyncio.gather(*(app.ainvoke({"question": "Capital of Italy?"}) for app in apps))

    assert len(provider.requests) == 1
    assert [result["answers"] for result in results] == [["Paris"], ["Paris"]]
    assert sorted(app.last_run.calls[0].deduped for app in apps) == [False, True]
