"""A graph's loops: the cycles of each level, which LangGraph may run many times.

Found on the ``WorkflowGraph`` alone (strongly connected components of a level's flow edges),
so loops read the same whether the graph came from a builder or a drawing.
"""

from __future__ import annotations

import networkx as nx

from graphroute.graph._workflow_graph import FLOW_EDGE_KINDS, Loop, WorkflowGraph


def find_loops(graph: WorkflowGraph) -> list[Loop]:
    """Each level's strongly connected components with a cycle (self-loops included)."""
    loops: list[Loop] = []
    for level in graph.levels():
        members = set(graph.level_nodes(level))
        flow = nx.DiGraph((s, t) for s, t, _ in graph.flow_edges(level) if t in members)
        for component in nx.strongly_connected_components(flow):
            node = next(iter(component))
            if len(component) == 1 and not flow.has_edge(node, node):
                continue
            entry = tuple(
                n
                for n in graph.level_nodes(level)
                if n in component
                and any(
                    p not in component for p in graph.predecessors(n) if graph.edges[p, n]["kind"] in FLOW_EDGE_KINDS
                )
            )
            loops.append(
                Loop(
                    nodes=frozenset(component),
                    level=level,
                    entry=entry or (node,),
                    max_iterations=max(1, graph.recursion_limit // len(component)),
                )
            )
    graph.graph["loops"] = loops
    return loops


def loop_of(graph: WorkflowGraph, node: str) -> Loop | None:
    return next((loop for loop in graph.loops if node in loop.nodes), None)
