"""Small graphs with no model calls, for node-cache tests; ``RUNS`` records which nodes ran."""

from __future__ import annotations

import operator
from typing import Annotated, TypedDict

from langgraph.graph import END, START, StateGraph

from graphroute.cache import side_effect

RUNS: list[str] = []


class State(TypedDict, total=False):
    x: int
    y: int
    noise: str
    log: Annotated[list[str], operator.add]


def step(state: State) -> State:
    RUNS.append("step")
    return {"y": state["x"] * 10}


def extra(state: State) -> State:
    RUNS.append("extra")
    return {"log": ["extra"]}


@side_effect
def notify(state: State) -> State:
    """Sends a message in real life: must run every time."""
    RUNS.append("notify")
    return {"log": [f"notified {state['y']}"]}


def audit(state: State) -> State:
    RUNS.append("audit")
    return {"log": ["audited"]}


def build_chain(*nodes: str) -> StateGraph:
    """START → nodes in order → END, picking the functions above by name."""
    functions = {"step": step, "extra": extra, "notify": notify, "audit": audit}
    graph = StateGraph(State)
    for name in nodes:
        graph.add_node(name, functions[name])
    for source, target in zip((START, *nodes), (*nodes, END), strict=True):
        graph.add_edge(source, target)
    return graph


def build_with_subgraph() -> StateGraph:
    """step → report (subgraph: extra → notify): the subgraph holds a side-effect node."""
    report = build_chain("extra", "notify")
    graph = StateGraph(State)
    graph.add_node("step", step)
    graph.add_node("report", report.compile())
    graph.add_edge(START, "step")
    graph.add_edge("step", "report")
    graph.add_edge("report", END)
    return graph


def run_once(cache_dir: str, traces: str) -> dict[str, object]:
    """One optimized run of step → extra; what ran and what the cache served."""
    from graphroute import ModelPool, optimize

    entry = {"provider": "openai-compatible", "model": "x", "base_url": "http://127.0.0.1:9/v1"}
    pool = ModelPool.from_dict({"models": {"unused": entry}})
    RUNS.clear()
    app = optimize(build_chain("step", "extra"), pool=pool, cache=cache_dir, traces=traces)
    result = app.invoke({"x": 4})
    return {"result": result, "runs": list(RUNS), "hits": app.last_run.cache.node_hits}
