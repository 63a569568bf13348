"""Batching inside an optimized run: a Send fan-out with duplicates sends each request once."""

from __future__ import annotations

import operator
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, TypedDict

import pytest
from langchain_core.messages import HumanMessage
from langchain_openai import ChatOpenAI
from langgraph.graph import END, START, StateGraph
from langgraph.types import Send

from graphroute import ModelPool, ProviderError, optimize
from graphroute.batching import BatchConfig
from graphroute.cache import trace_stats
from graphroute.testing import Reply, ScriptedProvider

TOPICS = ["Peru", "Chile", "Peru", "Japan", "Chile", "Peru"]  # 3 unique, 3 duplicates


class Fan(TypedDict, total=False):
    topics: list[str]
    temperature: float
    answers: Annotated[list[tuple[str, str]], operator.add]


def fan_out(state: Fan) -> list[Send]:
    return [Send("capital", {"topic": t, "temperature": state.get("temperature", 0.0)}) for t in state["topics"]]


def capital(task: dict[str, Any]) -> Fan:
    llm = ChatOpenAI(model="gpt-4o", temperature=task["temperature"], max_tokens=8)
    reply = llm.invoke([HumanMessage(f"Capital of {task['topic']}? City only.")])
    return {"answers": [(task["topic"], str(reply.content))]}


async def acapital(task: dict[str, Any]) -> Fan:
    llm = ChatOpenAI(model="gpt-4o", temperature=task["temperature"], max_tokens=8)
    reply = await llm.ainvoke([HumanMessage(f"Capital of {task['topic']}? City only.")])
    return {"answers": [(task["topic"], str(reply.content))]}


def fan_graph(node: Any = capital) -> StateGraph:
    graph = StateGraph(Fan)
    graph.add_node("capital", node)
    graph.add_conditional_edges(START, fan_out, ["capital"])
    graph.add_edge("capital", END)
    return graph


@pytest.fixture(autouse=True)
def app_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-app-key")  # the app's own ChatOpenAI is built with one


def echo(delay_s: float = 0.4, status: int = 200) -> ScriptedProvider:
    """Answers with the topic it was asked about, slowly enough for calls to overlap."""
    return ScriptedProvider(
        lambda request: Reply(
            content=request.body["messages"][-1]["content"].split()[2], delay_s=delay_s, status=status
        )
    )


@pytest.fixture
def provider() -> Iterator[ScriptedProvider]:
    with echo() as scripted:
        yield scripted


def batched_app(provider: ScriptedProvider, tmp_path: Path, node: Any = capital) -> Any:
    pool = ModelPool.from_dict({"models": {"m": provider.pool_entry()}})
    # A wide window: on a loaded machine LangGraph may start the Send workers tens of ms apart, and
    # these tests are about what happens to calls that do arrive together, not about how soon.
    return optimize(fan_graph(node), pool=pool, batching=BatchConfig(window_ms=250), traces=tmp_path / "t.sqlite")


def test_a_fan_out_sends_each_unique_request_once(provider: ScriptedProvider, tmp_path: Path) -> None:
    app = batched_app(provider, tmp_path)

    result = app.invoke({"topics": TOPICS})

    assert Counter(r.body["messages"][0]["content"] for r in provider.requests) == Counter(
        {"Capital of Peru? City only.": 1, "Capital of Chile? City only.": 1, "Capital of Japan? City only.": 1}
    )
    assert sorted(result["answers"]) == sorted((topic, f"{topic}?") for topic in TOPICS)
    calls = app.store.calls(run_id=app.last_run.run_id)
    assert len(calls) == 6 and sum(call.deduped for call in calls) == 3
    assert all(call.batched for call in calls if not call.deduped)
    assert all(call.output_tokens == 0 and "identical call in flight" in call.reason for call in calls if call.deduped)
    assert app.last_run.cache.deduped == 3 and app.last_run.cache.batched == 3
    assert trace_stats(app.store, app.last_run.run_id)["model_calls_sent"] == 3


async def test_async_nodes_are_batched_and_deduplicated(provider: ScriptedProvider, tmp_path: Path) -> None:
    app = batched_app(provider, tmp_path, acapital)
    topics = [f"Land{n % 5}" for n in range(15)]  # 5 unique, each asked 3 times

    result = await app.ainvoke({"topics": topics})

    assert len(provider.requests) == 5
    assert sorted(result["answers"]) == sorted((topic, f"{topic}?") for topic in topics)
    assert app.last_run.cache.deduped == 10


def test_sampled_calls_are_not_merged(provider: ScriptedProvider, tmp_path: Path) -> None:
    app = batched_app(provider, tmp_path)

    app.invoke({"topics": ["Peru", "Peru", "Peru"], "temperature": 0.7})

    assert len(provider.requests) == 3
    assert app.last_run.cache.deduped == 0


def test_a_failed_request_fails_every_caller_that_shared_it(tmp_path: Path) -> None:
    with echo(delay_s=0.3, status=400) as failing:
        app = batched_app(failing, tmp_path)

        with pytest.raises(ProviderError, match="400"):
            app.invoke({"topics": ["Peru", "Peru", "Peru"]})

    calls = app.store.calls(run_id=app.last_run.run_id)
    assert len(failing.requests) == 1
    assert calls and all(call.error and "400" in call.error for call in calls)
