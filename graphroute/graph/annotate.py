"""``annotate``: a ``NodeProfile`` per node — expected executions, downstream cost and criticality.

The arithmetic of executions, reach and criticality is ``Flow``'s (``_flow``, where the flow
model and the criticality formula are explained); this module adds what a profile needs
beyond the graph — each node's model under a plan or the pool's pins, its calls, tokens,
cost and complexity from traces or priors — and puts the two together. ``Flow`` and the
names that lived here with it are still importable from here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from graphroute.errors import UnknownModelError
from graphroute.graph._flow import (  # noqa: F401
    _MAX_STATES,
    _MIN_MASS,
    PROPAGATION,
    Counts,
    Flow,
    State,
    _edge_probability,
    _is_end,
    _merge,
    _tasks,
    refresh_loop_iterations,
)
from graphroute.graph.inspect import WorkflowGraph, loop_of
from graphroute.providers.pool import ModelPool
from graphroute.traces.store import TraceStore

if TYPE_CHECKING:
    from graphroute.graph.profile import NodeProfile, TraceStats

__all__ = ["PROPAGATION", "Counts", "Flow", "State", "annotate", "expected_run_cost", "refresh_loop_iterations"]


def annotate(
    graph: WorkflowGraph,
    traces: TraceStore | Path | str | None = None,
    pool: ModelPool | None = None,
    plan: Mapping[str, str] | None = None,
) -> dict[str, NodeProfile]:
    """A ``NodeProfile`` for every node that runs code, under ``plan`` (node → pool model).

    ``traces`` first teaches the graph what recorded runs did (``profile.learn``); without
    them, profiles use the priors. ``plan`` entries cover subgraphs by prefix, like routing
    pins; without a plan, the pool file's ``[routing]`` pins and default apply. Without a
    pool, a call costs what traces recorded for the node, else nothing. Profiles are also
    stored on the graph's nodes (``graph.nodes[node]["profile"]``).

    Usage::

        graph = inspect(app)
        profiles = annotate(graph, traces="traces.sqlite", pool=pool, plan={"plan": "cloud"})
        profiles["plan"].downstream_cost, profiles["plan"].criticality
    """
    from graphroute.graph.profile import learn

    if traces is not None:
        learn(graph, traces)
    stats: TraceStats | None = graph.graph.get("trace_stats")
    flow = Flow(graph)
    refresh_loop_iterations(graph, flow)
    visits, reach, impact = flow.visits(), flow.reach(), flow.impact()
    basics = {node: _basics(graph, node, stats, pool, _planned(graph, node, pool, plan)) for node in visits}
    own = {node: b.calls_per_visit * b.cost_per_call for node, b in basics.items()}
    profiles = {}
    for node, b in basics.items():
        downstream = sum(count * own.get(other, 0.0) for other, count in flow.downstream_visits(node).items())
        profiles[node] = replace(
            b,
            visits_per_run=visits[node],
            reach=reach.get(node, 0.0),
            downstream_cost=downstream,
            impact=impact.get(node, 0.0),
            criticality=reach.get(node, 0.0) * impact.get(node, 0.0),
        )
        graph.nodes[node]["profile"] = profiles[node]
    return profiles


def expected_run_cost(profiles: Mapping[str, NodeProfile]) -> float:
    """Expected USD per run: every node's expected calls at its planned model's prices."""
    return sum(profile.cost_per_run for profile in profiles.values())


def _planned(graph: WorkflowGraph, node: str, pool: ModelPool | None, plan: Mapping[str, str] | None) -> str | None:
    """The model ``plan`` gives ``node`` (the most specific prefix wins), else the pool file's pins and default."""
    if plan is None and pool is not None:
        plan = pool.routing.nodes
    for candidate in [node, *graph.containers_of(node)]:
        if plan and candidate in plan:
            model = plan[candidate]
            if pool is not None and model not in pool:
                raise UnknownModelError(model, pool.names, entry=f"plan.{candidate}")
            return model
    return pool.default_model() if pool is not None else None


def _basics(
    graph: WorkflowGraph, node: str, stats: TraceStats | None, pool: ModelPool | None, model: str | None
) -> NodeProfile:
    from graphroute.graph.profile import (
        PRIOR_INPUT_TOKENS,
        PRIOR_OUTPUT_TOKENS,
        Complexity,
        NodeProfile,
        length_difficulty,
        prior_complexity,
    )

    kind = graph.kind(node)
    node_stats = stats.nodes.get(node) if stats is not None else None
    calls = node_stats.calls if node_stats is not None else []
    measured = [call for call in calls if call.input_tokens or call.output_tokens]
    if measured:
        input_tokens = sum(c.input_tokens for c in measured) / len(measured)
        output_tokens = sum(c.output_tokens for c in measured) / len(measured)
    else:
        input_tokens, output_tokens = PRIOR_INPUT_TOKENS, PRIOR_OUTPUT_TOKENS
    if calls and node_stats is not None and node_stats.executions:
        calls_per_visit = len(calls) / node_stats.executions
    else:
        calls_per_visit = 1.0 if kind == "llm" else 0.0
    near_tools = any(graph.kind(n) == "tool" for n in [*graph.successors(node), *graph.predecessors(node)])
    in_loop = loop_of(graph, node) is not None
    complexity = prior_complexity(input_tokens, output_tokens, tools=near_tools, in_loop=in_loop)
    if node_stats is not None and node_stats.difficulties:
        complexity = Complexity.from_samples(node_stats.difficulties, complexity, source="pillars")
    elif measured:
        samples = [length_difficulty(c.input_tokens) for c in measured]
        complexity = Complexity.from_samples(samples, complexity, source="length")
    if pool is not None and model is not None:
        cost_per_call = pool[model].cost(round(input_tokens), round(output_tokens))
    else:
        cost_per_call = sum(c.cost_usd for c in calls) / len(calls) if calls else 0.0
    return NodeProfile(
        node=node,
        kind=kind,
        model=model if calls_per_visit else None,
        visits_per_run=0.0,
        reach=0.0,
        calls_per_visit=calls_per_visit,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        complexity=complexity,
        cost_per_call=cost_per_call,
        downstream_cost=0.0,
        impact=0.0,
        criticality=0.0,
        source="traces" if calls else "prior",
        observed_calls=len(calls),
    )
