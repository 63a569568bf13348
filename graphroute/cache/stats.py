"""Counting what caching and batching saved in one run, and reading the same from the traces.

``CacheStats`` lives on ``app.last_run`` and is updated as the run goes (thread-safe: Send
workers finish concurrently). ``trace_stats`` recomputes the durable part from the trace
database, where each call row says ``cache_hit`` / ``batched`` / ``deduped`` and each node row
says ``cache_hit``.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field, fields
from typing import Any


@dataclass
class CacheStats:
    """What one run reused.

    ``node_hits`` / ``node_misses``: node executions served from / not found in the node cache;
    ``response_hits`` (of which ``semantic_hits`` near-duplicates) / ``response_misses``: model
    calls answered by / not found in the response cache; ``deduped``: calls that waited for an
    identical call in flight instead of sending their own; ``batched``: calls sent in a batch
    with at least one other request.
    """

    node_hits: int = 0
    node_misses: int = 0
    response_hits: int = 0
    semantic_hits: int = 0
    response_misses: int = 0
    deduped: int = 0
    batched: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, **counts: int) -> None:
        with self._lock:
            for name, count in counts.items():
                setattr(self, name, getattr(self, name) + count)

    @property
    def hits(self) -> int:
        return self.node_hits + self.response_hits

    @property
    def misses(self) -> int:
        return self.node_misses + self.response_misses

    def as_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self) if not f.name.startswith("_")}


def trace_stats(store: Any, run_id: str) -> dict[str, int]:
    """Hits, deduplicated and batched calls of a recorded run, from the trace database.

    Misses of the node cache are not stored as such (a node that ran is a plain node row), so
    only ``app.last_run.cache`` has them; here ``model_calls_sent`` counts calls that went to a
    provider.
    """
    calls = store.calls(run_id=run_id)
    node_runs = store.node_runs(run_id=run_id)
    return {
        "node_hits": sum(1 for row in node_runs if row.cache_hit),
        "nodes_run": sum(1 for row in node_runs if not row.cache_hit),
        "response_hits": sum(1 for call in calls if call.cache_hit),
        "deduped": sum(1 for call in calls if call.deduped),
        "batched": sum(1 for call in calls if call.batched),
        "model_calls_sent": sum(1 for call in calls if not (call.cache_hit or call.deduped)),
    }
