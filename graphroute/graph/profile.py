"""``NodeProfile``; what a node is (read statically, corrected by traces); what traces teach a graph.

``learn(graph, traces)`` reads the runs recorded for the graph (``TraceStore.runs(graph=...)``):
its node executions (``node_runs``: node, superstep, pushed by a ``Send``) and its model calls.
A branch's outcome is read off the superstep after its source ran (LangGraph runs a chosen
target exactly one step later), a ``Send`` width is the number of pushed tasks there, a loop's
iterations are the executions of its entry per run. Estimates blend with the prior as one
pseudo-observation, so a few runs move them and many runs dominate.
"""

from __future__ import annotations

import math
import types
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from graphroute.graph.identity import enclosing
from graphroute.graph.inspect import PRIOR_SEND_WIDTH, Branch, Estimate, NodeKind, WorkflowGraph
from graphroute.traces.store import CallRecord, NodeRunRecord, TraceStore

PRIOR_INPUT_TOKENS = 500.0  # per call, before traces
PRIOR_OUTPUT_TOKENS = 200.0
PRIOR_WEIGHT = 1.0  # pseudo-observations the prior is worth
KIND_EVIDENCE = 5  # executions without a model call before a statically "llm" node counts as code


@dataclass(frozen=True)
class Complexity:
    """How hard a node's requests are: probabilities of five equal difficulty bins over [0, 1].

    ``source``: ``prior`` (length/structure guess), ``length`` (measured request lengths),
    ``pillars`` (difficulties the routing pillars recorded in traces).
    """

    bins: tuple[float, ...]
    source: Literal["prior", "length", "pillars"] = "prior"

    LABELS = ("trivial", "easy", "medium", "hard", "expert")

    @property
    def mean(self) -> float:
        return sum((index + 0.5) / len(self.bins) * p for index, p in enumerate(self.bins))

    @classmethod
    def around(cls, centre: float, *, concentration: float = 6.0, source: str = "prior") -> Complexity:
        """A discretised Beta distribution with this mean (wide: a prior, not a measurement)."""
        centre = min(0.95, max(0.05, centre))
        a, b = centre * concentration, (1 - centre) * concentration
        density = [math.exp((a - 1) * math.log(x) + (b - 1) * math.log(1 - x)) for x in (0.1, 0.3, 0.5, 0.7, 0.9)]
        total = sum(density)
        return cls(tuple(d / total for d in density), source)  # type: ignore[arg-type]

    @classmethod
    def from_samples(cls, values: Sequence[float], prior: Complexity, *, source: str) -> Complexity:
        counts = [PRIOR_WEIGHT * p for p in prior.bins]
        for value in values:
            counts[min(len(counts) - 1, max(0, int(value * len(counts))))] += 1
        total = sum(counts)
        return cls(tuple(c / total for c in counts), source)  # type: ignore[arg-type]


def length_difficulty(input_tokens: float) -> float:
    """The length prior: ~50 tokens → 0.1, ~500 → 0.37, ~4,000 → 0.6, clipped to [0.05, 0.95]."""
    return min(0.95, max(0.05, 0.1 + 0.08 * math.log2(max(input_tokens, 1.0) / 50)))


def prior_complexity(input_tokens: float, output_tokens: float, *, tools: bool, in_loop: bool) -> Complexity:
    """Longer requests, long answers, tool use and agent loops all make a node's work harder."""
    centre = length_difficulty(input_tokens) + 0.05 * (output_tokens > 500) + 0.1 * tools + 0.05 * in_loop
    return Complexity.around(centre)


