"""The types ``inspect`` returns: ``WorkflowGraph`` (a networkx ``DiGraph``), ``Branch`` and ``Loop``.

Kept apart from how an app is read so that everything downstream — profiles, flows, plans,
pictures — depends on the graph's shape and vocabulary (node and edge kinds, levels, flow
edges, branch outcomes) without depending on LangGraph's internals.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import networkx as nx

from graphroute.errors import GraphInspectionError

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
    most_iterations: int = 0  # the most executions of the entry seen in one traced run

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
