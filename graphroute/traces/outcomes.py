"""What is known about the quality of recorded calls: the read side the bandit and planner use.

A call's score in [0, 1] comes, most trusted first, from a known outcome aimed at it (an
evaluation or benchmark result: ``source="outcome"`` feedback, or an outcome file), from user
feedback on its node or its run (``graphroute.feedback``), or from its automatic signals (a
hard failure scores 0). A call with none of these has no score: the absence of a visible
failure is not evidence of success.

Usage::

    rates = success_rates(store)                      # {(node, model): SuccessRate}
    rates["research", "local"].mean                   # what a bandit arm or a plan reads
    index = OutcomeIndex.build(store.calls(), store.feedback(), extra=load_outcomes("out.jsonl"))
    index.score(call, "cloud")                        # a known result for another model, or None
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from graphroute.errors import ConfigError
from graphroute.graph.identity import enclosing
from graphroute.traces.quality import HARD_FAILURES
from graphroute.traces.records import CallRecord, FeedbackRecord, RunRecord
from graphroute.traces.store import TraceStore

ScoreBasis = Literal["outcome", "feedback", "auto", "unknown"]


@dataclass(frozen=True)
class CallOutcome:
    """One recorded call with its score (or None), where the score came from, and all its signals."""

    call: CallRecord
    score: float | None
    basis: ScoreBasis
    signals: tuple[str, ...]

    @property
    def failed(self) -> bool:
        return bool(HARD_FAILURES.intersection(self.signals))


@dataclass(frozen=True)
class SuccessRate:
    """Scored calls of one (node, model): ``mean`` is the empirical success rate."""

    trials: int
    total: float

    @property
    def mean(self) -> float:
        return self.total / self.trials if self.trials else 0.0


def _covers(feedback_node: str | None, call_node: str | None) -> bool:
    """Feedback on ``write_report`` covers ``write_report:draft``; on no node, the whole run."""
    if feedback_node is None:
        return True
    return call_node is not None and (call_node == feedback_node or call_node.startswith(feedback_node + ":"))


def derived_signals(calls: Sequence[CallRecord], runs: Iterable[RunRecord]) -> dict[str, tuple[str, ...]]:
    """Every call's signals, with those only hindsight shows added (call_id → signals).

    ``tool_call_failure`` goes to the call before one whose request carries a failed tool result
    (same run and node); ``downstream_failure`` to the successful calls of a failed run that
    started before its first failing call (or all of them when no call failed).
    """
    signals = {call.call_id: list(call.quality) for call in calls}
    for call in calls:
        if call.error and "error" not in signals[call.call_id]:
            signals[call.call_id].insert(0, "error")
    previous: dict[tuple[str | None, str | None], str] = {}
    first_failure: dict[str | None, float] = {}
    for call in sorted(calls, key=lambda c: c.started_at):
        key = (call.run_id, call.node)
        if "tool_error_input" in call.quality and key in previous:
            blamed = signals[previous[key]]
            if "tool_call_failure" not in blamed:
                blamed.append("tool_call_failure")
        previous[key] = call.call_id
        if call.error and call.run_id not in first_failure:
            first_failure[call.run_id] = call.started_at
    failed_runs = {run.run_id for run in runs if run.status == "error"}
    for call in calls:
        before_failure = call.started_at < first_failure.get(call.run_id, float("inf"))
        if call.run_id in failed_runs and not call.error and before_failure:
            signals[call.call_id].append("downstream_failure")
    return {call_id: tuple(values) for call_id, values in signals.items()}


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values)


def score_calls(
    calls: Sequence[CallRecord], feedback: Iterable[FeedbackRecord], runs: Iterable[RunRecord] = ()
) -> list[CallOutcome]:
    """The score and basis of each call's own answer (see the module docstring for the order)."""
    by_call: dict[tuple[str, str], list[FeedbackRecord]] = defaultdict(list)
    by_hash: dict[tuple[str, str], list[float]] = defaultdict(list)
    by_run: dict[str | None, list[FeedbackRecord]] = defaultdict(list)
    for item in feedback:
        if item.call_id:
            by_call[item.call_id, item.model or ""].append(item)
        elif item.request_hash and item.model:
            if item.source == "outcome":
                by_hash[item.request_hash, item.model].append(item.score)
        else:
            by_run[item.run_id].append(item)
    signals = derived_signals(calls, runs)
    outcomes = []
    for call in calls:
        aimed = [*by_call.get((call.call_id, ""), []), *by_call.get((call.call_id, call.model), [])]
        aimed += [
            f for f in by_run.get(call.run_id, []) if _covers(f.node, call.node) and f.model in (None, call.model)
        ]
        known = [f.score for f in aimed if f.source == "outcome" and (f.call_id or f.node)]
        known = known or by_hash.get((call.request_hash or "", call.model), [])
        known = known or [f.score for f in aimed if f.source == "outcome"]
        given = [f.score for f in aimed if f.source != "outcome" and (f.call_id or f.node)]
        given = given or [f.score for f in aimed if f.source != "outcome"]
        score: float | None
        basis: ScoreBasis
        if known:
            score, basis = _mean(known), "outcome"
        elif given:
            score, basis = _mean(given), "feedback"
        elif HARD_FAILURES.intersection(signals[call.call_id]):
            score, basis = 0.0, "auto"
        else:
            score, basis = None, "unknown"
        outcomes.append(CallOutcome(call, score, basis, signals[call.call_id]))
    return outcomes


