"""Failures a run sees live steer its next calls: a failed tool call escalates the node, a
provider error makes the run avoid that model. A per-call router would repeat both mistakes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from langchain_core.messages import HumanMessage
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode

from graphroute import ModelPool, optimize
from graphroute.planning import PoolPrices, RunState, Workflow, solve
from graphroute.planning.failures import ANSWER, PROVIDER, RunFailure, allowed_models
from graphroute.planning.live import plan_app, planned_router
from graphroute.testing import ReceivedRequest, Reply, ScriptedProvider
from tests.planning.test_router import chain

from .conftest import typical

COSTS = np.array([2.0, 5.0, 20.0])  # local, mid, cloud


def failed(node: str, model: int, kind: Any = ANSWER, call: int = 0) -> RunFailure:
    return RunFailure(node, call, model, kind)


def test_a_failed_answer_escalates_its_node_past_every_model_that_failed_it() -> None:
    assert allowed_models("solve", [], COSTS) is None
    assert allowed_models("solve", [failed("solve", 0)], COSTS).tolist() == [False, True, True]
    assert allowed_models("solve", [failed("solve", 0), failed("solve", 1, call=1)], COSTS).tolist() == [
        False,
        False,
        True,
    ]
    assert allowed_models("answer", [failed("solve", 0)], COSTS) is None  # another node: its own business


def test_when_the_priciest_model_failed_it_is_tried_again_not_a_weaker_one() -> None:
    assert allowed_models("solve", [failed("solve", 2)], COSTS).tolist() == [False, False, True]


def test_a_provider_error_avoids_the_model_on_every_node_of_the_run() -> None:
    assert allowed_models("answer", [failed("solve", 0, PROVIDER)], COSTS).tolist() == [False, True, True]
    both = [failed("solve", 1), failed("solve", 2, PROVIDER, call=1)]
    assert allowed_models("solve", both, COSTS).tolist() == [False, True, False]  # mid again: cloud is down
    everything_down = [failed("a", model, PROVIDER) for model in range(3)]
    assert allowed_models("solve", everything_down, COSTS) is None  # nothing left to avoid to


def test_the_plan_escalates_a_node_whose_answer_failed() -> None:
    prices = PoolPrices.of({"cheap": (1.0, 1.0), "strong": (10.0, 10.0)}, local=["cheap"])
    demands = {"hard": typical("hard", 0.3, 0.9), "easy": typical("easy", 0.8, 0.9)}
    plan = solve(Workflow.chain("hard", "easy"), demands, prices, lam=1e3)  # a run is worth $0.001
    assert plan.decide("hard").model == "cheap"
    state = RunState()
    plan.observe(state, "hard", plan.decide("hard", state=state))
    state.fail(RunFailure("hard", 0, 0, ANSWER))
    again = plan.decide("hard", state=state)
    assert again.model == "strong" and again.allowed is not None
    assert plan.decide("easy", state=state).model == "cheap"  # the other node keeps its plan
    assert plan.known_results(state) == [(0, False)]  # what the plan's carryover would read


def two_model_pool(provider: ScriptedProvider, **local: Any) -> ModelPool:
    return ModelPool.from_dict({
        "routing": {"default": "local"},
        "models": {
            "local": provider.pool_entry(model="small", locality="local", capabilities=["tools"], **local),
            "cloud": provider.pool_entry(
                model="big", locality="cloud", input_price=5.0, output_price=5.0, capabilities=["tools"]
            ),
        },
    })  # fmt: skip


def cheapest_first_router(app: Any, pool: ModelPool) -> Any:
    """A plan for which no success is worth paying for: every call goes to the local model first."""
    return planned_router(plan_app(app, pool, lam=1e9, skills={"local": 0.6, "cloud": 0.9}))


def test_after_a_provider_error_the_run_stops_asking_that_model(tmp_path: Path) -> None:
    """The local server fails; its fallback answers. The run's later calls go straight to the
    cloud instead of paying the failure again — the next run tries the local model afresh."""

    def script(request: ReceivedRequest) -> Reply:
        return Reply(status=500) if request.body["model"] == "small" else Reply("ok")

    with ScriptedProvider(script) as provider:
        pool = two_model_pool(provider, fallbacks=["cloud"])
        app = optimize(
            chain(), pool=pool, router=cheapest_first_router(chain().compile(), pool), traces=tmp_path / "traces.sqlite"
        )
        for _ in range(2):
            app.invoke({"question": "2 + 2?", "notes": []})
            calls = app.last_run.calls
            assert [call.model for call in calls] == ["cloud", "cloud", "cloud"]
            assert "not local" not in calls[0].reason  # planned for the local model, which failed
            assert all("after failures in this run: not local" in call.reason for call in calls[1:])
        small = [r for r in provider.requests if r.body["model"] == "small"]
        assert len(small) == 2  # once per run: the first call of each


def test_a_failed_tool_call_sends_the_agents_next_turn_to_a_stronger_model(tmp_path: Path) -> None:
    """The local model calls the tool with arguments it rejects; the agent's retry is escalated."""

    @tool
    def square_root(x: float) -> float:
        """The square root of a non-negative number."""
        if x < 0:
            raise ValueError("x must be non-negative")
        return x**0.5

    def agent(state: MessagesState) -> dict[str, Any]:
        llm = ChatOpenAI(model="gpt-4o-mini", api_key="unused").bind_tools([square_root])
        return {"messages": [llm.invoke(state["messages"])]}

    graph = StateGraph(MessagesState)
    graph.add_node("agent", agent)
    graph.add_node("tools", ToolNode([square_root], handle_tool_errors=True))  # errors go back to the model
    graph.add_edge(START, "agent")
    graph.add_conditional_edges("agent", lambda s: "tools" if s["messages"][-1].tool_calls else END, ["tools", END])
    graph.add_edge("tools", "agent")

    def script(sign: int):
        def reply(request: ReceivedRequest) -> Reply:
            if request.body["messages"][-1]["role"] == "tool":
                return Reply(f"done by {request.body['model']}")
            x = 16 * sign if request.body["model"] == "small" else 16
            arguments = f'{{"x": {x}}}'
            call = {"id": "call_1", "type": "function", "function": {"name": "square_root", "arguments": arguments}}
            return Reply(content="", tool_calls=[call])

        return reply

    turns = {}
    for sign, label in ((-1, "tool fails"), (1, "tool works")):
        with ScriptedProvider(script(sign)) as provider:
            pool = two_model_pool(provider)
            app = optimize(
                graph, pool=pool, router=cheapest_first_router(graph.compile(), pool), traces=tmp_path / "traces.sqlite"
            )
            out = app.invoke({"messages": [HumanMessage("What is the square root of 16?")]})
            turns[label] = [call.model for call in app.last_run.calls]
            assert out["messages"][-1].content.startswith("done by")

    assert turns["tool fails"] == ["local", "cloud"]
    assert turns["tool works"] == ["local", "local"]