@dataclass(frozen=True)
class NodeProfile:
    """What one node is expected to do and cost in a run, and how much the run depends on it.

    Costs are USD under the plan ``annotate`` was given; ``downstream_cost`` is the expected
    spend of everything that runs after one execution of this node (its own cost excluded).
    """

    node: str
    kind: NodeKind
    model: str | None
    visits_per_run: float
    reach: float
    calls_per_visit: float
    input_tokens: float
    output_tokens: float
    complexity: Complexity
    cost_per_call: float
    downstream_cost: float
    impact: float
    criticality: float
    source: Estimate = "prior"
    observed_calls: int = 0

    @property
    def calls_per_run(self) -> float:
        return self.visits_per_run * self.calls_per_visit

    @property
    def cost_per_run(self) -> float:
        return self.calls_per_run * self.cost_per_call


# -- node kinds, static and learned -----------------------------------------------------------------
@dataclass(frozen=True)
class Classified:
    kind: NodeKind
    models: tuple[str, ...] = ()
    tools: tuple[str, ...] = ()


_SKIPPED_MODULES = ("langgraph.", "langchain_core.", "pydantic", "typing", "builtins", "asyncio", "graphroute.")
_MODEL_FACTORIES = {"init_chat_model"}


def classify(runnable: Any) -> Classified:
    """``llm`` when the node's code can reach a chat model, ``tool`` for a ``ToolNode``, else ``function``.

    Static and best-effort: it follows runnables (sequences, bindings, callables), then the
    names a node function uses (globals, closure cells, defaults), two helper calls deep.
    What it cannot see (a model built from a name read at run time) traces correct later.
    """
    from langgraph.prebuilt import ToolNode

    if isinstance(runnable, ToolNode):
        return Classified("tool", tools=tuple(sorted(getattr(runnable, "tools_by_name", {}))))
    models: dict[str, None] = {}
    _scan(runnable, models, depth=3, seen=set())
    return Classified("llm", models=tuple(models)) if models else Classified("function")


def _scan(value: Any, models: dict[str, None], *, depth: int, seen: set[int]) -> None:
    from langchain_core.language_models import BaseChatModel
    from langchain_core.runnables import Runnable

    if id(value) in seen or depth < 0:
        return
    seen.add(id(value))
    if isinstance(value, BaseChatModel):
        models[_model_name(value)] = None
    elif isinstance(value, type):
        if issubclass(value, BaseChatModel):
            models[value.__name__] = None
    elif isinstance(value, types.MethodType):
        _scan(value.__func__, models, depth=depth, seen=seen)
    elif isinstance(value, types.FunctionType):
        _scan_function(value, models, depth=depth, seen=seen)
    elif isinstance(value, Runnable):
        for child in _runnable_children(value):
            _scan(child, models, depth=depth, seen=seen)


def _runnable_children(value: Any) -> list[Any]:
    """The parts of a LangChain/LangGraph runnable that may hold the code or model it runs."""
    children: list[Any] = []
    for attribute in ("func", "afunc", "bound", "first", "last", "default"):
        child = getattr(value, attribute, None)
        if child is not None:
            children.append(child)
    for attribute in ("steps", "middle"):
        items = getattr(value, attribute, None)
        if isinstance(items, list | tuple):
            children.extend(items)
    steps = getattr(value, "steps__", None)
    if isinstance(steps, dict):
        children.extend(steps.values())
    return children


def _scan_function(func: types.FunctionType, models: dict[str, None], *, depth: int, seen: set[int]) -> None:
    module = getattr(func, "__module__", "") or ""
    if module.startswith(_SKIPPED_MODULES) and depth < 3:
        return
    names: set[str] = set()
    codes = [func.__code__]
    while codes:
        code = codes.pop()
        names.update(code.co_names)
        codes.extend(const for const in code.co_consts if isinstance(const, types.CodeType))
    if names & _MODEL_FACTORIES:
        models["init_chat_model"] = None
    values = [func.__globals__[name] for name in sorted(names) if name in func.__globals__]
    values += [cell.cell_contents for cell in (func.__closure__ or ()) if _filled(cell)]
    values += list(func.__defaults__ or ())
    for value in values:
        if isinstance(value, types.ModuleType):
            continue
        _scan(value, models, depth=depth - 1 if isinstance(value, types.FunctionType) else depth, seen=seen)


