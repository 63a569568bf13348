"""Transparency: with every node routed to the model it builds itself, ``optimize(app)`` is the app.

Each of the ten graph shapes in ``tests/graph/shapes.py`` runs twice from scratch: as its user
compiled it, and under ``optimize`` with each node pinned to a pool entry serving a fresh copy
of that node's own (deterministic, fake) model. Final states, stream events in every stream
mode, reducers, interrupts and resume on a checkpointed thread, subgraphs, LangGraph's retries
and errors raised in nodes must all be the same.

Events are compared after blanking what differs between *any* two runs of the same app (run,
task and checkpoint ids, timestamps); routing leaves no mark of its own on messages. Errors from
model calls are the one documented difference: they surface as graphroute's ``ProviderError``
family, with the provider's exception as ``__cause__``. Shapes whose tasks run concurrently are compared as
multisets, because LangGraph itself does not order concurrent tasks' events.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from langgraph.types import Command

from graphroute import OptimizedApp, optimize
from tests.graph.fakes import mirror_pool, normalise
from tests.graph.shapes import SHAPES, SHAPES_BY_NAME, Shape, compiled

STREAM_MODES: list[Any] = [
    "values",
    "updates",
    "messages",
    "custom",
    "debug",
    "tasks",
    "checkpoints",
    ["values", "updates", "messages", "custom"],
]
THREAD = {"configurable": {"thread_id": "thread-1"}}


def original(shape: Shape, *, checkpointer: bool = False) -> Any:
    return compiled(shape, checkpointer=checkpointer)[0]


def optimized(shape: Shape, tmp_path: Path, *, checkpointer: bool = False) -> OptimizedApp:
    """The same shape under optimize(), each node pinned to a copy of the model it builds."""
    app, built = compiled(shape, checkpointer=checkpointer)
    return optimize(app, pool=mirror_pool(built.models), routes=built.routes, traces=tmp_path / "traces.sqlite")


def events(app: Any, shape: Shape, **stream_kwargs: Any) -> list[str]:
    """Everything the app streams for the shape's input (then its resume value), normalised."""
    seen: list[Any] = []

    async def astream(value: Any) -> None:
        async for event in app.astream(value, THREAD, **stream_kwargs):
            seen.append(event)

    def run(value: Any) -> None:
        if shape.is_async:
            asyncio.run(astream(value))
        else:
            seen.extend(app.stream(value, THREAD, **stream_kwargs))

    try:
        run(shape.input)
        if shape.resume is not None:
            run(Command(resume=shape.resume))
    except Exception as error:  # the error is part of what the app does
        seen.append(("raised", type(error).__name__, str(error)))
    return [normalise(event) for event in seen]


def assert_same_events(shape: Shape, expected: list[str], actual: list[str]) -> None:
    assert expected, "the original app streamed nothing"
    if shape.parallel:
        assert Counter(actual) == Counter(expected)
    else:
        assert actual == expected


@pytest.mark.parametrize("mode", STREAM_MODES, ids=lambda mode: "+".join(mode) if isinstance(mode, list) else mode)
@pytest.mark.parametrize("shape", SHAPES, ids=lambda shape: shape.name)
def test_stream_events_are_the_same_in_every_mode(shape: Shape, mode: Any, tmp_path: Path) -> None:
    saves = mode == "checkpoints"  # the only mode that streams nothing without a checkpointer
    expected = events(original(shape, checkpointer=saves), shape, stream_mode=mode, **shape.stream_kwargs)

    actual = events(optimized(shape, tmp_path, checkpointer=saves), shape, stream_mode=mode, **shape.stream_kwargs)

    assert_same_events(shape, expected, actual)


