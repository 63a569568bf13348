"""``inspect(app)``: a LangGraph app's structure as a ``WorkflowGraph`` (a networkx ``DiGraph``).

Read from the app itself, never by running it: the compiled graph's builder (nodes, plain
edges, joins, conditional branches, ``Command`` targets), its subgraphs (``get_subgraphs``),
and ``get_graph()`` for apps without a builder (the functional API).

Layout of the graph::

    __start__ ──► plan ──(branch)──► research   (send: Send fan-out, expected width)
                              └────► answer ──► write_report ──► __end__
    write_report ──enter──► write_report:__start__ ──► write_report:draft ──► write_report:__end__

Every subgraph is a node of kind ``subgraph`` whose inner nodes carry namespaced ids
(``parent:inner``, as in traces and routing pins) and live on their own *level*, with their
own ``parent:__start__`` / ``parent:__end__``; an ``enter`` edge links the container to its
level. Control returns to the container's successors when the level ends, so no edge points
back out of a subgraph and the graph's cycles are exactly the app's loops.

Probabilities, fan-out widths and loop iterations start from priors and are learned from
traces (``graphroute.graph.profile.learn``).

This module is the public face, ``inspect``; the graph's types (``_workflow_graph``), how an
app is read (``_reading``) and its loops (``_loops``) live beside it, and every name that was
defined here before they moved out is still importable from here.
"""

from __future__ import annotations

from typing import Any

from graphroute.graph._loops import find_loops, loop_of
from graphroute.graph._reading import (  # noqa: F401
    _add_branch,
    _add_edge,
    _add_level_from_drawing,
    _add_work_node,
    _id,
    send_targets,
)
from graphroute.graph._reading import add_level as _add_level
from graphroute.graph._workflow_graph import (  # noqa: F401
    END,
    FLOW_EDGE_KINDS,
    PRIOR_SEND_WIDTH,
    START,
    Branch,
    EdgeKind,
    Estimate,
    Loop,
    NodeKind,
    WorkflowGraph,
    _default_recursion_limit,
)
from graphroute.graph.identity import compiled_app, graph_identity

__all__ = [
    "END",
    "FLOW_EDGE_KINDS",
    "PRIOR_SEND_WIDTH",
    "START",
    "Branch",
    "EdgeKind",
    "Estimate",
    "Loop",
    "NodeKind",
    "WorkflowGraph",
    "find_loops",
    "inspect",
    "loop_of",
    "send_targets",
]


def inspect(app: Any, *, traces: Any = None, recursion_limit: int | None = None) -> WorkflowGraph:
    """The ``WorkflowGraph`` of a LangGraph app (``StateGraph``, compiled graph or optimized app).

    ``traces`` (a ``TraceStore`` or path) makes branch probabilities, fan-out widths, loop
    iterations and node kinds learned from recorded runs instead of priors.
    """
    from graphroute.optimize import OptimizedApp

    compiled = compiled_app(app.app if isinstance(app, OptimizedApp) else app)
    graph = WorkflowGraph()
    graph.graph.update(
        name=getattr(compiled, "name", None) or "graph",
        identity=graph_identity(compiled),
        recursion_limit=recursion_limit or (getattr(compiled, "config", None) or {}).get("recursion_limit"),
    )
    _add_level(graph, compiled, level="")
    for branch in graph.branches.values():
        branch.uniform()
    graph.sync_edges()
    find_loops(graph)
    if traces is not None:
        from graphroute.graph.profile import learn

        learn(graph, traces)
    else:
        from graphroute.graph.annotate import refresh_loop_iterations

        refresh_loop_iterations(graph)
    return graph
