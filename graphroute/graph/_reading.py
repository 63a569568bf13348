"""Reading a LangGraph app into a ``WorkflowGraph``: levels, nodes, edges, branches, ``Send`` targets.

Everything here touches LangGraph's objects — a compiled graph's builder (nodes, plain edges,
joins, conditional branches, ``Command`` targets), its subgraphs, its drawing for apps without
a builder, and a router's bytecode for the targets its ``Send``s name — and nothing else does,
so a change in LangGraph's internals is met in this one module.
"""

from __future__ import annotations

import dis
import itertools
import types
from typing import Any

from graphroute.errors import GraphInspectionError
from graphroute.graph._workflow_graph import END, START, Branch, EdgeKind, WorkflowGraph


def _id(level: str, name: str) -> str:
    if name == START:
        return WorkflowGraph.start_of(level)
    if name == END:
        return WorkflowGraph.end_of(level)
    return f"{level}:{name}" if level else name


def add_level(graph: WorkflowGraph, app: Any, *, level: str) -> None:
    """The nodes, edges and branches of one level of ``app`` (``""``: the top), its subgraphs' levels included."""
    graph.add_node(WorkflowGraph.start_of(level), kind="start", kind_source="static", name=START, level=level)
    graph.add_node(WorkflowGraph.end_of(level), kind="end", kind_source="static", name=END, level=level)
    try:
        subgraphs = dict(app.get_subgraphs())
    except Exception as error:
        raise GraphInspectionError(f"cannot list the subgraphs of {graph.name!r}: {error}") from error
    builder = getattr(app, "builder", None)
    if builder is None or not hasattr(builder, "branches"):
        _add_level_from_drawing(graph, app, level=level, subgraphs=subgraphs)
        return
    for name, spec in builder.nodes.items():
        _add_work_node(graph, level, name, spec.runnable, subgraphs.get(name), retry=bool(spec.retry_policy))
        ends = getattr(spec, "ends", None) or ()
        if ends:
            _add_branch(graph, level, name, "Command", {str(end): str(end) for end in ends}, sends=False, command=True)
    for source, target in sorted(builder.edges):
        _add_edge(graph, _id(level, source), _id(level, target), kind="plain")
    for index, (sources, target) in enumerate(sorted(builder.waiting_edges)):
        for source in sources:
            _add_edge(
                graph,
                _id(level, source),
                _id(level, target),
                kind="join",
                join=f"{level}#join{index}",
                join_sources=tuple(_id(level, s) for s in sources),
            )
    for source, named in builder.branches.items():
        for branch_name, spec in named.items():
            if spec.ends:
                ends = {str(label): str(target) for label, target in spec.ends.items()}
            else:  # no path_map and no Literal hint: LangGraph allows any node, and END
                ends = {name: name for name in [*builder.nodes, END]}
            sends, pushed = send_targets(spec.path)
            _add_branch(graph, level, source, branch_name, ends, sends=sends, pushed=pushed)


def _add_level_from_drawing(graph: WorkflowGraph, app: Any, *, level: str, subgraphs: dict[str, Any]) -> None:
    """Apps without a ``StateGraph`` builder (functional API): nodes and edges as drawn."""
    drawing = app.get_graph()
    for node_id, node in drawing.nodes.items():
        if node_id not in (START, END):
            _add_work_node(graph, level, node_id, node.data, subgraphs.get(node_id), retry=False)
    conditional: dict[str, dict[str, str]] = {}
    for edge in drawing.edges:
        if edge.conditional:
            conditional.setdefault(edge.source, {})[str(edge.data or edge.target)] = edge.target
        else:
            _add_edge(graph, _id(level, edge.source), _id(level, edge.target), kind="plain")
    for source, ends in conditional.items():
        _add_branch(graph, level, source, "condition", ends, sends=False)


def _add_work_node(graph: WorkflowGraph, level: str, name: str, runnable: Any, subgraph: Any, *, retry: bool) -> None:
    node_id = _id(level, name)
    if subgraph is not None:
        graph.add_node(
            node_id, kind="subgraph", kind_source="static", name=name, level=level, models=(), tools=(), retry=retry
        )
        add_level(graph, subgraph, level=node_id)
        graph.add_edge(
            node_id, WorkflowGraph.start_of(node_id), kind="enter", branch=None, label=None, probability=1.0, width=1.0
        )
        return
    from graphroute.graph.profile import classify

    found = classify(runnable)
    graph.add_node(
        node_id,
        kind=found.kind,
        kind_source="static",
        name=name,
        level=level,
        models=found.models,
        tools=found.tools,
        retry=retry,
    )


def _add_edge(graph: WorkflowGraph, source: str, target: str, *, kind: EdgeKind, **extra: Any) -> None:
    for node in (source, target):
        if node not in graph:
            raise GraphInspectionError(f"edge {source!r} -> {target!r} names an unknown node {node!r}")
    graph.add_edge(source, target, kind=kind, branch=None, label=None, probability=1.0, width=1.0, **extra)


def _add_branch(
    graph: WorkflowGraph,
    level: str,
    source: str,
    name: str,
    ends: dict[str, str],
    *,
    sends: bool,
    pushed: frozenset[str] | None = None,
    command: bool = False,
) -> None:
    """One branch and its edges; ``pushed``: the targets its ``Send``s name, when known."""
    source_id = _id(level, source)
    branch_id = f"{source_id}/{name}"
    for suffix in itertools.count(2):
        if branch_id not in graph.branches:
            break
        branch_id = f"{source_id}/{name}#{suffix}"
    targets = tuple(dict.fromkeys(_id(level, target) for target in ends.values()))
    labels = {_id(level, target): label for label, target in ends.items() if label != target}
    for target in targets:
        _add_edge(graph, source_id, target, kind="command" if command else "conditional")
        graph.edges[source_id, target].update(branch=branch_id, label=labels.get(target))
    send_to = None if pushed is None else frozenset(_id(level, target) for target in pushed)
    graph.branches[branch_id] = Branch(
        id=branch_id, source=source_id, name=name, targets=targets, labels=labels, sends=sends, send_targets=send_to
    )


def send_targets(path: Any) -> tuple[bool, frozenset[str] | None]:
    """Whether a router fans out with ``Send``, and to which nodes when its code names them.

    Read from the router's return annotation (``-> list[Send]``) and its bytecode: a
    ``Send("worker", ...)`` with a literal node name names a target. ``None``: cannot tell.
    """
    funcs = [
        f
        for f in (getattr(path, "func", None), getattr(path, "afunc", None), path)
        if isinstance(f, types.FunctionType | types.MethodType)
    ]
    annotated = any("Send" in str(getattr(f, "__annotations__", {}).get("return", "")) for f in funcs)
    named: set[str] = set()
    dynamic = False
    codes = [f.__code__ for f in funcs]
    while codes:
        code = codes.pop()
        codes.extend(const for const in code.co_consts if isinstance(const, types.CodeType))
        instructions = list(dis.get_instructions(code))
        for index, instruction in enumerate(instructions[:-1]):
            if instruction.opname.startswith("LOAD_") and instruction.argval == "Send":
                following = instructions[index + 1]
                if following.opname == "LOAD_CONST" and isinstance(following.argval, str):
                    named.add(following.argval)
                else:
                    dynamic = True
    return annotated or bool(named) or dynamic, (frozenset(named) if named and not dynamic else None)