@pytest.mark.parametrize("shape", SHAPES, ids=lambda shape: shape.name)
def test_final_state_is_the_same(shape: Shape, tmp_path: Path) -> None:
    def final(app: Any) -> str:
        try:
            if shape.is_async:
                return normalise(asyncio.run(app.ainvoke(shape.input, THREAD)))
            return normalise(app.invoke(shape.input, THREAD))
        except Exception as error:
            return normalise(("raised", type(error).__name__, str(error)))

    app = optimized(shape, tmp_path)

    assert final(app) == final(original(shape))
    routed_nodes = {call.node for call in app.last_run.calls}
    assert routed_nodes <= set(shape.make().routes)  # every model call went through routing...
    assert {call.model for call in app.last_run.calls} <= set(shape.make().models)  # ...to the node's own model


def test_subgraph_events_carry_the_same_namespaces(tmp_path: Path) -> None:
    shape = SHAPES_BY_NAME["nested"]
    expected = events(original(shape), shape, stream_mode="updates", subgraphs=True)

    actual = events(optimized(shape, tmp_path), shape, stream_mode="updates", subgraphs=True)

    assert actual == expected
    assert any("('research:<id>', 'deep:<id>')" in event for event in actual)  # two levels deep


def test_nested_calls_are_traced_under_their_full_node_ids(tmp_path: Path) -> None:
    app = optimized(SHAPES_BY_NAME["nested"], tmp_path)

    app.invoke({"question": "q"})

    assert [(call.node, call.model) for call in app.last_run.calls] == [
        ("research:intro", "intro"),
        ("research:deep:detail", "detail"),
        ("research:deep:verify", "verify"),
    ]


def test_an_interrupted_thread_resumes_the_same_way(tmp_path: Path) -> None:
    shape = SHAPES_BY_NAME["interrupt"]
    plain, routed = original(shape), optimized(shape, tmp_path)

    paused = [app.invoke(shape.input, THREAD) for app in (plain, routed)]
    assert normalise(paused[1]) == normalise(paused[0])
    assert "__interrupt__" in paused[1]
    assert routed.get_state(THREAD).next == plain.get_state(THREAD).next == ("approve",)

    resumed = [app.invoke(Command(resume="approved"), THREAD) for app in (plain, routed)]

    assert resumed[1] == resumed[0] == {**resumed[0], "answer": "done", "verdict": "approved"}
    history = [[normalise(s.values) for s in app.get_state_history(THREAD)] for app in (plain, routed)]
    assert history[1] == history[0]
    runs = routed.store.runs(graph=routed.graph_id)
    assert len(runs) == 2 and {run.metadata["thread_id"] for run in runs} == {"thread-1"}


def test_a_node_error_reaches_the_caller_unchanged_and_the_run_is_marked_failed(tmp_path: Path) -> None:
    shape = SHAPES_BY_NAME["failing"]
    app = optimized(shape, tmp_path)

    with pytest.raises(ValueError, match="cannot parse 'raw data'") as raised:
        app.invoke(shape.input)
    with pytest.raises(ValueError) as expected:
        original(shape).invoke(shape.input)

    assert str(raised.value) == str(expected.value)
    assert app.store.run(app.last_run.run_id).status == "error"
    fetch_runs = [r for r in app.store.node_runs(run_id=app.last_run.run_id) if r.node == "fetch"]
    assert [r.error is None for r in fetch_runs] == [False, True]  # LangGraph's retry policy ran it twice


def test_an_async_only_graph_refuses_sync_invoke_exactly_like_the_original(tmp_path: Path) -> None:
    shape = SHAPES_BY_NAME["async_only"]
    outcomes = []
    for app in (original(shape), optimized(shape, tmp_path)):
        with pytest.raises(Exception) as raised:
            app.invoke(shape.input)
        outcomes.append((type(raised.value), str(raised.value)))

    assert outcomes[1] == outcomes[0]


def test_batch_returns_the_same_results_in_order(tmp_path: Path) -> None:
    shape = SHAPES_BY_NAME["router_literal"]
    inputs = [{"question": f"question {i}"} for i in range(3)]

    assert optimized(shape, tmp_path).batch(inputs) == original(shape).batch(inputs)
