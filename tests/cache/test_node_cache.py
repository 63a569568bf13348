"""optimize(graph, cache=...): which nodes are cached, what a key distinguishes, what the trace shows."""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from langgraph.cache.memory import InMemoryCache
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, StateGraph
from langgraph.types import CachePolicy

from graphroute import ConfigError, ModelPool, OptimizedApp, optimize
from graphroute.cache import CacheConfig, NodeCache, trace_stats
from tests.cache import graphs
from tests.cache.graphs import RUNS, State, build_chain, build_with_subgraph

# The graphs here make no model calls: a pool entry that is never contacted is enough.
POOL = ModelPool.from_dict(
    {"models": {"unused": {"provider": "openai-compatible", "model": "x", "base_url": "http://127.0.0.1:9/v1"}}}
)


@pytest.fixture(autouse=True)
def fresh_runs() -> Iterator[None]:
    RUNS.clear()
    yield
    RUNS.clear()


def cached(graph: Any, tmp_path: Path, cache: Any = None) -> OptimizedApp:
    return optimize(graph, pool=POOL, cache=cache or CacheConfig(path=tmp_path / "cache"), traces=tmp_path / "t.sqlite")


def test_a_second_run_is_served_from_the_cache_and_says_so(tmp_path: Path) -> None:
    app = cached(build_chain("step", "extra"), tmp_path)

    first = app.invoke({"x": 4})
    first_stats = app.last_run.cache.as_dict()
    updates = list(app.stream({"x": 4}, stream_mode="updates"))

    assert RUNS == ["step", "extra"]
    assert first_stats["node_misses"] == 2 and first_stats["node_hits"] == 0
    assert app.last_run.cache.node_hits == 2 and app.last_run.cache.node_misses == 0
    assert all(update["__metadata__"] == {"cached": True} for update in updates)
    rows = app.store.node_runs(run_id=app.last_run.run_id)
    assert [(row.node, row.cache_hit) for row in rows] == [("step", True), ("extra", True)]
    assert trace_stats(app.store, app.last_run.run_id)["node_hits"] == 2
    assert app.invoke({"x": 4}) == first


def test_different_inputs_get_different_entries(tmp_path: Path) -> None:
    app = cached(build_chain("step"), tmp_path)

    results = [app.invoke({"x": x})["y"] for x in (1, 2, 1)]

    assert results == [10, 20, 10]
    assert RUNS == ["step", "step"]  # the third run (x=1 again) was a hit


def test_two_graphs_never_read_each_others_entries(tmp_path: Path) -> None:
    """Same node function, same node name, same input, same cache dir — different graphs."""
    short, longer = build_chain("step"), build_chain("step", "extra")

    cached(short, tmp_path).invoke({"x": 3})
    cached(longer, tmp_path).invoke({"x": 3})

    assert RUNS == ["step", "step", "extra"]


def test_plain_langgraph_keys_would_collide_across_graphs() -> None:
    """Why graph identity is in our keys: LangGraph's namespace is only function + node name."""
    shared = InMemoryCache()
    for graph in (build_chain("step"), build_chain("step", "extra")):
        graph.nodes["step"].cache_policy = CachePolicy()
        graph.compile(cache=shared).invoke({"x": 3})

    # The second graph reused the first graph's entry — edges included: its own "extra" never ran.
    assert RUNS == ["step"]


def _versioned_step(increment: int) -> Any:
    """The same function name and module, with different code — as after an edit."""
    namespace: dict[str, Any] = {"__name__": "tests.cache.versioned"}
    exec(f"def step(state):\n    return {{'y': state['x'] + {increment}}}\n", namespace)
    return namespace["step"]


def test_editing_a_node_invalidates_its_entries(tmp_path: Path) -> None:
    results = []
    for increment in (1, 2):
        graph = StateGraph(State)
        graph.add_node("step", _versioned_step(increment))
        graph.add_edge(START, "step")
        graph.add_edge("step", END)
        results.append(cached(graph, tmp_path).invoke({"x": 1})["y"])

    assert results == [2, 3]


def test_a_key_function_chooses_what_identifies_the_input(tmp_path: Path) -> None:
    config = CacheConfig(path=tmp_path / "cache", nodes={"step": NodeCache(key=lambda state: str(state["x"]))})
    app = cached(build_chain("step"), tmp_path, config)

    app.invoke({"x": 1, "noise": "run one"})
    app.invoke({"x": 1, "noise": "run two"})

    assert RUNS == ["step"]


