"""Which pillars a budget's plan asks for each call's difficulty: ``optimize(..., pillars=[...])``.

The rules pillar alone is the default (microseconds, no model). Adding slower pillars — the
semantic router, the judge, a user's own — makes the plan's rung choice as careful as the
per-call cascade's, and they are asked the same way: in order, stopping at the first sure one.
"""

from __future__ import annotations

import asyncio
import operator
from pathlib import Path
from typing import Annotated, TypedDict

import pytest
from langchain_core.language_models import FakeListChatModel
from langchain_core.messages import HumanMessage
from langgraph.graph import END, START, StateGraph

from graphroute import ModelPool, RouteRequest, Signal, TraceStore, optimize
from graphroute.errors import ConfigError
from graphroute.pillars.base import Pillar
from graphroute.routing.static import StaticRouter
from graphroute.testing import Reply, ScriptedProvider
from tests.planning.conftest import local_and_cloud

BICYCLE = "Tell me about the history of the bicycle in Europe."  # the rules have no opinion on it
KITE = "Tell me about the history of the kite in Asia."  # nor on this one


class State(TypedDict, total=False):
    question: str
    notes: Annotated[list[str], operator.add]


class Grader(Pillar):
    """A user's pillar: anything about bicycles is hard. Counts how it was asked."""

    name = "grader"

    def __init__(self) -> None:
        self.asked: list[str] = []

    def score(self, request: RouteRequest) -> Signal:
        self.asked.append("sync")
        return self._grade(request)

    async def ascore(self, request: RouteRequest) -> Signal:
        self.asked.append("async")
        await asyncio.sleep(0)
        return self._grade(request)

    def _grade(self, request: RouteRequest) -> Signal:
        hard = "bicycle" in request.text
        return Signal(self.name, difficulty=0.9 if hard else 0.1, confidence=0.9, reason="bicycles are hard")


def one_answer() -> StateGraph:
    async def answer(state: State) -> State:
        reply = await FakeListChatModel(responses=["unused"]).ainvoke([HumanMessage(state["question"])])
        return {"notes": [str(reply.content)]}

    graph = StateGraph(State)
    graph.add_node("answer", answer)
    graph.add_edge(START, "answer")
    graph.add_edge("answer", END)
    return graph


@pytest.fixture
def pool():
    with ScriptedProvider(lambda request: Reply("ok", prompt_tokens=50, completion_tokens=20)) as provider:
        yield local_and_cloud(provider, price=5.0)


def routed(app, question: str) -> tuple[str, list[str]]:  # type: ignore[no-untyped-def]
    asyncio.run(app.ainvoke({"question": question, "notes": []}))
    (call,) = app.last_run.calls
    return call.model, [signal["pillar"] for signal in call.signals]


def test_a_pillar_added_after_the_rules_decides_what_the_rules_cannot(pool: ModelPool, tmp_path: Path) -> None:
    grader = Grader()
    store = TraceStore(tmp_path / "traces.sqlite")
    graded = optimize(one_answer(), pool=pool, cloud_share=0.2, pillars=["rules", grader], traces=store)
    rules_only = optimize(one_answer(), pool=pool, cloud_share=0.2, traces=store)

    assert routed(graded, BICYCLE) == ("cloud", ["rules", "grader"])
    assert routed(graded, KITE) == ("local", ["rules", "grader"])
    # The rules alone cannot tell the two apart: both get the same rung.
    assert routed(rules_only, BICYCLE)[0] == routed(rules_only, KITE)[0]
    assert grader.asked == ["async", "async"]  # ainvoke asks the pillars without blocking the event loop
    assert "each call's rung: picked by the difficulty from rules → grader" in str(graded.plan)
    assert "each call's rung: picked by the difficulty from rules" in str(rules_only.plan)


