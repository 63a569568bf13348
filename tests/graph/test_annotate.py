"""annotate(): downstream cost and criticality checked against values computed by hand.

Prices are per 1M tokens and, with no traces, every model call is the prior 500 tokens in,
200 out: a call to ``strong`` (1.00 / 2.00) costs 0.0009 USD, one to ``cheap`` (0.10 / 0.20)
costs 0.00009 USD. A model node passes a wrong input on with probability 0.9.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from langchain_core.language_models.fake_chat_models import FakeListChatModel
from langgraph.graph import END, START, StateGraph
from langgraph.types import Send

from graphroute import ModelPool, UnknownModelError
from graphroute.graph import Complexity, annotate, expected_run_cost, inspect
from graphroute.graph.profile import length_difficulty, prior_complexity
from tests.graph.fakes import mirror_pool
from tests.graph.shapes import State

STRONG, CHEAP = 0.0009, 0.00009


@pytest.fixture
def pool() -> ModelPool:
    model = lambda: FakeListChatModel(responses=["ok"])  # noqa: E731
    return mirror_pool({"cheap": model, "strong": model}, prices={"cheap": (0.1, 0.2), "strong": (1.0, 2.0)})


def model_node(reply: str = "ok"):
    llm = FakeListChatModel(responses=[reply])

    def node(state: State) -> State:
        return {"notes": [str(llm.invoke("go").content)]}

    return node


def test_a_chain(pool: ModelPool) -> None:
    """a ─► b ─► c ─► END, a on the cheap model."""
    graph = StateGraph(State)
    for name in "abc":
        graph.add_node(name, model_node())
    graph.add_edge(START, "a")
    graph.add_edge("a", "b")
    graph.add_edge("b", "c")
    graph.add_edge("c", END)

    profiles = annotate(inspect(graph), pool=pool, plan={"a": "cheap", "b": "strong", "c": "strong"})

    assert profiles["a"].cost_per_run == pytest.approx(CHEAP)
    assert profiles["a"].downstream_cost == pytest.approx(2 * STRONG)
    assert profiles["b"].downstream_cost == pytest.approx(STRONG)
    assert profiles["c"].downstream_cost == 0
    # c writes the final answer; each model node before it repairs a tenth of wrong inputs
    assert [profiles[n].criticality for n in "abc"] == pytest.approx([0.81, 0.9, 1.0])
    assert expected_run_cost(profiles) == pytest.approx(CHEAP + 2 * STRONG)


def test_a_weighted_branch_with_fan_out(pool: ModelPool) -> None:
    """plan ─► research × 3 (70%) | direct (30%) ─► write ─► END, everything on the strong model."""

    def fan_out(state: State) -> list[Send] | str:
        return [Send("research", {"topic": t}) for t in "xyz"] if state.get("topic") else "direct"

    graph = StateGraph(State)
    for name in ("plan", "research", "direct", "write"):
        graph.add_node(name, model_node())
    graph.add_edge(START, "plan")
    graph.add_conditional_edges("plan", fan_out, ["research", "direct"])
    graph.add_edge("research", "write")
    graph.add_edge("direct", "write")
    graph.add_edge("write", END)
    workflow = inspect(graph)
    workflow.set_probabilities("plan", {"research": 0.7, "direct": 0.3}, widths={"research": 3})

    profiles = annotate(workflow, pool=pool, plan=dict.fromkeys(["plan", "research", "direct", "write"], "strong"))

    visits = {node: profile.visits_per_run for node, profile in profiles.items()}
    assert visits == pytest.approx({"plan": 1, "research": 2.1, "direct": 0.3, "write": 1})  # write joins once
    assert profiles["plan"].downstream_cost == pytest.approx((2.1 + 0.3 + 1) * STRONG)
    assert profiles["research"].downstream_cost == pytest.approx(STRONG)
    assert profiles["write"].downstream_cost == 0
    # reach × impact: research runs 70% of the time and its notes pass through write (0.9)
    assert profiles["research"].criticality == pytest.approx(0.7 * 0.9)
    assert profiles["direct"].criticality == pytest.approx(0.3 * 0.9)
    assert profiles["plan"].criticality == pytest.approx(0.81)  # either way through a 0.9 node, then write's 0.9
    assert profiles["write"].criticality == pytest.approx(1.0)


def test_a_loop_with_a_side_exit(pool: ModelPool) -> None:
    """gen ─► check ─► gen (50%) | log (20%) ─► END | END (30%); log on the cheap model."""
    graph = StateGraph(State)
    graph.add_node("gen", model_node())
    graph.add_node("check", lambda state: {})
    graph.add_node("log", model_node())
    graph.add_edge(START, "gen")
    graph.add_edge("gen", "check")
    graph.add_conditional_edges("check", lambda state: END, ["gen", "log", END])
    graph.add_edge("log", END)
    workflow = inspect(graph)
    workflow.set_probabilities("check", {"gen": 0.5, "log": 0.2, END: 0.3})

    profiles = annotate(workflow, pool=pool, plan={"gen": "strong", "log": "cheap"})

    assert workflow.loops[0].expected_iterations == pytest.approx(2.0)
    assert profiles["gen"].visits_per_run == pytest.approx(2.0)
    assert profiles["log"].visits_per_run == pytest.approx(0.4)  # 20% on each of 2 passes
    assert profiles["gen"].downstream_cost == pytest.approx(STRONG + 0.4 * CHEAP)  # one more pass, expected
    assert profiles["check"].downstream_cost == pytest.approx(STRONG + 0.4 * CHEAP)
    assert profiles["log"].downstream_cost == 0
    # the loop ends through log (0.2 / 0.5 of exits, a model: 0.9) or straight to END (certain)
    assert profiles["gen"].criticality == pytest.approx(1 - 0.4 * 0.1)
    assert profiles["check"].criticality == pytest.approx(0.96)
    assert profiles["log"].criticality == pytest.approx(0.4)  # a side branch: its reach
    assert expected_run_cost(profiles) == pytest.approx(2 * STRONG + 0.4 * CHEAP)


def test_downstream_cost_leaves_a_subgraph_through_its_parent() -> None:
    from examples.research_assistant import build_graph

    pool = ModelPool.from_toml(Path(__file__).parents[2] / "examples" / "graphroute.toml")
    workflow = inspect(build_graph())

    profiles = annotate(workflow, pool=pool)  # the pool file's pins: plan and write_report on cloud

    cloud = pool["cloud"].cost(500, 200)
    assert profiles["plan"].model == profiles["write_report:draft"].model == "cloud"
    assert profiles["research"].model == "local" and profiles["research"].cost_per_call == 0
    assert profiles["write_report:draft"].downstream_cost == pytest.approx(cloud)  # title, then the end
    assert profiles["answer_directly"].downstream_cost == pytest.approx(2 * cloud)  # draft and title
    assert profiles["plan"].downstream_cost == pytest.approx(2 * cloud)
    assert expected_run_cost(profiles) == pytest.approx(3 * cloud)
    # the router's code sends to research only: a prior width of 2 there, answer_directly runs once
    assert profiles["research"].visits_per_run == pytest.approx(0.5 * 2)
    assert profiles["answer_directly"].visits_per_run == pytest.approx(0.5)
    # research's notes pass through draft and title (0.9 each) into the report; it runs half the time
    assert profiles["research"].criticality == pytest.approx(0.5 * 0.9 * 0.9)


def test_a_plan_naming_an_unknown_model_is_refused(pool: ModelPool) -> None:
    graph = StateGraph(State)
    graph.add_node("a", model_node())
    graph.add_edge(START, "a")

    with pytest.raises(UnknownModelError, match="'huge'"):
        annotate(inspect(graph), pool=pool, plan={"a": "huge"})


def test_complexity_prior_grows_with_length_and_structure() -> None:
    short = prior_complexity(60, 20, tools=False, in_loop=False)
    long = prior_complexity(6000, 800, tools=True, in_loop=True)

    assert sum(short.bins) == pytest.approx(1) and sum(long.bins) == pytest.approx(1)
    assert short.mean < 0.25 < 0.6 < long.mean
    assert length_difficulty(50) == pytest.approx(0.1)
    learned = Complexity.from_samples([0.95] * 20, short, source="pillars")
    assert learned.bins[-1] > 0.9 and learned.source == "pillars"
