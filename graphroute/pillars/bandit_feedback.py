"""The bandit learns from feedback and known outcomes that arrive after the call.

When a call finishes, dispatch tells the router at once what it can see (an error, a refusal,
the cost); whether the answer was *right* is often known only later — a user's
``graphroute.feedback(run_id, score, node=...)``, or an evaluation's outcome rows. Those sit in
the trace store beside the calls. ``learn_from_feedback`` reads them and credits each scored
call's arm: the call's trace keeps the bandit's context (``node|bucket``) in its signals, so
the evidence lands on the arm that made the choice.

Usage::

    bandit = BanditPillar(store="bandit.sqlite")
    seen = learn_from_feedback(bandit, traces)              # everything so far
    seen = learn_from_feedback(bandit, traces, since=seen)  # later: only what is new
"""

from __future__ import annotations

from graphroute.pillars.bandit import BanditPillar, Outcome
from graphroute.traces.records import CallRecord, FeedbackRecord
from graphroute.traces.store import TraceStore


def bandit_context(call: CallRecord, pillar: str = "bandit") -> str | None:
    """The arm set the bandit chose from for this call, as recorded in its signals."""
    for signal in call.signals:
        if signal.get("pillar") == pillar and signal.get("context"):
            return str(signal["context"])
    return None


def _targets(store: TraceStore, record: FeedbackRecord) -> list[CallRecord]:
    """The calls a feedback record speaks of: one call, a node of a run, or a whole run."""
    if record.call_id is not None:
        calls = [call for call in store.calls(run_id=record.run_id) if call.call_id == record.call_id]
    elif record.request_hash is not None:
        calls = store.calls(request_hash=record.request_hash)
    elif record.run_id is not None:
        calls = store.calls(run_id=record.run_id, node=record.node)
    else:
        return []
    return [call for call in calls if record.model is None or call.model == record.model]


def learn_from_feedback(bandit: BanditPillar, store: TraceStore, *, since: float | None = None) -> float | None:
    """Credit the bandit's arms with every score given after ``since``; returns the newest time seen.

    A score is the answer's quality in [0, 1]; the reward also charges the call's cost, as the
    bandit's own rewards do. Calls the bandit did not choose (no bandit context) are skipped.
    The store is asked only for rows newer than ``since``: reading again costs what is new,
    not the whole feedback table.
    """
    newest = since
    for record in store.feedback(since=since):
        newest = record.created_at if newest is None else max(newest, record.created_at)
        for call in _targets(store, record):
            context = bandit_context(call, bandit.name)
            if context is None or call.error is not None:
                continue
            reward = bandit.reward(Outcome(quality=record.score, cost_usd=call.cost_usd))
            bandit.update(context, reward, model=call.model)
    return newest