def test_a_sure_pillar_ends_the_asking(pool: ModelPool, tmp_path: Path) -> None:
    """A pillar sure of itself (confidence ≥ 0.8) is the last one asked, as in the cascade."""

    class Sure(Grader):
        name = "sure"

        def _grade(self, request: RouteRequest) -> Signal:
            return Signal(self.name, difficulty=0.05, confidence=1.0)

    sure, grader = Sure(), Grader()
    app = optimize(one_answer(), pool=pool, cloud_share=0.2, pillars=[sure, grader], traces=tmp_path / "t.sqlite")
    assert routed(app, BICYCLE) == ("local", ["sure"])
    assert sure.asked == ["async"] and grader.asked == []


def test_without_a_budget_the_pillars_route_through_a_cascade(pool: ModelPool, tmp_path: Path) -> None:
    store = TraceStore(tmp_path / "traces.sqlite")
    app = optimize(one_answer(), pool=pool, pillars=["rules", Grader()], traces=store)
    assert routed(app, BICYCLE) == ("cloud", ["rules", "grader"])
    pinned = optimize(one_answer(), pool=pool, pillars=["rules", Grader()], routes={"answer": "local"}, traces=store)
    assert routed(pinned, BICYCLE)[0] == "local"  # pins still win


def test_pillar_mistakes_are_named(pool: ModelPool) -> None:
    with pytest.raises(ConfigError, match=r"drop router=\.\.\. or drop pillars="):
        optimize(one_answer(), pool=pool, pillars=["rules"], router=StaticRouter("local"))
    with pytest.raises(ConfigError, match="drop 'bandit' from pillars"):
        optimize(one_answer(), pool=pool, budget_usd=0.01, pillars=["rules", "bandit"])
    with pytest.raises(ConfigError, match="nope"):
        optimize(one_answer(), pool=pool, budget_usd=0.01, pillars=["rules", "nope"])


def test_routed_chat_model_asks_its_router_asynchronously_too(pool: ModelPool) -> None:
    from graphroute import RoutedChatModel
    from graphroute.routing.cascade import CascadeRouter

    grader = Grader()
    model = RoutedChatModel(pool=pool, router=CascadeRouter(pool, [grader]), traces=False)
    asyncio.run(model.ainvoke(BICYCLE))

    async def streamed() -> None:
        async for _ in model.astream(KITE):
            pass

    asyncio.run(streamed())
    model.invoke(KITE)
    assert grader.asked == ["async", "async", "sync"]


def test_the_pool_file_names_the_pillars_for_optimize_and_the_chat_model(tmp_path: Path) -> None:
    """``[routing] pillars = ["rules", "grader"]``: every way of routing the pool asks them."""
    from graphroute import RoutedChatModel
    from graphroute.pillars.registry import register, unregister

    register("grader", Grader)
    try:
        with ScriptedProvider(lambda request: Reply("ok")) as provider:
            pool_file = tmp_path / "graphroute.toml"
            pool_file.write_text(
                f"""
[routing]
default = "local"
pillars = ["rules", "grader"]

[models.local]
provider = "openai-compatible"
model = "scripted"
base_url = "{provider.base_url}"
locality = "local"

[models.cloud]
provider = "openai-compatible"
model = "scripted"
base_url = "{provider.base_url}"
input_price = 5.0
output_price = 5.0
""",
                encoding="utf-8",
            )
            pool = ModelPool.from_toml(pool_file)
            store = TraceStore(tmp_path / "traces.sqlite")
            assert routed(optimize(one_answer(), pool=pool, traces=store), BICYCLE) == ("cloud", ["rules", "grader"])
            assert routed(optimize(one_answer(), pool=pool, traces=store), KITE) == ("local", ["rules", "grader"])
            fresh = TraceStore(tmp_path / "planned.sqlite")  # a plan learns from its app's traces: start clean
            planned = optimize(one_answer(), pool=pool, cloud_share=0.2, traces=fresh)
            assert routed(planned, BICYCLE) == ("cloud", ["rules", "grader"])
            reply = RoutedChatModel(pool=pool, traces=False).invoke(BICYCLE)
            assert reply.response_metadata["graphroute_model"] == "cloud"
            assert routed(optimize(one_answer(), pool=pool, pillars=["rules"], traces=store), BICYCLE)[1] == ["rules"]
    finally:
        unregister("grader")
