"""The run a cache lookup or a model call belongs to, carried in a context variable.

LangGraph looks the node cache up from the run's own thread (or task) and copies the context
into every node task, so the scope set around ``app.invoke`` reaches the node cache backend and
every routed model call of that run — and no unrelated code running at the same time.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from graphroute.cache.stats import CacheStats
from graphroute.traces.records import NodeRunRecord

if TYPE_CHECKING:
    from graphroute.cache.layer import CacheLayer
    from graphroute.traces.store import TraceStore


@dataclass
class RunScope:
    """One run's view of the app's caches and batcher, and where its hits are recorded."""

    layer: CacheLayer
    stats: CacheStats
    store: TraceStore | None = None
    run_id: str | None = None

    def node_lookups(self, keys: Sequence[Any], found: Mapping[Any, Any], elapsed_ms: float) -> None:
        """Count hits and misses; a hit becomes a ``node_runs`` row with ``cache_hit`` set.

        A hit runs no node code, so LangGraph reports no node start or end for it: without this
        row a cached node would simply be missing from the trace.
        """
        hits = [key for key in keys if (tuple(key[0]), key[1]) in found]
        self.stats.add(node_hits=len(hits), node_misses=len(keys) - len(hits))
        if self.store is None:
            return
        share = elapsed_ms / max(len(keys), 1)
        for namespace, _ in hits:
            node = self.layer.node_id(tuple(namespace))
            self.store.record_node_run(NodeRunRecord(run_id=self.run_id, node=node, duration_ms=share, cache_hit=True))


_current: ContextVar[RunScope | None] = ContextVar("graphroute_cache_scope", default=None)


def current_scope() -> RunScope | None:
    return _current.get()


@contextmanager
def active_scope(scope: RunScope) -> Iterator[RunScope]:
    token = _current.set(scope)
    try:
        yield scope
    finally:
        _current.reset(token)