def call_outcomes(
    store: TraceStore,
    *,
    run_id: str | None = None,
    node: str | None = None,
    model: str | None = None,
    since: float | None = None,
) -> list[CallOutcome]:
    """Scored calls from a trace store, filtered like ``TraceStore.calls``."""
    calls = store.calls(run_id, node, model=model, since=since)
    run_ids = {call.run_id for call in calls}
    runs = [run for run in store.runs() if run.run_id in run_ids]
    feedback = [item for item in store.feedback() if item.run_id in run_ids or item.run_id is None]
    return score_calls(calls, feedback, runs)


def success_rates(
    store: TraceStore, *, node: str | None = None, since: float | None = None
) -> dict[tuple[str | None, str], SuccessRate]:
    """Per (node, model): how many calls have a score and their mean. Unscored calls are left out."""
    totals: dict[tuple[str | None, str], list[float]] = defaultdict(list)
    for outcome in call_outcomes(store, node=node, since=since):
        if outcome.score is not None:
            totals[outcome.call.node, outcome.call.model].append(outcome.score)
    return {key: SuccessRate(len(scores), sum(scores)) for key, scores in totals.items()}


class OutcomeIndex:
    """Known results per (call, model): what replay calls *exact* quality.

    Holds each recorded call's own score for its own model, other recorded answers to the same
    request (shadow or exploration calls) and outcome rows aimed at other models, from the
    store or from an outcome file.

    Automatic scores (a hard failure scores 0) are kept apart: only failures ever get one, so
    they are one-sided evidence. They stay the known result of the call that failed, and of
    another model's answer to the same request, but never of a *different* call's own answer
    (that call did not fail) nor, with ``automatic=False``, of anything a mean is taken over.
    """

    def __init__(self) -> None:
        self._by_call: dict[tuple[str, str], list[float]] = defaultdict(list)
        self._by_hash: dict[tuple[str, str], list[float]] = defaultdict(list)
        self._by_node: dict[tuple[str | None, str, str], list[float]] = defaultdict(list)
        self._auto_by_call: dict[tuple[str, str], list[float]] = defaultdict(list)
        self._auto_by_hash: dict[tuple[str, str], list[float]] = defaultdict(list)

    @classmethod
    def build(
        cls,
        calls: Sequence[CallRecord],
        feedback: Iterable[FeedbackRecord] = (),
        runs: Iterable[RunRecord] = (),
        *,
        extra: Iterable[FeedbackRecord] = (),
    ) -> OutcomeIndex:
        index = cls()
        rows = [*feedback, *extra]
        recorded_model = {call.call_id: call.model for call in calls}
        for item in rows:
            if item.source != "outcome":
                continue
            model = item.model or recorded_model.get(item.call_id or "")
            if model is None:
                continue
            if item.call_id:
                if model != recorded_model.get(item.call_id):  # own answers are scored below
                    index._by_call[item.call_id, model].append(item.score)
            elif item.request_hash:
                index._by_hash[item.request_hash, model].append(item.score)
            elif item.run_id and item.node:
                index._by_node[item.run_id, item.node, model].append(item.score)
        stated = set(index._by_hash)
        for outcome in score_calls(calls, rows, runs):
            if outcome.score is None:
                continue
            automatic = outcome.basis == "auto"
            by_call, by_hash = (
                (index._auto_by_call, index._auto_by_hash) if automatic else (index._by_call, index._by_hash)
            )
            by_call[outcome.call.call_id, outcome.call.model].append(outcome.score)
            key = (outcome.call.request_hash or "", outcome.call.model)
            if outcome.call.request_hash and key not in stated:  # another recorded answer to the same request
                by_hash[key].append(outcome.score)
        return index

    def own_score(self, call: CallRecord) -> float | None:
        """The score of the recorded answer itself (not of other answers to the same request)."""
        key = (call.call_id, call.model)
        scores = self._by_call.get(key) or self._auto_by_call.get(key)
        return _mean(scores) if scores else None

    def score(self, call: CallRecord, model: str, *, automatic: bool = True) -> float | None:
        """The known score of ``model``'s answer to this call's request, or None.

        ``automatic=False`` leaves automatic failure scores out: a mean over them (an estimator's)
        reads 0 whatever the model's real success rate, as clean calls never get one.
        """
        scores = self._by_call.get((call.call_id, model))
        if not scores and automatic:
            scores = self._auto_by_call.get((call.call_id, model))
        if not scores and call.request_hash:
            scores = self._by_hash.get((call.request_hash, model), [])
            if automatic and model != call.model:  # this call's own answer showed no failure: not borrowed
                scores = scores + self._auto_by_hash.get((call.request_hash, model), [])
        if not scores:  # scored by node: the call's own, else the nearest subgraph around it
            by_node = (self._by_node.get((call.run_id, node, model)) for node in enclosing(call.node))
            scores = next(filter(None, by_node), None)
        return _mean(scores) if scores else None


