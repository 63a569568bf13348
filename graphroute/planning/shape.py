"""The shape of a run, read from the app's graph: which model calls form a retry loop.

The planner's value model (``structure.py``) gains over per-call routing where calls differ in
what they are worth to the run — most of all inside a *solver/critic loop*: a first answer a
critic can still send back is worth less than the last attempt, and a critic's rejection
tells the run something about its task. A plan only knows that when the workflow says
``Retry(solver, critic)`` instead of two independent ``Step``s, so this module finds such
loops in the inspected graph (``graph.inspect``) instead of asking users to declare them.

A loop is a retry loop when it holds exactly two model-calling nodes, the *solver* (where the
loop is entered) and the *critic* (after it), and the critic's conditional branch leads both
back into the loop and out of it. LangGraph does not bound a loop except by the recursion
limit; the bound lives in the app's routing function, which we do not run, so the plan
assumes ``DEFAULT_ATTEMPTS`` solver calls, or more once a traced run has made more. An
agent/tool loop (one model node) stays a ``Step`` called as often as traces say.

A fan-out (``Send``) whose run needs only *some* copies to succeed cannot be read from code
either: ``quorums`` declares it — a fraction of the copies (``{"worker": 2 / 3}``: two thirds of
however many the fan-out sends, which traces measure) or a count (``{"worker": 4}``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import networkx as nx

from graphroute.errors import ConfigError
from graphroute.graph.inspect import Loop, WorkflowGraph
from graphroute.planning.structure import Part, Quorum, Retry, Step, Workflow

DEFAULT_ATTEMPTS = 3


def retry_loops(graph: WorkflowGraph, model_nodes: set[str]) -> list[tuple[str, str, Loop]]:
    """``(solver, critic, loop)`` of every retry loop among ``model_nodes`` (see the module docstring)."""
    found = []
    for loop in graph.loops:
        inside = sorted(n for n in loop.nodes if n in model_nodes)
        if len(inside) != 2:
            continue
        pairs = [(s, c) for s, c in (inside, inside[::-1]) if _is_retry(graph, loop, s, c)]
        if len(pairs) == 1:
            found.append((*pairs[0], loop))
    return found


def _is_retry(graph: WorkflowGraph, loop: Loop, solver: str, critic: str) -> bool:
    if solver not in loop.entry:
        return False
    if not nx.has_path(graph.subgraph(loop.nodes), solver, critic):
        return False
    branches = [t for _, t, kind in graph.out_edges(critic, data="kind") if kind == "conditional"]
    return any(t in loop.nodes for t in branches) and any(t not in loop.nodes for t in branches)


def infer_workflow(
    graph: WorkflowGraph,
    steps: Mapping[str, tuple[float, float]],
    *,
    attempts: int = DEFAULT_ATTEMPTS,
    quorums: Mapping[str, float] | None = None,
) -> Workflow:
    """The planner's workflow for ``steps`` (model node → (calls per run, criticality)).

    Retry loops found in ``graph`` become ``Retry`` parts; a node in ``quorums`` becomes a
    ``Quorum`` of its calls per run (rounded) needing that many successes (a float: that share
    of them, rounded up); every other node a ``Step``. Parts follow the order of ``steps``.
    """
    if attempts < 1:
        raise ConfigError(f"retry attempts must be ≥ 1, got {attempts}")
    quorums = dict(quorums or {})
    unknown = sorted(set(quorums) - set(steps))
    if unknown:
        raise ConfigError(f"quorum for node(s) {', '.join(unknown)}: not model-calling nodes of this app")
    # A traced run that answered more often than assumed proves the loop's bound is higher.
    loops = {
        solver: (critic, max(attempts, loop.most_iterations))
        for solver, critic, loop in retry_loops(graph, set(steps))
        if solver not in quorums
    }
    critics = {critic for critic, _ in loops.values()}
    parts: list[Part] = []
    for node, (calls, criticality) in steps.items():
        if node in critics:
            continue
        if node in loops:
            parts.append(Retry(node, *loops[node]))
        elif node in quorums:
            width = max(round(calls), 1)
            parts.append(Quorum(node, width, _need(node, quorums[node], width)))
        else:
            parts.append(Step(node, calls=calls, criticality=criticality))
    return Workflow(tuple(parts))


def _need(node: str, quorum: float, width: int) -> int:
    """Copies that must succeed: a count as given, or a share of ``width`` rounded up."""
    if isinstance(quorum, bool) or not isinstance(quorum, int | float):
        raise ConfigError(f"quorum for {node!r}: give a count (4) or a share of the copies (2 / 3), got {quorum!r}")
    if isinstance(quorum, float):
        if not 0.0 < quorum <= 1.0:
            raise ConfigError(f"quorum for {node!r}: a share of the copies must be in (0, 1], got {quorum}")
        return max(1, math.ceil(quorum * width - 1e-9))
    if not 0 <= quorum <= width:
        raise ConfigError(
            f"quorum for {node!r}: need {quorum} of its {width} calls per run; use 0..{width}, "
            "or a share such as 2 / 3 while traces have not measured the fan-out's width"
        )
    return quorum
