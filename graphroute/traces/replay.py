"""Replay: what recorded runs would have cost, taken and scored under other plans.

For every recorded call a plan names a model (``ReplayPlan.model_for``); then

* **cost** is exact: the call's recorded tokens at that model's prices (cache hits and
  de-duplicated calls stay free). The ``recorded`` row is the plain sum of the traced costs.
* **latency** per run follows the recorded concurrency: calls whose recorded time spans overlap
  ran side by side, so a run takes the sum over such waves of their slowest call. A call kept
  on its recorded model keeps its recorded latency; a call moved to another model gets that
  model's recorded per-token figures (an *estimate*, marked ``~``).
* **quality** is exact where a known result exists for that model's answer to that request
  (trace feedback, automatic failures, shadow calls, an outcome file); otherwise it is
  *estimated* by a ``QualityEstimator`` and marked as such wherever it is shown. Quality is
  the mean success of all the plan's calls; when some have neither a known result nor an
  estimate there is no mean (``None``, counted in ``unscored_calls``), since the mean of the
  rest would pass a few scored calls off as the plan's figure. Whether a whole run would have
  succeeded depends on how the workflow combines its calls (all steps, k of n workers, a
  critic's retry), which the trace does not say; the workflow benchmark computes that itself
  from the same outcomes.

Usage::

    plans = [RecordedPlan(), load_plan("a.toml"), strategy("all-cloud", pool)]
    results = replay(store.calls(), plans, index=OutcomeIndex.build(store.calls(), store.feedback()))
"""

from __future__ import annotations

import math
import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

from graphroute.traces.outcomes import OutcomeIndex
from graphroute.traces.plans import RecordedPlan, ReplayPlan, recorded_messages
from graphroute.traces.records import CallRecord

QualityBasis = Literal["exact", "estimated", "unknown"]


class QualityEstimator(Protocol):
    """Estimates a model's success on a recorded call when no result is known (the success model)."""

    def estimate(self, call: CallRecord, model: str) -> float | None: ...


class EmpiricalEstimator:
    """Mean known score of the model on the same node, else on any node; None without data.

    The fallback estimator: it needs no embeddings, only the scores the traces and outcome
    file already hold. A fitted success model (``graphroute.pillars.semantic``) can replace it.
    ``from_index`` learns from outcomes and feedback only: automatic scores exist only for
    failures (a clean call has none), so their mean is 0 whatever the model's success rate, and
    one failed call would become the estimate of every call to that model.
    """

    def __init__(self, known: Iterable[tuple[str | None, str, float]]) -> None:
        by_node: dict[tuple[str | None, str], list[float]] = defaultdict(list)
        by_model: dict[str, list[float]] = defaultdict(list)
        for node, model, score in known:
            by_node[node, model].append(score)
            by_model[model].append(score)
        self._by_node = {key: statistics.fmean(values) for key, values in by_node.items()}
        self._by_model = {key: statistics.fmean(values) for key, values in by_model.items()}

    @classmethod
    def from_index(cls, calls: Sequence[CallRecord], index: OutcomeIndex, models: Iterable[str]) -> EmpiricalEstimator:
        models = list(dict.fromkeys(models))
        known = []
        for call in calls:
            for model in models:
                score = index.score(call, model, automatic=False)
                if score is not None:
                    known.append((call.node, model, score))
        return cls(known)

    def estimate(self, call: CallRecord, model: str) -> float | None:
        return self._by_node.get((call.node, model), self._by_model.get(model))


class SuccessModel(Protocol):
    """What ``SemanticPillar`` offers: per-model success probabilities for a prompt."""

    def estimates(self, text: str) -> dict[str, float]: ...


class SuccessModelEstimator:
    """Quality estimates from a fitted success model, read on each call's recorded prompt.

    ``models`` maps pool names to the success model's columns (``{"cloud": "gpt-4-1106-preview"}``):
    a pool model with no column, or a call recorded without its texts, goes to ``fallback``.

    Usage::

        estimator = SuccessModelEstimator(SemanticPillar("router-dir"), {"local": "mixtral"}, fallback=empirical)
    """

    def __init__(
        self, model: SuccessModel, models: Mapping[str, str], *, fallback: QualityEstimator | None = None
    ) -> None:
        self.model = model
        self.models = dict(models)
        self.fallback = fallback
        self._cache: dict[str, dict[str, float]] = {}

    def estimate(self, call: CallRecord, model: str) -> float | None:
        column = self.models.get(model)
        text = _last_user_text(call) if column else None
        if column is None or not text:
            return self.fallback.estimate(call, model) if self.fallback else None
        if text not in self._cache:
            self._cache[text] = self.model.estimates(text)
        return self._cache[text].get(column)


def _last_user_text(call: CallRecord) -> str:
    messages = recorded_messages(call)
    users = [m for m in messages if m.type == "human"] or messages
    return str(users[-1].content) if users else ""


class LatencyModel:
    """Per-model latency ``a + b · output_tokens`` fitted on the recorded calls of that model."""

    def __init__(self, calls: Iterable[CallRecord]) -> None:
        points: dict[str, list[tuple[int, float]]] = defaultdict(list)
        for call in calls:
            if not call.cache_hit and not call.deduped and call.error is None and call.latency_ms > 0:
                points[call.model].append((call.output_tokens, call.latency_ms))
        self.fits: dict[str, tuple[float, float]] = {model: _fit(pairs) for model, pairs in points.items()}

    def estimate(self, model: str, call: CallRecord) -> float | None:
        if model not in self.fits:
            return None
        base, per_token = self.fits[model]
        return base + per_token * call.output_tokens


