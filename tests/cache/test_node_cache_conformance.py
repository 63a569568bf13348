"""One suite, every node-cache backend: ours must behave exactly like LangGraph's InMemoryCache."""

from __future__ import annotations

import operator
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, TypedDict

import pytest
from langgraph.cache.base import BaseCache
from langgraph.cache.memory import InMemoryCache
from langgraph.graph import END, START, StateGraph
from langgraph.types import CachePolicy, Send

from graphroute.cache import DiskNodeCache

NS = ("__pregel_ns_writes", "my_app.nodes.summarise", "summarise")
OTHER_NS = ("__pregel_ns_writes", "my_app.nodes.plan", "plan")


@pytest.fixture(params=["diskcache", "langgraph-memory"])
def cache(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BaseCache[Any]]:
    if request.param == "diskcache":
        with DiskNodeCache(tmp_path / "nodes") as disk:
            yield disk
    else:
        yield InMemoryCache()


def test_missing_keys_are_simply_absent(cache: BaseCache[Any]) -> None:
    assert cache.get([]) == {}
    assert cache.get([(NS, "nope")]) == {}


def test_values_round_trip_through_the_serializer(cache: BaseCache[Any]) -> None:
    writes = [("answers", ["Paris", "Tokyo"]), ("report", {"title": "Capitals", "words": 2}), ("n", 3.5)]
    cache.set({(NS, "k1"): (writes, None), (NS, "k2"): ([("flag", True)], None)})

    found = cache.get([(NS, "k1"), (NS, "k2"), (NS, "k3")])

    # LangGraph's JSON serializer hands tuples back as lists, whichever backend stores them.
    assert found == {(NS, "k1"): [list(write) for write in writes], (NS, "k2"): [["flag", True]]}


def test_a_key_lives_in_its_namespace(cache: BaseCache[Any]) -> None:
    cache.set({(NS, "same"): (["summary"], None), (OTHER_NS, "same"): (["plan"], None)})

    assert cache.get([(NS, "same")]) == {(NS, "same"): ["summary"]}
    assert cache.get([(OTHER_NS, "same")]) == {(OTHER_NS, "same"): ["plan"]}


def test_setting_again_overwrites(cache: BaseCache[Any]) -> None:
    cache.set({(NS, "k"): (["old"], None)})
    cache.set({(NS, "k"): (["new"], None)})

    assert cache.get([(NS, "k")]) == {(NS, "k"): ["new"]}


def test_entries_expire_after_their_ttl(cache: BaseCache[Any]) -> None:
    cache.set({(NS, "short"): (["gone soon"], 1), (NS, "forever"): (["stays"], None)})
    assert (NS, "short") in cache.get([(NS, "short")])

    time.sleep(1.1)

    assert cache.get([(NS, "short"), (NS, "forever")]) == {(NS, "forever"): ["stays"]}


def test_clear_removes_only_the_given_namespaces(cache: BaseCache[Any]) -> None:
    cache.set({(NS, "a"): ([1], None), (OTHER_NS, "b"): ([2], None)})

    cache.clear([NS])

    assert cache.get([(NS, "a"), (OTHER_NS, "b")]) == {(OTHER_NS, "b"): [2]}
    cache.clear()
    assert cache.get([(OTHER_NS, "b")]) == {}


async def test_async_twins_behave_like_the_sync_methods(cache: BaseCache[Any]) -> None:
    await cache.aset({(NS, "a"): (["async"], None), (OTHER_NS, "b"): (["other"], 60)})

    assert await cache.aget([(NS, "a"), (OTHER_NS, "b")]) == {(NS, "a"): ["async"], (OTHER_NS, "b"): ["other"]}
    await cache.aclear([OTHER_NS])
    assert await cache.aget([(NS, "a"), (OTHER_NS, "b")]) == {(NS, "a"): ["async"]}
    await cache.aclear()
    assert await cache.aget([(NS, "a")]) == {}


class State(TypedDict, total=False):
    topics: list[str]
    notes: Annotated[list[str], operator.add]


def build_app(cache: BaseCache[Any], runs: list[str]) -> Any:
    def research(state: dict[str, str]) -> State:
        runs.append(state["topic"])
        return {"notes": [f"notes on {state['topic']}"]}

    def fan_out(state: State) -> list[Send]:
        return [Send("research", {"topic": topic}) for topic in state["topics"]]

    graph = StateGraph(State)
    graph.add_node("research", research, cache_policy=CachePolicy())
    graph.add_conditional_edges(START, fan_out, ["research"])
    graph.add_edge("research", END)
    return graph.compile(cache=cache)


def test_a_langgraph_app_reuses_node_results_from_the_backend(cache: BaseCache[Any]) -> None:
    runs: list[str] = []
    app = build_app(cache, runs)

    first = app.invoke({"topics": ["tides", "moon"]})
    updates = list(app.stream({"topics": ["tides", "moon", "sun"]}, stream_mode="updates"))

    assert sorted(runs) == ["moon", "sun", "tides"]  # only the new input ran again
    cached = [update for update in updates if update.get("__metadata__", {}).get("cached")]
    assert len(cached) == 2
    assert first["notes"] == ["notes on tides", "notes on moon"]


async def test_an_async_run_reuses_node_results_too(cache: BaseCache[Any]) -> None:
    runs: list[str] = []
    app = build_app(cache, runs)

    await app.ainvoke({"topics": ["tides"]})
    again = await app.ainvoke({"topics": ["tides"]})

    assert runs == ["tides"]
    assert again["notes"] == ["notes on tides"]