def load_outcomes(path: Path | str) -> list[FeedbackRecord]:
    """Read an outcome file: JSON lines of ``{score, model, call_id | request_hash | run_id+node}``.

    ``score`` is in [0, 1] (true/false accepted); ``model`` may be left out for a ``call_id``
    (the model that made the call). Lines that are blank or start with ``#`` are skipped.
    """
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise ConfigError("outcome file not found", path=path) from None
    records = []
    for number, line in enumerate(lines, start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        where = f"line {number}"
        try:
            row = json.loads(line)
        except ValueError as error:
            raise ConfigError(f"not valid JSON ({error})", path=path, entry=where) from None
        if not isinstance(row, dict) or "score" not in row:
            raise ConfigError('each line needs an object with a "score"', path=path, entry=where)
        score = float(row["score"])
        if not 0.0 <= score <= 1.0:
            raise ConfigError(f"score must be in [0, 1], got {row['score']!r}", path=path, entry=where)
        if not (row.get("call_id") or row.get("request_hash") or (row.get("run_id") and row.get("node"))):
            raise ConfigError("say which call: call_id, request_hash, or run_id and node", path=path, entry=where)
        if not row.get("call_id") and not row.get("model"):
            raise ConfigError('"model" is required unless the line names a call_id', path=path, entry=where)
        records.append(
            FeedbackRecord(
                run_id=row.get("run_id"),
                score=score,
                node=row.get("node"),
                comment=row.get("comment"),
                source="outcome",
                call_id=row.get("call_id"),
                request_hash=row.get("request_hash"),
                model=row.get("model"),
            )
        )
    return records