def _fit(pairs: list[tuple[int, float]]) -> tuple[float, float]:
    xs, ys = [float(x) for x, _ in pairs], [y for _, y in pairs]
    if len(set(xs)) < 2:
        return 0.0, statistics.fmean(y / max(x, 1.0) for x, y in zip(xs, ys, strict=True))
    slope, intercept = statistics.linear_regression(xs, ys)
    if slope < 0 or intercept < 0:  # noise on few points: fall back to a pure per-token rate
        return 0.0, statistics.fmean(y / max(x, 1.0) for x, y in zip(xs, ys, strict=True))
    return intercept, slope


def waves(calls: Sequence[CallRecord]) -> list[list[CallRecord]]:
    """Calls grouped by overlapping recorded time spans: each group ran concurrently."""
    groups: list[list[CallRecord]] = []
    end = -math.inf
    for call in sorted(calls, key=lambda c: c.started_at):
        if groups and call.started_at < end:
            groups[-1].append(call)
        else:
            groups.append([call])
            end = -math.inf
        end = max(end, call.started_at + call.latency_ms / 1000)
    return groups


@dataclass(frozen=True)
class PlanResult:
    """One plan replayed over the recorded runs (one row of the replay table, one point of the plot).

    ``quality`` is None unless every call has a known or estimated score; ``unscored_calls``
    says how many had neither.
    """

    name: str
    description: str
    runs: int
    calls: int
    cost_usd: float
    recorded_cost_usd: float
    latency_s: float | None
    latency_estimated: bool
    quality: float | None
    quality_basis: QualityBasis
    quality_known_share: float
    cloud_share: float | None
    models: dict[str, int] = field(default_factory=dict)
    unscored_calls: int = 0

    @property
    def cost_ratio(self) -> float | None:
        """Cost relative to what was recorded (1.0 = same)."""
        return self.cost_usd / self.recorded_cost_usd if self.recorded_cost_usd else None


def empirical_estimator(
    calls: Sequence[CallRecord], plans: Sequence[ReplayPlan], index: OutcomeIndex
) -> EmpiricalEstimator:
    """The default estimator over every model the calls and the plans mention."""
    models = [*(call.model for call in calls), *(m for p in plans if p.pool is not None for m in p.pool.names)]
    return EmpiricalEstimator.from_index(calls, index, models)


def replay(
    calls: Sequence[CallRecord],
    plans: Sequence[ReplayPlan],
    *,
    index: OutcomeIndex | None = None,
    estimator: QualityEstimator | None = None,
    locality: Mapping[str, bool] | None = None,
) -> list[PlanResult]:
    """Each plan over the recorded calls, in the order given (see the module docstring).

    ``locality`` (model → is local) covers recorded models no plan pool defines; the plans'
    pools are consulted first.
    """
    index = index or OutcomeIndex.build(calls)
    is_local = dict(locality or {})
    for plan in plans:
        if plan.pool is not None:
            is_local.update({spec.name: spec.is_local for spec in plan.pool})
    estimator = estimator or empirical_estimator(calls, plans, index)
    latency = LatencyModel(calls)
    recorded = math.fsum(call.cost_usd for call in calls)
    return [_replay_one(plan, calls, index, estimator, latency, is_local, recorded) for plan in plans]


def _replay_one(
    plan: ReplayPlan,
    calls: Sequence[CallRecord],
    index: OutcomeIndex,
    estimator: QualityEstimator,
    latency: LatencyModel,
    is_local: Mapping[str, bool],
    recorded: float,
) -> PlanResult:
    chosen = {call.call_id: plan.model_for(call) for call in calls}
    costs, exact, estimated = [], [], []
    call_latency: dict[str, float] = {}
    latency_estimated = False
    for call in calls:
        model = chosen[call.call_id]
        if isinstance(plan, RecordedPlan) or plan.pool is None:
            costs.append(call.cost_usd)
        else:
            free = call.cache_hit or call.deduped
            costs.append(0.0 if free else plan.pool[model].cost(call.input_tokens, call.output_tokens))
        if model == call.model or call.cache_hit:
            call_latency[call.call_id] = call.latency_ms
        else:
            guess = latency.estimate(model, call)
            call_latency[call.call_id] = call.latency_ms if guess is None else guess
            latency_estimated = True
        known = index.score(call, model)
        if known is not None:
            exact.append(known)
        else:
            guess = estimator.estimate(call, model)
            if guess is not None:
                estimated.append(guess)
    by_run: dict[str | None, list[CallRecord]] = defaultdict(list)
    for call in calls:
        by_run[call.run_id].append(call)
    run_seconds = [
        sum(max(call_latency[c.call_id] for c in wave) for wave in waves(run_calls)) / 1000
        for run_calls in by_run.values()
    ]
    scores = exact + estimated
    unscored = len(calls) - len(scores)
    basis: QualityBasis = "unknown" if unscored or not scores else ("exact" if not estimated else "estimated")
    located = [is_local[model] for model in chosen.values() if model in is_local]
    return PlanResult(
        name=plan.name,
        description=str(getattr(plan, "description", "")),
        runs=len(by_run),
        calls=len(calls),
        cost_usd=math.fsum(costs),
        recorded_cost_usd=recorded,
        latency_s=statistics.fmean(run_seconds) if run_seconds else None,
        latency_estimated=latency_estimated,
        quality=statistics.fmean(scores) if scores and not unscored else None,
        quality_basis=basis,
        quality_known_share=len(exact) / len(calls) if calls else 0.0,
        cloud_share=(located.count(False) / len(located)) if located else None,
        models=dict(Counter(chosen.values()).most_common()),
        unscored_calls=unscored,
    )
