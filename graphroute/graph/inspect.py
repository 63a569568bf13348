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
"""

from __future__ import annotations

import dis
import itertools
import types
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import networkx as nx

from graphroute.errors import GraphInspectionError
from graphroute.graph.identity import compiled_app, graph_identity

NodeKind = Literal["llm", "tool", "function", "subgraph", "start", "end"]
EdgeKind = Literal["plain", "join", "conditional", "send", "command", "enter"]
Estimate = Literal["prior", "given", "traces"]  # where a probability or count comes from

START = "__start__"
END = "__end__"
FLOW_EDGE_KINDS: frozenset[str] = frozenset({"plain", "join", "conditional", "send", "command"})
PRIOR_SEND_WIDTH = 2.0  # Send tasks per chosen target before any trace says otherwise


def _default_recursion_limit() -> int:
    try:
        from langgraph._internal._config import DEFAULT_RECURSION_LIMIT

        return int(DEFAULT_RECURSION_LIMIT)
    except (ImportError, TypeError, ValueError):  # private location; older releases used 25
        return 25


@dataclass
class Branch:
    """A conditional edge group: where a router (or a node's ``Command``) can send control.

    ``outcomes`` is a distribution over the *sets* of targets one decision activates (a router
    may return several targets or several ``Send``s); ``widths`` is the expected number of
    ``Send`` tasks a target gets when it is chosen.
    """

    id: str
    source: str
    name: str
    targets: tuple[str, ...]
    labels: dict[str, str] = field(default_factory=dict)
    sends: bool = False
    outcomes: dict[frozenset[str], float] = field(default_factory=dict)
    widths: dict[str, float] = field(default_factory=dict)
    source_of_estimate: Estimate = "prior"
    observed: int = 0
    send_targets: frozenset[str] | None = None  # named by the router's code; None: any target

    def probability(self, target: str) -> float:
        """How often a decision activates ``target`` (marginal over outcome sets)."""
        return sum(p for outcome, p in self.outcomes.items() if target in outcome)

    def uniform(self) -> None:
        """The prior: each target alone, equally likely."""
        self.outcomes = {frozenset([target]): 1 / len(self.targets) for target in self.targets}
        pushed = self.send_targets if self.send_targets is not None else self.targets
        ends = (END, f":{END}")
        self.widths = {t: PRIOR_SEND_WIDTH for t in self.targets if self.sends and t in pushed and not t.endswith(ends)}
        self.source_of_estimate = "prior"
        self.observed = 0


@dataclass
class Loop:
    """A strongly connected component of one level: a cycle LangGraph may run many times."""

    nodes: frozenset[str]
    level: str
    entry: tuple[str, ...]
    max_iterations: int
    expected_iterations: float = 1.0
    observed_iterations: float | None = None
    observed: int = 0

    @property
    def source(self) -> Estimate:
        return "traces" if self.observed else "prior"


class WorkflowGraph(nx.DiGraph):
    """The structure of a LangGraph app, ready for profiling and planning.

    Node attributes: ``kind`` (llm, tool, function, subgraph, start, end), ``kind_source``,
    ``name`` (local name), ``level`` (container id, ``""`` at top level), ``models`` (chat
    models found statically), ``tools``, ``retry``. Edge attributes: ``kind`` (plain, join,
    conditional, send, command, enter), ``branch`` (a ``Branch`` id), ``label``,
    ``probability`` and ``width``.

    Usage::

        graph = inspect(app)
        graph.kind("plan")                     # 'llm'
        graph.edges["plan", "research"]        # {'kind': 'send', 'probability': 0.5, ...}
        graph.loops                            # [Loop(nodes={'agent', 'tools'}, ...)]
    """

    @property
    def identity(self) -> str:
        """The id traces of this app are stored under (``graph_identity``)."""
        return str(self.graph.get("identity", ""))

    @property
    def recursion_limit(self) -> int:
        return int(self.graph.get("recursion_limit") or _default_recursion_limit())

    @property
    def branches(self) -> dict[str, Branch]:
        return self.graph.setdefault("branches", {})  # type: ignore[no-any-return]

    @property
    def loops(self) -> list[Loop]:
        return self.graph.setdefault("loops", [])  # type: ignore[no-any-return]

    # -- nodes ------------------------------------------------------------------------------
    def kind(self, node: str) -> NodeKind:
        return self.nodes[node]["kind"]  # type: ignore[no-any-return]

    def nodes_of_kind(self, *kinds: NodeKind) -> list[str]:
        return [node for node, data in self.nodes(data=True) if data["kind"] in kinds]

    def work_nodes(self) -> list[str]:
        """Every node that runs code (all but the START/END markers), in insertion order."""
        return [node for node, data in self.nodes(data=True) if data["kind"] not in ("start", "end")]

    def level_of(self, node: str) -> str:
        return str(self.nodes[node]["level"])

    def levels(self) -> list[str]:
        """``""`` (top level) then every subgraph container, outermost first."""
        return ["", *self.nodes_of_kind("subgraph")]

    def level_nodes(self, level: str) -> list[str]:
        """The nodes of one level, its START and END included."""
        return [node for node, data in self.nodes(data=True) if data["level"] == level]

    @staticmethod
    def start_of(level: str) -> str:
        return f"{level}:{START}" if level else START

    @staticmethod
    def end_of(level: str) -> str:
        return f"{level}:{END}" if level else END

    def containers_of(self, node: str) -> list[str]:
        """The subgraphs ``node`` runs inside, innermost first."""
        chain, level = [], self.level_of(node)
        while level:
            chain.append(level)
            level = self.level_of(level)
        return chain

    # -- edges ------------------------------------------------------------------------------
    def flow_successors(self, node: str) -> list[str]:
        return [target for target in self.successors(node) if self.edges[node, target]["kind"] in FLOW_EDGE_KINDS]

    def flow_edges(self, level: str | None = None) -> Iterator[tuple[str, str, dict[str, Any]]]:
        for source, target, data in self.edges(data=True):
            if data["kind"] in FLOW_EDGE_KINDS and (level is None or self.level_of(source) == level):
                yield source, target, data

    def branches_from(self, node: str) -> list[Branch]:
        return [branch for branch in self.branches.values() if branch.source == node]

    def set_probabilities(
        self, source: str, probabilities: Mapping[str, float], *, widths: Mapping[str, float] | None = None
    ) -> Branch:
        """Set a branch's outcome probabilities by hand (one target per outcome), e.g. for what-ifs.

        ``widths``, when given, names every ``Send`` target with its expected number of tasks.
        """
        candidates = self.branches_from(source)
        if len(candidates) != 1:
            raise GraphInspectionError(f"node {source!r} has {len(candidates)} branches; set the Branch's outcomes")
        branch = candidates[0]
        unknown = set(probabilities) - set(branch.targets)
        if unknown:
            raise GraphInspectionError(f"{sorted(unknown)} are not targets of {branch.id!r}: {list(branch.targets)}")
        branch.outcomes = {frozenset([target]): float(p) for target, p in probabilities.items()}
        if widths is not None:  # the Send targets and their widths; other targets run once
            branch.sends, branch.widths = bool(widths), {target: float(w) for target, w in widths.items()}
        branch.source_of_estimate = "given"
        self.sync_edges()
        return branch

    def sync_edges(self) -> None:
        """Copy each branch's current probabilities and widths onto its edges."""
        for branch in self.branches.values():
            for target in branch.targets:
                data = self.edges[branch.source, target]
                if data.get("branch") != branch.id:
                    continue
                data["probability"] = branch.probability(target)
                data["width"] = branch.widths.get(target, 1.0)
                if data["kind"] in ("conditional", "send"):
                    data["kind"] = "send" if branch.sends and target in branch.widths else "conditional"


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


# -- building ---------------------------------------------------------------------------------
def _id(level: str, name: str) -> str:
    if name == START:
        return WorkflowGraph.start_of(level)
    if name == END:
        return WorkflowGraph.end_of(level)
    return f"{level}:{name}" if level else name


def _add_level(graph: WorkflowGraph, app: Any, *, level: str) -> None:
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
        _add_level(graph, subgraph, level=node_id)
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


# -- loops -------------------------------------------------------------------------------------
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


# -- branches ---------------------------------------------------------------------------------
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