def _filled(cell: types.CellType) -> bool:
    try:
        cell.cell_contents  # noqa: B018  (an empty cell raises)
    except ValueError:
        return False
    return True


def _model_name(model: Any) -> str:
    for attribute in ("model_name", "model", "model_id"):
        value = getattr(model, attribute, None)
        if isinstance(value, str):
            return value
    return type(model).__name__


# -- trace statistics -------------------------------------------------------------------------
@dataclass
class NodeStats:
    """One node's recorded executions and model calls."""

    executions: int = 0
    calls: list[CallRecord] = field(default_factory=list)

    @property
    def difficulties(self) -> list[float]:
        """Per call, the confidence-weighted difficulty the routing pillars recorded (when any)."""
        return [d for d in map(recorded_difficulty, self.calls) if d is not None]


def recorded_difficulty(call: CallRecord) -> float | None:
    """The confidence-weighted difficulty the routing pillars recorded for one call, if any."""
    scored = [
        (s["difficulty"], s.get("confidence") or 1.0)
        for s in call.signals
        if isinstance(s, dict) and s.get("difficulty") is not None
    ]
    return sum(d * c for d, c in scored) / sum(c for _, c in scored) if scored else None


@dataclass
class TraceStats:
    runs: int = 0
    nodes: dict[str, NodeStats] = field(default_factory=lambda: defaultdict(NodeStats))


def learn(graph: WorkflowGraph, traces: TraceStore | Path | str) -> TraceStats:
    """Update ``graph`` in place from the runs recorded for it; returns the per-node statistics."""
    from graphroute.graph.annotate import Flow, refresh_loop_iterations

    store = traces if isinstance(traces, TraceStore) else TraceStore(traces)
    stats = TraceStats()
    decisions: dict[str, list[tuple[frozenset[str], dict[str, float]]]] = defaultdict(list)
    entries: dict[str, list[int]] = defaultdict(list)
    for run in store.runs(graph=graph.identity):
        all_records = store.node_runs(run_id=run.run_id)
        if not all_records:
            continue  # recorded before node executions were traced: calls alone would skew the ratios
        stats.runs += 1
        records = [r for r in all_records if _resolve(graph, r.node)]
        for record in records:
            stats.nodes[_resolve(graph, record.node)].executions += 1  # type: ignore[index]
        for call in store.calls(run_id=run.run_id):
            node = _resolve(graph, call.node)
            if node is not None:
                stats.nodes[node].calls.append(call)
        if run.status != "ok":
            continue  # a failed run stops mid-way: its last branches would read as going to END
        for level, instance in _instances(graph, records):
            _read_decisions(graph, level, instance, decisions)
            for loop in graph.loops:
                if loop.level == level and (count := sum(r.node == loop.entry[0] for r in instance)):
                    entries[loop.entry[0]].append(count)
    for branch_id, observed in decisions.items():
        _fit_branch(graph.branches[branch_id], observed)
    _learn_kinds(graph, stats)
    graph.sync_edges()
    refresh_loop_iterations(graph, Flow(graph))
    for loop in graph.loops:
        counts = entries.get(loop.entry[0], [])
        loop.observed, loop.observed_iterations = len(counts), (sum(counts) / len(counts) if counts else None)
        loop.most_iterations = max(counts, default=0)
    graph.graph["trace_stats"] = stats
    return stats


def _resolve(graph: WorkflowGraph, node: str | None) -> str | None:
    """A recorded node id as a graph node: itself, else its nearest enclosing subgraph."""
    return next((name for name in enclosing(node) if name in graph and graph.kind(name) not in ("start", "end")), None)