@pytest.mark.parametrize("kind", [PROVIDER, ANSWER])
def test_a_failure_is_remembered_once(kind: Any) -> None:
    state = RunState()
    state.fail(failed("solve", 0, kind))
    state.fail(failed("solve", 0, kind))
    assert state.failures == [failed("solve", 0, kind)]


def test_a_refusal_escalates_the_nodes_next_call_and_a_finished_run_is_left_alone() -> None:
    """What dispatch tells the router after each call (``observe``): a refusal is an answer failure."""
    from graphroute.pillars.bandit import Outcome
    from graphroute.pillars.base import RouteRequest
    from graphroute.planning.router import RUN_ID_KEY, PlannedRouter

    prices = PoolPrices.of({"cheap": (1.0, 1.0), "strong": (10.0, 10.0)}, local=["cheap"])
    plan = solve(Workflow.chain("hard"), {"hard": typical("hard", 0.3, 0.9)}, prices, lam=1e3)
    router = PlannedRouter(plan)

    def ask(run: str) -> Any:
        return router.route(
            RouteRequest([HumanMessage("Summarise the report.")], node="hard", metadata={RUN_ID_KEY: run})
        )

    first = ask("run-1")
    assert first.model == "cheap"
    router.observe(first, Outcome(refused=True))
    assert ask("run-1").model == "strong"  # the same run: escalated
    assert ask("run-2").model == "cheap"  # another run starts afresh

    router.end_run("run-2")
    late = ask("run-3")
    router.end_run("run-3")
    router.observe(late, Outcome(error="TimeoutError"))  # told after its run ended: nothing to steer
    assert "run-3" not in router._states
