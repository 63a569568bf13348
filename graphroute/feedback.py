"""``graphroute.feedback``: tell graphroute how good a run (or one node of it) was.

Scores land in the trace store beside the run's calls; the bandit and the planner read them
through ``graphroute.traces.outcomes`` (``success_rates``, ``call_outcomes``), and preference
export ranks answers by them. Usage::

    result = app.invoke({"question": "..."})
    graphroute.feedback(app.last_run.run_id, 1.0)                       # the whole run was good
    graphroute.feedback(app.last_run.run_id, 0.0, node="write_report",   # ...but not its report
                        comment="missed the second half of the question")
"""

from __future__ import annotations

import math
from pathlib import Path

from graphroute.errors import ConfigError
from graphroute.traces.records import FeedbackRecord
from graphroute.traces.store import TraceStore


def _checked_score(score: float | bool) -> float:
    if isinstance(score, bool):
        return 1.0 if score else 0.0
    try:
        value = float(score)
    except (TypeError, ValueError):
        raise ConfigError(f"feedback score must be a number in [0, 1] or a bool, got {score!r}") from None
    if math.isnan(value) or not 0.0 <= value <= 1.0:
        raise ConfigError(f"feedback score must be in [0, 1] (1 = good), got {score!r}")
    return value


def _check_node(store: TraceStore, run_id: str, node: str) -> None:
    """A node name must be one the run executed (a subgraph's own name covers its inner nodes)."""
    seen = {call.node for call in store.calls(run_id) if call.node} | {run.node for run in store.node_runs(run_id)}
    if not seen:
        return  # nothing recorded per node (e.g. a run that failed at once): accept the name as given
    if not any(name == node or name.startswith(node + ":") for name in seen):
        raise ConfigError(f"run {run_id!r} has no node {node!r}; its nodes are: {', '.join(sorted(seen))}")


def feedback(
    run_id: str,
    score: float | bool,
    node: str | None = None,
    comment: str | None = None,
    *,
    traces: TraceStore | Path | str | None = None,
) -> FeedbackRecord:
    """Record a score in [0, 1] (1 = good; ``True``/``False`` accepted) for a run or one of its nodes.

    ``traces``: the store the run was recorded in (a ``TraceStore``, a path that exists, or a
    ``postgresql://`` URL); default ``<data dir>/traces.sqlite``, where ``optimize`` records by
    default. Returns the stored record.
    """
    value = _checked_score(score)
    from graphroute.scaleout.factory import open_existing_trace_store

    store = open_existing_trace_store(traces)  # never an empty database made up for a mistyped path
    try:
        if store.run(run_id) is None:
            raise ConfigError(
                f"unknown run id {run_id!r} in {store.path}; use app.last_run.run_id of an optimized app, "
                "or pass traces= the store that recorded it"
            )
        if node is not None:
            _check_node(store, run_id, node)
        record = FeedbackRecord(run_id=run_id, score=value, node=node, comment=comment, source="user")
        store.record_feedback(record)
    finally:
        if store is not traces:
            store.close()
    return record
