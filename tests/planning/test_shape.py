"""The run's shape read from the app: solver/critic loops become retry loops the plan escalates in."""

from __future__ import annotations

import importlib.util
import operator
import sys
from pathlib import Path
from typing import Annotated, TypedDict

import pytest
from langchain_core.language_models import FakeListChatModel
from langchain_core.messages import HumanMessage
from langchain_core.tools import tool
from langgraph.graph import END, START, StateGraph
from langgraph.prebuilt import ToolNode

from graphroute import ModelPool, TraceStore, optimize
from graphroute.errors import ConfigError
from graphroute.graph import inspect
from graphroute.planning import Plan, Quorum, Retry, RunState, Step, TokenCounter
from graphroute.planning.live import plan_app, planned_router
from graphroute.planning.shape import infer_workflow
from graphroute.testing import ReceivedRequest, Reply, ScriptedProvider


class State(TypedDict, total=False):
    question: str
    answers: Annotated[list[str], operator.add]
    verdict: str


def solve(state: State) -> State:
    tries = len(state.get("answers", []))
    reply = FakeListChatModel(responses=["x"]).invoke([HumanMessage(f"Solve (try {tries + 1}): {state['question']}")])
    return {"answers": [str(reply.content)]}


def critic(state: State) -> State:
    reply = FakeListChatModel(responses=["x"]).invoke([HumanMessage(f"Is this right? {state['answers'][-1]}")])
    return {"verdict": str(reply.content)}


def critic_loop(answers: int = 3) -> StateGraph:
    """solve → critic, back to solve on a rejection, at most ``answers`` answers."""

    def again(state: State) -> str:
        return "solve" if state["verdict"] == "reject" and len(state["answers"]) < answers else END

    graph = StateGraph(State)
    graph.add_node("solve", solve)
    graph.add_node("critic", critic)
    graph.add_edge(START, "solve")
    graph.add_edge("solve", "critic")
    graph.add_conditional_edges("critic", again, ["solve", END])
    return graph


def shape_of(graph: StateGraph, **kwargs):
    inspected = inspect(graph.compile())
    return infer_workflow(inspected, {n: (1.0, 1.0) for n in inspected.nodes_of_kind("llm")}, **kwargs)


def test_a_solver_critic_loop_is_a_retry_loop() -> None:
    assert shape_of(critic_loop()).parts == (Retry("solve", "critic", 3),)
    assert shape_of(critic_loop(), attempts=5).parts == (Retry("solve", "critic", 5),)


def test_an_agent_tool_loop_and_a_chain_stay_steps() -> None:
    @tool
    def lookup(city: str) -> str:
        """Look a city up."""
        return city

    def agent(state: dict) -> dict:
        FakeListChatModel(responses=["x"]).invoke("think")
        return {}

    react = StateGraph(dict)
    react.add_node("agent", agent)
    react.add_node("tools", ToolNode([lookup]))
    react.add_edge(START, "agent")
    react.add_conditional_edges("agent", lambda s: "tools" if s.get("more") else END, ["tools", END])
    react.add_edge("tools", "agent")
    assert shape_of(react).parts == (Step("agent"),)

    chain = StateGraph(State)
    chain.add_node("solve", solve)
    chain.add_node("critic", critic)
    chain.add_edge(START, "solve")
    chain.add_edge("solve", "critic")
    chain.add_edge("critic", END)
    assert shape_of(chain).parts == (Step("solve"), Step("critic"))


def test_a_loop_of_three_model_nodes_is_not_guessed_at() -> None:
    graph = critic_loop()
    graph.add_node("polish", solve)
    graph.add_edge("critic", "polish")  # critic → polish → solve: three model nodes in the loop
    graph.add_edge("polish", "solve")
    assert {type(part) for part in shape_of(graph).parts} == {Step}


def test_a_declared_quorum_and_its_mistakes() -> None:
    inspected = inspect(critic_loop().compile())
    workflow = infer_workflow(inspected, {"solve": (6.0, 1.0), "critic": (1.0, 1.0)}, quorums={"solve": 4})
    assert workflow.parts == (Quorum("solve", 6, 4), Step("critic"))
    with pytest.raises(ConfigError, match="need 7 of its 6"):
        infer_workflow(inspected, {"solve": (6.0, 1.0), "critic": (1.0, 1.0)}, quorums={"solve": 7})
    with pytest.raises(ConfigError, match="writer"):
        infer_workflow(inspected, {"solve": (6.0, 1.0)}, quorums={"writer": 2})


@pytest.mark.parametrize(("share", "need"), [(2 / 3, 4), (0.67, 5), (0.5, 3), (1.0, 6), (0.01, 1)])
def test_a_quorum_can_be_a_share_of_however_many_copies_run(share: float, need: int) -> None:
    inspected = inspect(critic_loop().compile())
    workflow = infer_workflow(inspected, {"solve": (6.0, 1.0), "critic": (1.0, 1.0)}, quorums={"solve": share})
    assert workflow.parts[0] == Quorum("solve", 6, need)


@pytest.mark.parametrize("bad", [0.0, 1.5, -0.2, True, "4"])
def test_a_quorum_that_is_neither_a_count_nor_a_share_is_refused(bad) -> None:
    inspected = inspect(critic_loop().compile())
    with pytest.raises(ConfigError, match="quorum for 'solve'"):
        infer_workflow(inspected, {"solve": (6.0, 1.0), "critic": (1.0, 1.0)}, quorums={"solve": bad})


