"""inspect(app): the WorkflowGraph of ten graph shapes, read from their structure alone."""

from __future__ import annotations

import pytest
from langgraph.graph import END, START, StateGraph

from graphroute import GraphInspectionError, optimize
from graphroute.graph import WorkflowGraph, inspect
from graphroute.graph.identity import node_ids
from tests.graph.fakes import mirror_pool
from tests.graph.shapes import SHAPES, SHAPES_BY_NAME, Shape, State, compiled


@pytest.mark.parametrize("shape", SHAPES, ids=lambda shape: shape.name)
def test_nodes_edges_and_kinds_match_the_app(shape: Shape) -> None:
    app, _ = compiled(shape)

    graph = inspect(app)

    assert {node: graph.kind(node) for node in graph.work_nodes()} == shape.kinds
    assert {(source, target, data["kind"]) for source, target, data in graph.edges(data=True)} == shape.edges
    # every node LangGraph draws (xray) is in the graph under the same id that traces use
    assert set(node_ids(app)) <= set(graph.nodes)


@pytest.mark.parametrize("shape", SHAPES, ids=lambda shape: shape.name)
def test_inspecting_never_runs_the_app(shape: Shape) -> None:
    app, built = compiled(shape)
    optimized = optimize(app, pool=mirror_pool(built.models), routes=built.routes)

    inspect(optimized)  # an optimized app is inspected through to the app it wraps

    assert optimized.store.runs() == []


def test_a_path_map_labels_its_edges_and_starts_from_a_uniform_prior() -> None:
    graph = inspect(compiled(SHAPES_BY_NAME["router_path_map"])[0])

    assert graph.edges["classify", "expert"]["label"] == "technical"
    assert graph.edges["classify", "generalist"]["label"] == "general"
    [branch] = graph.branches_from("classify")
    assert branch.name == "by_label" and branch.source_of_estimate == "prior"
    assert branch.probability("expert") == branch.probability("generalist") == 0.5


def test_a_literal_return_hint_gives_the_targets() -> None:
    graph = inspect(compiled(SHAPES_BY_NAME["loop"])[0])

    [branch] = graph.branches_from("review")
    assert set(branch.targets) == {"draft", END}
    assert graph.edges["review", "draft"]["probability"] == 0.5


def test_a_loop_is_a_strongly_connected_component_with_expected_iterations() -> None:
    graph = inspect(compiled(SHAPES_BY_NAME["loop"])[0])

    [loop] = graph.loops
    assert loop.nodes == {"draft", "review"} and loop.entry == ("draft",)
    assert loop.source == "prior"
    assert loop.expected_iterations == pytest.approx(2.0)  # back edge taken half the time: 1 / (1 - 0.5)


def test_a_loop_is_bounded_by_the_recursion_limit() -> None:
    graph = inspect(compiled(SHAPES_BY_NAME["loop"])[0], recursion_limit=8)
    graph.set_probabilities("review", {"draft": 0.99, END: 0.01})

    from graphroute.graph.annotate import refresh_loop_iterations

    refresh_loop_iterations(graph)

    [loop] = graph.loops
    assert loop.max_iterations == 4  # 8 supersteps, two nodes per pass
    assert loop.expected_iterations <= 4


def test_send_fan_out_is_known_from_the_router_annotation() -> None:
    graph = inspect(compiled(SHAPES_BY_NAME["map_reduce"])[0])

    edge = graph.edges["plan", "worker"]
    assert edge["kind"] == "send" and edge["width"] == 2.0  # the prior width, until traces say more


def test_subgraphs_are_levels_with_namespaced_ids() -> None:
    graph = inspect(compiled(SHAPES_BY_NAME["nested"])[0])

    assert graph.levels() == ["", "research", "research:deep"]
    assert graph.containers_of("research:deep:verify") == ["research:deep", "research"]
    assert graph.level_nodes("research:deep") == [
        "research:deep:__start__",
        "research:deep:__end__",
        "research:deep:detail",
        "research:deep:verify",
    ]


def test_a_react_agent_is_an_llm_node_looping_with_a_tool_node() -> None:
    graph = inspect(compiled(SHAPES_BY_NAME["react_agent"])[0])

    assert graph.nodes["agent"]["models"] == ("ToolCallingFake",)
    assert graph.nodes["tools"]["tools"] == ("add", "multiply")
    [loop] = graph.loops
    assert loop.nodes == {"agent", "tools"}


def test_a_retry_policy_is_noted_on_its_node() -> None:
    graph = inspect(compiled(SHAPES_BY_NAME["failing"])[0])

    assert graph.nodes["fetch"]["retry"] and not graph.nodes["parse"]["retry"]


def test_the_graph_is_a_networkx_digraph() -> None:
    import networkx as nx

    graph = inspect(compiled(SHAPES_BY_NAME["diamond"])[0])

    assert isinstance(graph, nx.DiGraph)
    assert nx.shortest_path(graph, START, END) == [START, "split", "pros", "weigh", END]
    copied = graph.copy()
    assert isinstance(copied, WorkflowGraph) and copied.branches == graph.branches


def test_anything_but_a_langgraph_app_is_refused_with_a_hint() -> None:
    with pytest.raises(GraphInspectionError, match=r"pass the object you would call \.invoke"):
        inspect(object())


def test_a_functional_api_app_is_read_from_its_drawing() -> None:
    from langgraph.func import entrypoint

    @entrypoint()
    def workflow(question: str) -> str:
        return question

    graph = inspect(workflow)

    assert graph.work_nodes() == ["workflow"]
    assert graph.kind("workflow") == "function"


def test_a_model_built_inside_a_helper_is_found() -> None:
    from langchain_openai import ChatOpenAI

    def make_llm() -> ChatOpenAI:
        return ChatOpenAI(model="gpt-4o-mini", api_key="unused")

    def summarize(state: State) -> State:
        return {"answer": str(make_llm().invoke(state["question"]).content)}

    graph = StateGraph(State)
    graph.add_node("summarize", summarize)
    graph.add_edge(START, "summarize")

    assert inspect(graph).nodes["summarize"]["models"] == ("ChatOpenAI",)
