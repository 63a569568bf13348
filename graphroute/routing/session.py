"""What a routed call needs to know about the run it belongs to, carried in a context variable.

LangGraph copies the context into every task (threads and asyncio tasks alike), so a session
set around ``app.invoke`` is visible inside every node, Send worker and subgraph of that run,
and invisible to unrelated code running at the same time.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field

from graphroute.providers.pool import ModelPool
from graphroute.routing.base import Router
from graphroute.traces.store import CallRecord, TraceStore


@dataclass
class RoutingSession:
    """The pool, router and trace destination of one run (or of one ``RoutedChatModel``)."""

    pool: ModelPool
    router: Router
    store: TraceStore | None = None
    run_id: str | None = None
    calls: list[CallRecord] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def record(self, call: CallRecord) -> None:
        """Keep the call in memory and write it through at once: a later failure loses nothing."""
        with self._lock:
            self.calls.append(call)
        if self.store is not None:
            self.store.record_call(call)


_current: ContextVar[RoutingSession | None] = ContextVar("graphroute_session", default=None)


def current_session() -> RoutingSession | None:
    return _current.get()


@contextmanager
def active_session(session: RoutingSession) -> Iterator[RoutingSession]:
    token = _current.set(session)
    try:
        yield session
    finally:
        _current.reset(token)