def _instances(graph: WorkflowGraph, records: list[NodeRunRecord]) -> Iterable[tuple[str, list[NodeRunRecord]]]:
    """A run's records split per level execution (a subgraph may run several times per run).

    Inner records go to the container execution whose time window holds their start.
    """
    by_level: dict[str, list[NodeRunRecord]] = defaultdict(list)
    for record in records:
        node = _resolve(graph, record.node)
        by_level[graph.level_of(node)].append(record)  # type: ignore[arg-type]
    yield "", by_level.pop("", [])
    for level, inner in by_level.items():
        windows = sorted((r.started_at, r.started_at + r.duration_ms / 1000) for r in records if r.node == level)
        groups: dict[int, list[NodeRunRecord]] = defaultdict(list)
        for record in inner:
            index = next(
                (
                    i
                    for i, (start, end) in reversed(list(enumerate(windows)))
                    if start - 0.001 <= record.started_at <= end + 0.001
                ),
                0,
            )
            groups[index].append(record)
        yield from ((level, group) for group in groups.values())


def _read_decisions(
    graph: WorkflowGraph,
    level: str,
    instance: list[NodeRunRecord],
    decisions: dict[str, list[tuple[frozenset[str], dict[str, float]]]],
) -> None:
    """Each branch decision of one level execution: (targets activated, Send tasks per target)."""
    at_step: dict[int, list[NodeRunRecord]] = defaultdict(list)
    for record in instance:
        if record.step is not None:
            at_step[record.step].append(record)
    ran = {step: Counter(r.node for r in group) for step, group in at_step.items()}
    start = WorkflowGraph.start_of(level)
    for branch in (b for b in graph.branches.values() if graph.level_of(b.source) == level):
        if branch.source == start:
            steps = {0: 1} if 1 in ran else {}
        else:
            steps = {step: count[branch.source] for step, count in ran.items() if count[branch.source]}
        for step, sources in steps.items():
            following = at_step.get(step + 1, [])
            before = ran.get(step, Counter())
            others = {t: [p for p in graph.predecessors(t) if p != branch.source and before[p]] for t in branch.targets}
            if any(others[t] for t in branch.targets if any(r.node == t for r in following)):
                continue  # a target also triggered by another node that step: ambiguous
            chosen = {t for t in branch.targets if any(r.node == t for r in following)}
            pushed = {t: sum(r.node == t and r.pushed for r in following) / sources for t in chosen}
            if not chosen:
                ends = [t for t in branch.targets if t == WorkflowGraph.end_of(level)]
                if not ends:
                    continue
                chosen = set(ends)
            decisions[branch.id].append((frozenset(chosen), {t: w for t, w in pushed.items() if w > 0}))


def _fit_branch(branch: Branch, observed: list[tuple[frozenset[str], dict[str, float]]]) -> None:
    branch.uniform()
    prior = dict(branch.outcomes)
    counts = Counter(outcome for outcome, _ in observed)
    total = len(observed) + PRIOR_WEIGHT
    outcomes = {o: PRIOR_WEIGHT * p / total for o, p in prior.items()}
    for outcome, count in counts.items():
        outcomes[outcome] = outcomes.get(outcome, 0.0) + count / total
    widths: dict[str, list[float]] = defaultdict(list)
    for _, pushed in observed:
        for target, width in pushed.items():
            widths[target].append(width)
    if widths:
        branch.sends = True
    branch.widths = {
        t: (PRIOR_WEIGHT * PRIOR_SEND_WIDTH + sum(ws)) / (PRIOR_WEIGHT + len(ws)) for t, ws in widths.items()
    } or branch.widths
    branch.outcomes, branch.observed, branch.source_of_estimate = outcomes, len(observed), "traces"


def _learn_kinds(graph: WorkflowGraph, stats: TraceStats) -> None:
    """Calls seen make a node ``llm``; many executions without a call make a static guess ``function``."""
    for node, node_stats in stats.nodes.items():
        kind = graph.kind(node)
        if kind == "subgraph":
            continue
        if node_stats.calls and kind != "llm":
            graph.nodes[node].update(kind="llm", kind_source="traces")
        elif not node_stats.calls and kind == "llm" and node_stats.executions >= KIND_EVIDENCE:
            graph.nodes[node].update(kind="function", kind_source="traces")
