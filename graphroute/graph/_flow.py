"""``Flow``: expected executions, reach and criticality of every node, from the graph alone.

**Flow model.** LangGraph runs each level of a graph in supersteps: the nodes triggered in
one step run together, and a node triggered by several predecessors in the same step runs
once. ``Flow`` follows exactly that, as a Markov chain over *frontiers* (the set of nodes
running in a step): plain edges always fire, a branch picks one of its outcome sets with its
probability, a ``Send`` target runs ``width`` times, a join fires once all its sources have
run. Summing frontiers step by step, up to the recursion limit, gives each node's expected
executions; loops need no special case (an edge back with probability p gives 1/(1-p)
iterations), and parallel branches rejoin the way LangGraph rejoins them. Subgraphs are
levels of their own: a container's cost is its level's expected cost per execution.

Approximations: the ``Send`` tasks of one step decide their branches once, together; the
recursion limit is applied per level.

**Criticality** — ``P(node runs) × P(final output wrong | this node's output wrong)``. A wrong
output reaches the final state directly through an edge to END, and through every consumer
it feeds, each of which passes a wrong input on with probability ``propagation`` (0.9 for a
model node, which may notice and repair some mistakes; 1.0 for code and tools; a subgraph
passes it on as its inner nodes do, from its START).
Paths combine like independent chances, ``1 - Π(1 - p_path)``, so a node feeding many others
or the final answer scores near 1, and a rarely taken side branch scores its small reach.
Inside a subgraph the node's impact on the subgraph's output is multiplied by the subgraph's
own impact. A loop counts as one unit: its plain exits fire on every pass, and it is left
through one of its branch exits, chosen in proportion to their probabilities.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping

import networkx as nx

from graphroute.graph._loops import loop_of
from graphroute.graph._workflow_graph import END, Loop, WorkflowGraph

PROPAGATION = {"llm": 0.9}  # others (function, tool, subgraph, end): 1.0
_MIN_MASS = 1e-10
_MAX_STATES = 20_000

# A frontier: (node, multiplicity) pairs, plus the (join, source) marks of unfinished joins.
State = tuple[tuple[tuple[str, float], ...], frozenset[tuple[str, str]]]
Counts = dict[str, float]


class Flow:
    """Expected executions of every node of a ``WorkflowGraph`` under its current probabilities.

    Usage::

        flow = Flow(graph)
        flow.visits()["research"]            # expected executions per run
        flow.downstream_visits("plan")       # what runs after one execution of plan
    """

    def __init__(self, graph: WorkflowGraph) -> None:
        self.graph = graph
        self._level: dict[str, tuple[Counts, Counts]] = {}
        self._after: dict[str, tuple[Counts, Counts]] = {}
        self._impacts: dict[str, Counts] = {}
        self._joins = {
            data["join"]: (target, frozenset(data["join_sources"]))
            for _, target, data in graph.edges(data=True)
            if data["kind"] == "join"
        }

    # -- one step ---------------------------------------------------------------------------
    def _outcomes(self, node: str) -> list[tuple[float, dict[str, tuple[bool, float]]]]:
        """The possible sets of nodes ``node`` triggers next: (probability, {target: (pulled, pushed)})."""
        fixed: dict[str, tuple[bool, float]] = {}
        for target in self.graph.successors(node):
            if self.graph.edges[node, target]["kind"] == "plain":
                fixed[target] = (True, 0.0)
        options: list[list[tuple[float, dict[str, tuple[bool, float]]]]] = []
        for branch in self.graph.branches_from(node):
            options.append(
                [
                    (
                        p,
                        {
                            t: (False, branch.widths[t]) if branch.sends and t in branch.widths else (True, 0.0)
                            for t in outcome
                        },
                    )
                    for outcome, p in branch.outcomes.items()
                    if p > 0
                ]
            )
        combined = []
        for choice in itertools.product(*options):
            probability, targets = 1.0, dict(fixed)
            for p, chosen in choice:
                probability *= p
                for target, value in chosen.items():
                    targets[target] = _merge(targets.get(target), value)
            combined.append((probability, targets))
        return combined

    def _step(self, state: State) -> list[tuple[float, State]]:
        frontier, marks = state
        per_node = [self._outcomes(node) for node, _ in frontier]
        finished = {node for node, _ in frontier}
        new_marks = set(marks) | {
            (join, node) for join, (_, sources) in self._joins.items() for node in finished if node in sources
        }
        fired = {join for join, (_, sources) in self._joins.items() if all((join, s) in new_marks for s in sources)}
        kept = frozenset(mark for mark in new_marks if mark[0] not in fired)
        result = []
        for choice in itertools.product(*per_node):
            probability = 1.0
            targets: dict[str, tuple[bool, float]] = {}
            for p, chosen in choice:
                probability *= p
                for target, value in chosen.items():
                    targets[target] = _merge(targets.get(target), value)
            for join in fired:
                targets[self._joins[join][0]] = _merge(targets.get(self._joins[join][0]), (True, 0.0))
            nodes = tuple(sorted((t, _tasks(trigger)) for t, trigger in targets.items() if not _is_end(t)))
            if nodes or kept:
                result.append((probability, (nodes, kept)))
        return result

    def _run(self, start: State, *, count_start: bool) -> tuple[Counts, Counts]:
        """(expected executions, expected steps present) of each node, from ``start`` on."""
        visits: Counts = {}
        present: Counts = {}
        states = {start: 1.0}
        for step in range(self.graph.recursion_limit + 1):
            if step or count_start:
                for (frontier, _), p in states.items():
                    for node, mult in frontier:
                        visits[node] = visits.get(node, 0.0) + p * mult
                        present[node] = present.get(node, 0.0) + p
            following: dict[State, float] = {}
            for state, p in states.items():
                for q, successor in self._step(state):
                    if p * q > _MIN_MASS:
                        following[successor] = following.get(successor, 0.0) + p * q
            if len(following) > _MAX_STATES:
                following = dict(sorted(following.items(), key=lambda item: -item[1])[:_MAX_STATES])
            states = {state: p for state, p in following.items() if state[0]}
            if sum(states.values()) < _MIN_MASS:
                break
        return visits, present

    # -- per level --------------------------------------------------------------------------
    def level(self, level: str) -> tuple[Counts, Counts]:
        """Executions and presence of each node of ``level`` per execution of that level."""
        if level not in self._level:
            start: State = (((WorkflowGraph.start_of(level), 1.0),), frozenset())
            self._level[level] = self._run(start, count_start=False)
        return self._level[level]

    def after(self, node: str) -> tuple[Counts, Counts]:
        """Executions and presence on ``node``'s level after one execution of ``node``."""
        if node not in self._after:
            self._after[node] = self._run((((node, 1.0),), frozenset()), count_start=False)
        return self._after[node]

    def _expand(self, counts: Mapping[str, float]) -> Counts:
        """Level counts with every subgraph container's inner executions added."""
        total: Counts = {}
        for node, value in counts.items():
            total[node] = total.get(node, 0.0) + value
            if self.graph.kind(node) == "subgraph":
                for inner, inner_value in self._expand(self.level(node)[0]).items():
                    total[inner] = total.get(inner, 0.0) + value * inner_value
        return total

    # -- whole graph ------------------------------------------------------------------------
    def visits(self) -> Counts:
        """Expected executions per run of every work node."""
        counts = self._expand(self.level("")[0])
        return {node: counts.get(node, 0.0) for node in self.graph.work_nodes()}

    def reach(self) -> Counts:
        """Probability that each work node runs at least once in a run."""
        result: Counts = {}
        for level in self.graph.levels():
            outer = result.get(level, 1.0) if level else 1.0
            present = self.level(level)[1]
            for node in self.graph.level_nodes(level):
                if self.graph.kind(node) in ("start", "end"):
                    continue
                again = self.after(node)[1].get(node, 0.0)
                result[node] = outer * min(1.0, present.get(node, 0.0) / (1.0 + again))
        return result

    def downstream_visits(self, node: str) -> Counts:
        """Expected executions of every node after one execution of ``node``, subgraph exits included."""
        counts = self._expand(self.after(node)[0])
        level = self.graph.level_of(node)
        if level:
            for other, value in self.downstream_visits(level).items():
                counts[other] = counts.get(other, 0.0) + value
        return counts

    def iterations(self, loop: Loop) -> float:
        """Expected passes through a loop once entered: 1 + expected returns to its entry."""
        entry = loop.entry[0]
        return min(float(loop.max_iterations), 1.0 + self.after(entry)[1].get(entry, 0.0))

    # -- criticality ------------------------------------------------------------------------
    def impact(self) -> Counts:
        """P(final output wrong | the node's output wrong), for every work node."""
        result: Counts = {}
        for level in self.graph.levels():
            outer = result.get(level, 1.0) if level else 1.0
            for node, value in self._level_impact(level).items():
                if self.graph.kind(node) != "start":
                    result[node] = outer * value
        return result

    def propagation(self, node: str) -> float:
        """How likely a wrong input to ``node`` yields a wrong output (see the module docstring).

        A subgraph passes a wrong input on as its own level does from its START.
        """
        kind = self.graph.kind(node)
        if kind == "subgraph":
            return self._level_impact(node)[WorkflowGraph.start_of(node)]
        return PROPAGATION.get(kind, 1.0)

    def _level_impact(self, level: str) -> Counts:
        """P(the level's output wrong | a node's output wrong), START included, memoised."""
        if level in self._impacts:
            return self._impacts[level]
        graph = self.graph
        flow = nx.DiGraph()
        flow.add_nodes_from(graph.level_nodes(level))
        flow.add_edges_from((s, t) for s, t, _ in graph.flow_edges(level) if t in flow)
        condensed = nx.condensation(flow)
        impact: Counts = {}
        for unit in reversed(list(nx.topological_sort(condensed))):
            nodes = condensed.nodes[unit]["members"]
            if any(_is_end(n) for n in nodes):
                impact.update(dict.fromkeys(nodes, 1.0))
                continue
            if loop_of(graph, next(iter(nodes))) is None:
                unaffected = self._unaffected(next(iter(nodes)), impact)
            else:
                unaffected = self._loop_unaffected(nodes, impact)
            impact.update(dict.fromkeys(nodes, 1.0 - unaffected))
        self._impacts[level] = {node: value for node, value in impact.items() if not _is_end(node)}
        return self._impacts[level]

    def _unaffected(self, node: str, impact: Counts) -> float:
        """P(a wrong output of ``node`` reaches no consumer): plain edges always, branches per outcome."""
        graph = self.graph

        def clean(target: str) -> float:
            return 1.0 - self.propagation(target) * impact[target]

        unaffected = 1.0
        for target in graph.flow_successors(node):
            if not graph.edges[node, target].get("branch"):
                unaffected *= clean(target)
        for branch in graph.branches_from(node):
            unaffected *= sum(p * math.prod(clean(t) for t in outcome) for outcome, p in branch.outcomes.items())
        return unaffected

    def _loop_unaffected(self, nodes: set[str], impact: Counts) -> float:
        """A loop as one unit: plain exits fire on every pass, and it ends through one branch exit."""
        graph = self.graph
        unaffected, exits = 1.0, []
        for source in nodes:
            for target in graph.flow_successors(source):
                if target in nodes:
                    continue
                clean = 1.0 - self.propagation(target) * impact[target]
                if graph.edges[source, target].get("branch"):
                    exits.append((_edge_probability(graph, source, target), clean))
                else:
                    unaffected *= clean
        mass = sum(p for p, _ in exits)
        if mass > 0:
            unaffected *= sum(p * clean for p, clean in exits) / mass
        return unaffected


def _edge_probability(graph: WorkflowGraph, source: str, target: str) -> float:
    data = graph.edges[source, target]
    return float(data["probability"]) if data.get("branch") else 1.0


def _merge(old: tuple[bool, float] | None, new: tuple[bool, float]) -> tuple[bool, float]:
    """(pulled, pushed width): pulled triggers of a node in one step collapse into one task, Sends add up."""
    if old is None:
        return new
    return old[0] or new[0], old[1] + new[1]


def _tasks(trigger: tuple[bool, float]) -> float:
    return (1.0 if trigger[0] else 0.0) + trigger[1]


def _is_end(node: str) -> bool:
    return node == END or node.endswith(f":{END}")


def refresh_loop_iterations(graph: WorkflowGraph, flow: Flow | None = None) -> None:
    """Set each loop's expected iterations from the graph's current probabilities."""
    flow = flow or Flow(graph)
    for loop in graph.loops:
        loop.expected_iterations = flow.iterations(loop)