def test_entries_expire_after_the_node_ttl(tmp_path: Path) -> None:
    app = cached(
        build_chain("step", "extra"), tmp_path, CacheConfig(path=tmp_path / "cache", nodes={"step": 1, "extra": None})
    )

    app.invoke({"x": 1})
    app.invoke({"x": 1})
    time.sleep(1.1)
    app.invoke({"x": 1})

    assert RUNS == ["step", "extra", "step"]  # step expired, extra did not


def test_side_effect_nodes_always_run(tmp_path: Path) -> None:
    graph = build_chain("step", "notify", "audit")
    graph.nodes["audit"].metadata = {"side_effects": True}  # marked by node metadata
    app = cached(graph, tmp_path)  # notify: marked by @side_effect

    for _ in range(3):
        app.invoke({"x": 2})

    assert RUNS.count("step") == 1
    assert RUNS.count("notify") == 3 and RUNS.count("audit") == 3
    assert app.cache_layer is not None and app.cache_layer.cached_nodes == ["step"]


def test_side_effects_can_be_declared_in_the_config(tmp_path: Path) -> None:
    app = cached(build_chain("step", "extra"), tmp_path, CacheConfig(path=tmp_path / "cache", side_effects={"extra"}))

    app.invoke({"x": 2})
    app.invoke({"x": 2})

    assert RUNS == ["step", "extra", "extra"]


def test_a_subgraph_with_a_side_effect_is_not_cached_whole(tmp_path: Path) -> None:
    app = cached(build_with_subgraph(), tmp_path)

    app.invoke({"x": 5})
    app.invoke({"x": 5})

    assert app.cache_layer is not None and app.cache_layer.cached_nodes == ["report:extra", "step"]
    assert RUNS == ["step", "extra", "notify", "notify"]
    hits = [row.node for row in app.store.node_runs(run_id=app.last_run.run_id) if row.cache_hit]
    assert sorted(hits) == ["report:extra", "step"]


def test_naming_a_side_effect_node_for_caching_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="side effects"):
        cached(build_with_subgraph(), tmp_path, CacheConfig(nodes=["report"]))
    with pytest.raises(ConfigError, match="side effects"):
        cached(build_chain("notify"), tmp_path, CacheConfig(nodes=["notify"]))


def test_unknown_nodes_are_config_errors_naming_the_real_ones(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"'stpe' is not in the graph.*extra, step"):
        cached(build_chain("step", "extra"), tmp_path, CacheConfig(nodes=["stpe"]))
    with pytest.raises(ConfigError, match="report has: extra, notify"):
        cached(build_with_subgraph(), tmp_path, CacheConfig(nodes=["report:draft"]))


def test_the_users_app_is_left_untouched(tmp_path: Path) -> None:
    compiled = build_chain("step").compile()

    app = cached(compiled, tmp_path)
    app.invoke({"x": 1})

    assert compiled.cache is None and compiled.nodes["step"].cache_policy is None
    assert (
        app.app is not compiled
        and app.graph_id == OptimizedApp(compiled, pool=POOL, router=app.router, store=app.store).graph_id
    )


def test_entries_persist_across_processes(tmp_path: Path) -> None:
    context = multiprocessing.get_context("fork")

    def run_in_new_process() -> dict[str, Any]:
        with context.Pool(1) as pool:
            return pool.apply(graphs.run_once, (str(tmp_path / "cache"), str(tmp_path / "t.sqlite")))

    first, second = run_in_new_process(), run_in_new_process()

    assert first["runs"] == ["step", "extra"] and first["hits"] == 0
    assert second["runs"] == [] and second["hits"] == 2
    assert second["result"] == first["result"]


def test_a_checkpointed_thread_keeps_working_with_the_cache(tmp_path: Path) -> None:
    app = optimize(
        build_chain("step", "extra"),
        pool=POOL,
        cache=CacheConfig(path=tmp_path / "cache"),
        traces=tmp_path / "t.sqlite",
        checkpointer=InMemorySaver(),
    )
    thread = {"configurable": {"thread_id": "t-1"}}

    app.invoke({"x": 7}, thread)
    app.invoke({"x": 7}, {"configurable": {"thread_id": "t-2"}})

    assert RUNS == ["step", "extra"]
    assert app.get_state(thread).values["y"] == 70


async def test_async_streaming_runs_are_served_and_counted(tmp_path: Path) -> None:
    app = cached(build_chain("step", "extra"), tmp_path)
    await app.ainvoke({"x": 1})

    updates = [update async for update in app.astream({"x": 1}, stream_mode="updates")]

    assert RUNS == ["step", "extra"]
    assert len(updates) == 2 and all(update["__metadata__"]["cached"] for update in updates)
    assert app.last_run.cache.node_hits == 2
