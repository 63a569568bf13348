"""The figures of the trace report, computed from a store (``html.py`` lays them out).

Everything here is plain data, so the same numbers can feed the HTML page, a test, or a
notebook: spend over time per model, one row per node and per model, the pillars' decision
mix, automatic quality signals and feedback, and budget against spend.
"""

from __future__ import annotations

import math
import re
import statistics
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

from graphroute.traces.outcomes import CallOutcome, score_calls
from graphroute.traces.records import CallRecord, RunRecord
from graphroute.traces.store import TraceStore

BUCKETS_S = (60, 300, 900, 3600, 6 * 3600, 86400, 7 * 86400, 30 * 86400)


def percentile(values: Sequence[float], q: float) -> float | None:
    """Linear-interpolated percentile (``q`` in [0, 100]); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass(frozen=True)
class GroupRow:
    """One node's (or one model's) calls, summed."""

    name: str
    calls: int
    models: dict[str, int]
    input_tokens: int
    output_tokens: int
    cost_usd: float
    p50_ms: float | None
    p95_ms: float | None
    cache_rate: float
    batch_rate: float
    dedup_rate: float
    errors: int
    retries: int
    score: float | None
    scored: int
    flagged: int


@dataclass(frozen=True)
class PillarRow:
    pillar: str
    signals: int
    mean_difficulty: float | None
    mean_confidence: float | None
    local_only: int
    named_chosen: int


@dataclass(frozen=True)
class BudgetRow:
    run_id: str
    budget_usd: float
    spend_usd: float

    @property
    def share(self) -> float:
        return self.spend_usd / self.budget_usd if self.budget_usd else math.inf


@dataclass
class Report:
    """Every figure the HTML page shows."""

    title: str
    graphs: list[str]
    runs: list[RunRecord]
    calls: int
    spend_usd: float
    input_tokens: int
    output_tokens: int
    first: float | None
    last: float | None
    bucket_s: int
    spend_series: list[tuple[float, dict[str, float]]]
    spend_by_model: dict[str, float]
    nodes: list[GroupRow]
    models: list[GroupRow]
    pillars: list[PillarRow]
    reasons: list[tuple[str, int]]
    signal_counts: dict[str, int]
    feedback: list[tuple[str, int, float]]
    budgets: list[BudgetRow]
    run_costs: dict[str, tuple[int, float]] = field(default_factory=dict)

    @property
    def status_counts(self) -> dict[str, int]:
        return dict(Counter(run.status for run in self.runs))

    def rate(self, flag: str) -> float:
        """Share of all calls with ``flag`` (``cache_hit``, ``batched``, ``deduped``, ``error``)."""
        total = sum(row.calls for row in self.nodes)
        if not total:
            return 0.0
        counts = {"cache_hit": "cache_rate", "batched": "batch_rate", "deduped": "dedup_rate"}
        if flag == "error":
            return sum(row.errors for row in self.nodes) / total
        return sum(getattr(row, counts[flag]) * row.calls for row in self.nodes) / total


def _group(name: str, outcomes: Sequence[CallOutcome], key: str) -> GroupRow:
    calls = [o.call for o in outcomes]
    latencies = [c.latency_ms for c in calls if not c.cache_hit and c.error is None]
    scores = [o.score for o in outcomes if o.score is not None]
    n = len(calls)
    return GroupRow(
        name=name,
        calls=n,
        models=dict(Counter(c.model if key == "node" else (c.node or "(outside graph)") for c in calls).most_common()),
        input_tokens=sum(c.input_tokens for c in calls),
        output_tokens=sum(c.output_tokens for c in calls),
        cost_usd=math.fsum(c.cost_usd for c in calls),
        p50_ms=percentile(latencies, 50),
        p95_ms=percentile(latencies, 95),
        cache_rate=sum(c.cache_hit for c in calls) / n,
        batch_rate=sum(c.batched for c in calls) / n,
        dedup_rate=sum(c.deduped for c in calls) / n,
        errors=sum(c.error is not None for c in calls),
        retries=sum(c.retries for c in calls),
        score=statistics.fmean(scores) if scores else None,
        scored=len(scores),
        flagged=sum(o.failed for o in outcomes),
    )


def _pillars(calls: Sequence[CallRecord]) -> list[PillarRow]:
    seen: dict[str, list[dict]] = defaultdict(list)
    chosen_by: Counter[str] = Counter()
    for call in calls:
        for signal in call.signals:
            name = str(signal.get("pillar", "?"))
            seen[name].append(signal)
            if signal.get("model") and signal.get("model") == call.model:
                chosen_by[name] += 1
    rows = []
    for name, signals in sorted(seen.items(), key=lambda item: -len(item[1])):
        difficulty = [s["difficulty"] for s in signals if s.get("difficulty") is not None]
        confidence = [s["confidence"] for s in signals if s.get("confidence") is not None]
        rows.append(
            PillarRow(
                pillar=name,
                signals=len(signals),
                mean_difficulty=statistics.fmean(difficulty) if difficulty else None,
                mean_confidence=statistics.fmean(confidence) if confidence else None,
                local_only=sum(bool(s.get("local_only")) for s in signals),
                named_chosen=chosen_by[name],
            )
        )
    return rows


def _reason(reason: str) -> str:
    """Decision reasons grouped: numbers vary per call, the wording says which rule decided."""
    reason = re.sub(r"\(failed: .*\)$", "(after failures)", reason)
    return re.sub(r"\d+(?:\.\d+)?", "#", reason).strip() or "(no reason recorded)"


def _spend_series(calls: Sequence[CallRecord]) -> tuple[int, list[tuple[float, dict[str, float]]]]:
    if not calls:
        return BUCKETS_S[0], []
    first, last = min(c.started_at for c in calls), max(c.started_at for c in calls)
    bucket = next((size for size in BUCKETS_S if (last - first) / size <= 48), BUCKETS_S[-1])
    start = math.floor(first / bucket) * bucket
    series: dict[int, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for call in calls:
        series[int((call.started_at - start) // bucket)][call.model] += call.cost_usd
    count = int((last - start) // bucket) + 1
    return bucket, [(start + i * bucket, dict(series.get(i, {}))) for i in range(count)]


def build_report(store: TraceStore, *, graph: str | None = None, since: float | None = None) -> Report:
    """Aggregate a store (optionally one graph, or runs since a time) into a ``Report``."""
    runs = store.runs(graph, since=since)
    run_ids = {run.run_id for run in runs}
    calls = [c for c in store.calls(graph=graph, since=since) if c.run_id in run_ids or graph is None]
    feedback = store.feedback()
    outcomes = score_calls(calls, feedback, runs)
    by_node: dict[str, list[CallOutcome]] = defaultdict(list)
    by_model: dict[str, list[CallOutcome]] = defaultdict(list)
    signal_counts: Counter[str] = Counter()
    for outcome in outcomes:
        by_node[outcome.call.node or "(outside graph)"].append(outcome)
        by_model[outcome.call.model].append(outcome)
        signal_counts.update(outcome.signals)
    spend_by_model = {model: math.fsum(o.call.cost_usd for o in items) for model, items in by_model.items()}
    per_run: dict[str | None, list[float]] = defaultdict(list)
    for call in calls:
        per_run[call.run_id].append(call.cost_usd)
    run_costs = {run_id: (len(per_run[run_id]), math.fsum(per_run[run_id])) for run_id in run_ids}
    user_feedback: dict[str, list[float]] = defaultdict(list)
    for item in feedback:
        if item.source == "user" and item.run_id in run_ids:
            user_feedback[item.node or "(whole run)"].append(item.score)
    bucket, series = _spend_series(calls)
    return Report(
        title=f"graphroute traces — {store.path.name}",
        graphs=sorted({run.graph for run in runs}),
        runs=runs,
        calls=len(calls),
        spend_usd=math.fsum(c.cost_usd for c in calls),
        input_tokens=sum(c.input_tokens for c in calls),
        output_tokens=sum(c.output_tokens for c in calls),
        first=min((r.started_at for r in runs), default=None),
        last=max((r.ended_at or r.started_at for r in runs), default=None),
        bucket_s=bucket,
        spend_series=series,
        spend_by_model=dict(sorted(spend_by_model.items(), key=lambda item: -item[1])),
        nodes=sorted((_group(n, o, "node") for n, o in by_node.items()), key=lambda row: -row.cost_usd),
        models=sorted((_group(m, o, "model") for m, o in by_model.items()), key=lambda row: -row.cost_usd),
        pillars=_pillars(calls),
        reasons=Counter(_reason(c.reason) for c in calls).most_common(15),
        signal_counts=dict(signal_counts.most_common()),
        feedback=[(name, len(v), statistics.fmean(v)) for name, v in sorted(user_feedback.items())],
        budgets=[
            BudgetRow(run.run_id, run.budget_usd, run_costs.get(run.run_id, (0, 0.0))[1])
            for run in runs
            if run.budget_usd is not None
        ],
        run_costs=run_costs,
    )
