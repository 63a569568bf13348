"""A stable identity for a LangGraph app: its name plus a hash of its structure.

Traces are grouped by it and caches are namespaced by it, so two different graphs never read
each other's entries, while the same graph keeps its identity across processes and restarts.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Container, Iterable, Iterator, Mapping
from typing import Any

from graphroute.errors import GraphInspectionError


def compiled_app(graph: Any, **compile_kwargs: Any) -> Any:
    """A compiled app from a ``StateGraph`` or an already compiled graph; anything else is an error."""
    from langgraph.graph import StateGraph
    from langgraph.pregel import Pregel

    if isinstance(graph, Pregel):
        if compile_kwargs:
            raise GraphInspectionError(
                f"got a compiled graph and compile options {sorted(compile_kwargs)}; pass the StateGraph "
                "(uncompiled) to have graphroute compile it with them, or compile it yourself"
            )
        return graph
    if isinstance(graph, StateGraph):
        try:
            return graph.compile(**compile_kwargs)
        except Exception as error:
            raise GraphInspectionError(f"the StateGraph does not compile: {error}") from error
    raise GraphInspectionError(
        f"expected a LangGraph StateGraph or compiled graph, got {type(graph).__module__}.{type(graph).__qualname__}; "
        "pass the object you would call .invoke() on (or its builder)"
    )


def node_ids(app: Any) -> list[str]:
    """Node ids with subgraphs expanded (``parent:inner``), without START/END."""
    try:
        drawable = app.get_graph(xray=True)
    except Exception as error:
        raise GraphInspectionError(
            f"cannot read the graph's structure (get_graph(xray=True) failed: {error})"
        ) from error
    return [node_id for node_id in drawable.nodes if node_id not in ("__start__", "__end__")]


def pin_targets(node_ids: Iterable[str]) -> set[str]:
    """What a pin may name: every node (``parent:inner``) and every subgraph (``parent``: its pin
    covers every node inside it), without the START/END markers."""
    nodes = {str(node) for node in node_ids if str(node).rpartition(":")[2] not in ("__start__", "__end__")}
    return nodes | {node.rsplit(":", depth)[0] for node in nodes for depth in range(1, node.count(":") + 1)}


def pins_within(pins: Mapping[str, str], targets: Collection[str]) -> dict[str, str]:
    """The pins that name one of ``targets`` (an app's ``pin_targets``): one pool file may serve
    several apps, and its pins for another app's nodes do not apply to this one."""
    return {node: model for node, model in pins.items() if node in targets}


def enclosing(node: str | None) -> Iterator[str]:
    """``node`` and the subgraphs around it, innermost first: ``a:b:c``, ``a:b``, ``a``.

    A node inside a subgraph is named ``parent:inner``, and whatever is set or recorded for a
    subgraph covers the nodes inside it unless they have their own: lookups walk outwards.
    """
    while node:
        yield node
        node = node.rpartition(":")[0]


def nearest(names: Container[str], node: str | None) -> str | None:
    """The innermost of ``enclosing(node)`` that ``names`` holds; ``None`` when none is."""
    return next((name for name in enclosing(node) if name in names), None)


def pin_for(pins: Mapping[str, str], node: str | None) -> str | None:
    """The model ``pins`` give a call of ``node``: its own pin, else its nearest pinned parent's.

    A pin on ``"report"`` covers ``"report:draft"`` unless that node has its own: the most
    specific name wins, for every router that honours pins.
    """
    name = nearest(pins, node)
    return None if name is None else pins[name]


def graph_identity(app: Any) -> str:
    """``<name>-<12 hex>``: the app's name and a hash of its nodes and edges."""
    drawable = app.get_graph(xray=True)
    shape = sorted(drawable.nodes) + sorted(f"{e.source}->{e.target}:{e.conditional}" for e in drawable.edges)
    digest = hashlib.sha256("\n".join(shape).encode()).hexdigest()[:12]
    return f"{getattr(app, 'name', None) or 'graph'}-{digest}"
