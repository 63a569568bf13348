"""Records every node execution of an optimized run into the trace store.

A LangChain callback handler, added to the run's config: LangGraph reports each node task as a
chain run whose name equals ``metadata["langgraph_node"]``. Node executions, not only model
calls, are what graph profiles learn branch probabilities, loop counts and fan-out widths from.
"""

from __future__ import annotations

import threading
import time
from typing import Any
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler

from graphroute.routing.prepared import node_from_metadata
from graphroute.traces.store import NodeRunRecord, TraceStore


class NodeRunRecorder(BaseCallbackHandler):
    """Writes a ``node_runs`` row when each node task of the run ends (or fails)."""

    run_inline = True  # callbacks run in the node's own thread: timing stays accurate

    def __init__(self, store: TraceStore, run_id: str) -> None:
        self.store = store
        self.run_id = run_id
        self._open: dict[UUID, tuple[str, int | None, bool, float, float]] = {}
        self._lock = threading.Lock()

    def on_chain_start(
        self, serialized: Any, inputs: Any, *, run_id: UUID, metadata: dict[str, Any] | None = None, **kwargs: Any
    ) -> None:
        metadata = metadata or {}
        if kwargs.get("name") is None or metadata.get("langgraph_node") != kwargs.get("name"):
            return
        node = node_from_metadata(metadata) or str(kwargs["name"])
        pushed = "__pregel_push" in (metadata.get("langgraph_triggers") or ())
        with self._lock:
            self._open[run_id] = (node, metadata.get("langgraph_step"), pushed, time.time(), time.perf_counter())

    def _close(self, run_id: UUID, error: BaseException | None) -> None:
        with self._lock:
            opened = self._open.pop(run_id, None)
        if opened is None:
            return
        node, step, pushed, wall, started = opened
        self.store.record_node_run(
            NodeRunRecord(
                run_id=self.run_id,
                node=node,
                step=step,
                pushed=pushed,
                started_at=wall,
                duration_ms=(time.perf_counter() - started) * 1000,
                error=None if error is None else f"{type(error).__name__}: {error}",
            )
        )

    def on_chain_end(self, outputs: Any, *, run_id: UUID, **kwargs: Any) -> None:
        self._close(run_id, None)

    def on_chain_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self._close(run_id, error)
