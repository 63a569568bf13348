"""Profiles learned from traces converge: 50 traced runs under optimize() with fake models."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Literal

import pytest
from langchain_core.language_models.fake_chat_models import FakeListChatModel
from langgraph.graph import END, START, StateGraph
from langgraph.types import Send

from graphroute import TraceStore, optimize
from graphroute.graph import annotate, inspect
from tests.graph.fakes import mirror_pool, scripted
from tests.graph.shapes import State, Task

RUNS = 50


def traced_runs(graph: StateGraph, models: dict, routes: dict, store: TraceStore, inputs: list[dict]) -> None:
    app = optimize(graph, pool=mirror_pool(models), routes=routes, traces=store)
    for value in inputs:
        app.invoke(value)


def triage_graph(labels: list[str]) -> tuple[StateGraph, dict]:
    """classify ─► urgent (70%) | routine (30%) ─► END, the label coming from the model."""
    models = {
        "classify": lambda: FakeListChatModel(responses=labels),
        "reply": lambda: scripted(["on it"], input_tokens=120, output_tokens=30),
    }
    classify_llm, reply_llm = models["classify"](), models["reply"]()

    def classify(state: State) -> State:
        return {"topic": str(classify_llm.invoke(state["question"]).content)}

    def route(state: State) -> Literal["urgent", "routine"]:
        return "urgent" if state["topic"] == "urgent" else "routine"

    def urgent(state: State) -> State:
        return {"answer": str(reply_llm.invoke(state["question"]).content)}

    def routine(state: State) -> State:
        return {"answer": "queued"}

    graph = StateGraph(State)
    graph.add_node("classify", classify)
    graph.add_node("urgent", urgent)
    graph.add_node("routine", routine)
    graph.add_edge(START, "classify")
    graph.add_conditional_edges("classify", route)
    graph.add_edge("urgent", END)
    graph.add_edge("routine", END)
    return graph, models


def test_a_70_30_branch_is_learned_within_a_tenth(trace_store: TraceStore) -> None:
    labels = ["urgent"] * 35 + ["routine"] * 15  # a 70/30 branch, in a shuffled order
    random.Random(7).shuffle(labels)
    graph, models = triage_graph(labels)
    traced_runs(
        graph,
        models,
        {"classify": "classify", "urgent": "reply"},
        trace_store,
        [{"question": f"ticket {i}"} for i in range(RUNS)],
    )

    workflow = inspect(graph, traces=trace_store)

    [branch] = workflow.branches_from("classify")
    assert branch.source_of_estimate == "traces" and branch.observed == RUNS
    assert branch.probability("urgent") == pytest.approx(0.7, abs=0.1)
    assert workflow.edges["classify", "urgent"]["probability"] == branch.probability("urgent")
    profiles = annotate(workflow)
    assert profiles["urgent"].visits_per_run == pytest.approx(branch.probability("urgent"))
    assert profiles["urgent"].input_tokens == 120 and profiles["urgent"].output_tokens == 30
    assert profiles["urgent"].source == "traces"
    assert profiles["classify"].calls_per_run == pytest.approx(1.0)


def test_loop_iterations_are_learned(trace_store: TraceStore) -> None:
    rng = random.Random(11)
    passes = [rng.randint(1, 5) for _ in range(RUNS)]  # mean 3
    verdicts = [verdict for n in passes for verdict in ["revise"] * (n - 1) + ["approve"]]
    models = {
        "write": lambda: FakeListChatModel(responses=["a draft"]),
        "review": lambda: FakeListChatModel(responses=verdicts),
    }
    write_llm, review_llm = models["write"](), models["review"]()

    def write(state: State) -> State:
        return {"draft": str(write_llm.invoke("write").content)}

    def review(state: State) -> State:
        return {"verdict": str(review_llm.invoke(state["draft"]).content)}

    def done(state: State) -> Literal["write", "__end__"]:
        return END if state["verdict"] == "approve" else "write"

    graph = StateGraph(State)
    graph.add_node("write", write)
    graph.add_node("review", review)
    graph.add_edge(START, "write")
    graph.add_edge("write", "review")
    graph.add_conditional_edges("review", done)
    traced_runs(graph, models, {"write": "write", "review": "review"}, trace_store, [{}] * RUNS)

    workflow = inspect(graph, traces=trace_store)

    [loop] = workflow.loops
    mean = sum(passes) / RUNS
    assert loop.source == "traces" and loop.observed == RUNS
    assert loop.observed_iterations == pytest.approx(mean)
    assert loop.expected_iterations == pytest.approx(3.0, rel=0.1)
    assert loop.expected_iterations == pytest.approx(mean, rel=0.02)
    assert annotate(workflow)["review"].calls_per_run == pytest.approx(mean, rel=0.02)


def tasks_for(parts: list[str]) -> list[Send]:
    return [Send("work", {"topic": part}) for part in parts]


def test_send_fan_out_width_is_learned(trace_store: TraceStore) -> None:
    rng = random.Random(3)
    widths = [rng.randint(1, 5) for _ in range(RUNS)]  # mean 3
    plans = [",".join(f"part {i}" for i in range(width)) for width in widths]
    models = {"plan": lambda: FakeListChatModel(responses=plans), "work": lambda: FakeListChatModel(responses=["ok"])}
    plan_llm, work_llm = models["plan"](), models["work"]()

    def plan(state: State) -> State:
        return {"topic": str(plan_llm.invoke("plan").content)}

    def fan_out(state: State):  # Send hides in a helper: the fan-out is only discovered from traces
        return tasks_for(state["topic"].split(","))

    def work(task: Task) -> State:
        return {"notes": [str(work_llm.invoke(task["topic"]).content)]}

    graph = StateGraph(State)
    graph.add_node("plan", plan)
    graph.add_node("work", work)
    graph.add_edge(START, "plan")
    graph.add_conditional_edges("plan", fan_out, ["work"])
    graph.add_edge("work", END)
    assert inspect(graph).edges["plan", "work"]["kind"] == "conditional"
    traced_runs(graph, models, {"plan": "plan", "work": "work"}, trace_store, [{}] * RUNS)

    workflow = inspect(graph, traces=trace_store)

    edge = workflow.edges["plan", "work"]
    mean = sum(widths) / RUNS
    assert edge["kind"] == "send"
    assert edge["width"] == pytest.approx(3.0, rel=0.1)
    assert edge["width"] == pytest.approx(mean, rel=0.02)
    assert annotate(workflow)["work"].calls_per_run == pytest.approx(mean, rel=0.02)


def test_a_node_kind_static_inspection_cannot_see_is_learned(tmp_path: Path) -> None:
    tiers = {"small": lambda: FakeListChatModel(responses=["fine"])}

    def answer(state: State) -> State:  # the model comes from a registry at run time
        return {"answer": str(tiers["small"]().invoke(state["question"]).content)}

    graph = StateGraph(State)
    graph.add_node("answer", answer)
    graph.add_edge(START, "answer")
    assert inspect(graph).kind("answer") == "function"
    store = TraceStore(tmp_path / "traces.sqlite")
    traced_runs(graph, {"small": tiers["small"]}, {"answer": "small"}, store, [{"question": "hi"}] * 3)

    learned = inspect(graph, traces=store)

    assert (learned.kind("answer"), learned.nodes["answer"]["kind_source"]) == ("llm", "traces")


def test_traces_of_another_graph_teach_nothing(trace_store: TraceStore) -> None:
    graph, _ = triage_graph(["urgent"])
    other, other_models = triage_graph(["routine"])
    other.add_node("extra", lambda state: {})
    other.add_edge("classify", "extra")
    traced_runs(other, other_models, {"classify": "classify", "urgent": "reply"}, trace_store, [{"question": "q"}])

    workflow = inspect(graph, traces=trace_store)

    assert workflow.branches_from("classify")[0].source_of_estimate == "prior"


def test_a_branch_inside_a_subgraph_is_learned_per_subgraph_run(trace_store: TraceStore) -> None:
    labels = ["urgent"] * 14 + ["routine"] * 6
    random.Random(5).shuffle(labels)
    triage, models = triage_graph(labels)
    graph = StateGraph(State)
    graph.add_node("desk", triage.compile())
    graph.add_node("close", lambda state: {"verdict": "closed"})
    graph.add_edge(START, "desk")
    graph.add_edge("desk", "close")
    traced_runs(
        graph,
        models,
        {"desk:classify": "classify", "desk:urgent": "reply"},
        trace_store,
        [{"question": f"ticket {i}"} for i in range(len(labels))],
    )

    workflow = inspect(graph, traces=trace_store)

    [branch] = workflow.branches_from("desk:classify")
    assert branch.observed == len(labels)
    assert branch.probability("desk:urgent") == pytest.approx(0.7, abs=0.02)
    profiles = annotate(workflow)
    assert profiles["desk:urgent"].visits_per_run == pytest.approx(0.7, abs=0.02)
    assert profiles["desk:urgent"].input_tokens == 120