def test_optimize_plans_a_declared_quorum_and_refuses_one_without_a_budget() -> None:
    from tests.apps import build_capitals

    app = optimize(build_capitals(), budget_usd=0.01, quorums={"capital": 0.5})
    (quorum,) = [part for part in app.plan.workflow.parts if isinstance(part, Quorum)]
    assert quorum.node == "capital" and quorum.need == max(1, -(-quorum.width // 2))
    with pytest.raises(ConfigError, match="quorums shape a budget's plan"):
        optimize(build_capitals(), quorums={"capital": 0.5})


def first_and_retry(plan: Plan, input_tokens: float) -> tuple[str, str]:
    """The plan's choice for a first answer, and for the answer after a rejection."""
    first = plan.decide("solve", input_tokens=input_tokens)
    rejected = RunState()
    plan.observe(rejected, "solve", first)
    plan.observe(rejected, "critic", plan.decide("critic", state=rejected, input_tokens=input_tokens))
    return first.model, plan.decide("solve", state=rejected, input_tokens=input_tokens).model


def test_a_rejected_answer_is_retried_on_a_stronger_model(tmp_path: Path) -> None:
    """The plan spends little on a first answer the critic can still send back, and escalates
    once it has: the same app, unchanged, gets a cheap first try and a strong retry."""

    def script(request: ReceivedRequest) -> Reply:
        text = str(request.body["messages"][-1]["content"])
        if text.startswith("Solve"):
            return Reply(f"answer by {request.body['model']}", prompt_tokens=300, completion_tokens=300)
        return Reply("reject" if "answer by small" in text else "accept", prompt_tokens=300, completion_tokens=5)

    with ScriptedProvider(script) as provider:
        pool = ModelPool.from_dict(
            {
                "routing": {"default": "local"},
                "models": {
                    "local": provider.pool_entry(model="small", locality="local"),
                    "cloud": provider.pool_entry(model="big", locality="cloud", input_price=5.0, output_price=5.0),
                },
            }
        )
        graph = critic_loop()
        # With a local model right 85 % of the time and a cloud one 95 %, there are budgets at
        # which the plan tries the local model first and escalates a rejected answer; a per-call
        # rule, blind to the attempt number, gives both calls the same model at any one λ.
        skills = {"local": 0.85, "cloud": 0.95}
        plans = [plan_app(graph.compile(), pool, lam=10.0 ** (e / 4), skills=skills) for e in range(-8, 16)]
        store = TraceStore(tmp_path / "t.sqlite")
        seen = []
        for plan in plans:
            app = optimize(graph, pool=pool, router=planned_router(plan), traces=store)
            out = app.invoke({"question": "2 + 2?", "answers": []})
            seen.append([call.model for call in app.last_run.calls if call.node == "solve"])
            if seen[-1] == ["local", "cloud"]:
                break
        assert seen[-1] == ["local", "cloud"], seen
        assert plan.workflow.parts == (Retry("solve", "critic", 3),)
        assert "retry loop solve ⇄ critic: planned for up to 3 answers" in str(plan)
        assert first_and_retry(plan, input_tokens=TokenCounter()("Solve (try 1): 2 + 2?")) == ("local", "cloud")
        assert out["answers"] == ["answer by small", "answer by big"]
        assert out["verdict"] == "accept"


def test_the_workflow_benchmark_plans_the_shapes_read_from_its_graphs() -> None:
    """The benchmark's three LangGraph apps read as the workflows it claims to measure."""
    root = Path(__file__).parents[2]
    spec = importlib.util.spec_from_file_location("workflows_shapes", root / "benchmarks" / "workflows.py")
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = bench
    spec.loader.exec_module(bench)

    def shape(name: str) -> tuple:
        return bench.structure_of(name, bench.build_graph(name, harness=None)).parts

    assert shape("chain") == tuple(Step(node) for node in ("plan", "solve", "check", "answer"))
    assert shape("map_reduce") == (Step("planner"), Quorum("worker", 6, 4), Step("aggregate"))
    assert shape("critic_loop") == (Retry("solve", "critic", 3),)


def test_a_traced_run_that_answered_more_often_raises_the_loops_bound(tmp_path: Path) -> None:
    """The app allows five answers; the plan assumes three until a traced run shows five."""
    graph = critic_loop(answers=5)

    with ScriptedProvider(lambda request: Reply("reject")) as provider:  # the critic never accepts
        pool = ModelPool.from_dict({"routing": {"default": "local"}, "models": {"local": provider.pool_entry()}})
        store = TraceStore(tmp_path / "traces.sqlite")
        assert plan_app(graph.compile(), pool, lam=1.0, traces=store).workflow.parts == (Retry("solve", "critic", 3),)
        out = optimize(graph, pool=pool, traces=store).invoke({"question": "?", "answers": []})
        assert len(out["answers"]) == 5
        plan = plan_app(graph.compile(), pool, lam=1.0, traces=store)
    assert plan.workflow.parts == (Retry("solve", "critic", 5),)
    assert "planned for up to 5 answers" in str(plan)
