"""What the trace store holds, as typed records: runs, calls, node executions, feedback.

Every row carries a global id (``call_id``, ``node_run_id``, ``feedback_id``; runs have their
``run_id``) so traces exported on one machine and imported on another never duplicate.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Literal


def new_id() -> str:
    """A globally unique row id: rows keep it when traces are exported and imported elsewhere."""
    return uuid.uuid4().hex


@dataclass(frozen=True)
class CallRecord:
    """One routed chat-model call.

    ``quality`` holds the automatic quality signals seen when the call finished (``"error"``,
    ``"refusal"``, ``"empty"``, ``"unparsable"``, ``"tool_call_failure"``; see
    ``graphroute.traces.quality``). ``prompt`` (JSON list of ``{role, content}``) and ``output``
    are kept when the caller records texts; ``request_hash`` identifies the same request
    answered by several models.
    """

    run_id: str | None
    node: str | None
    requested_model: str | None
    model: str
    reason: str = ""
    signals: list[dict[str, Any]] = field(default_factory=list)
    input_tokens: int = 0
    output_tokens: int = 0
    latency_ms: float = 0.0
    cost_usd: float = 0.0
    cache_hit: bool = False
    error: str | None = None
    started_at: float = field(default_factory=time.time)
    batched: bool = False
    deduped: bool = False
    retries: int = 0
    call_id: str = field(default_factory=new_id)
    request_hash: str | None = None
    prompt: str | None = None
    output: str | None = None
    quality: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class NodeRunRecord:
    """One execution of a graph node (``pushed``: started by a ``Send``)."""

    run_id: str | None
    node: str
    step: int | None = None
    pushed: bool = False
    started_at: float = field(default_factory=time.time)
    duration_ms: float = 0.0
    error: str | None = None
    cache_hit: bool = False
    node_run_id: str = field(default_factory=new_id)


@dataclass(frozen=True)
class RunRecord:
    run_id: str
    graph: str
    started_at: float
    ended_at: float | None
    status: str
    error: str | None
    metadata: dict[str, Any]
    plan: str | None = None
    budget_usd: float | None = None


FeedbackSource = Literal["user", "outcome"]


@dataclass(frozen=True)
class FeedbackRecord:
    """A score in [0, 1] for a run, a node of a run, one call, or one model's answer to a request.

    ``source="user"``: what ``graphroute.feedback`` writes. ``source="outcome"``: a known result,
    e.g. from an evaluation or benchmark, usually aimed at a ``call_id`` or ``request_hash`` and
    a ``model``.
    """

    run_id: str | None
    score: float
    node: str | None = None
    comment: str | None = None
    source: str = "user"
    created_at: float = field(default_factory=time.time)
    call_id: str | None = None
    request_hash: str | None = None
    model: str | None = None
    feedback_id: str = field(default_factory=new_id)
