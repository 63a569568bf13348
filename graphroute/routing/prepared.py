"""A routed call before it is sent: its request, the router's decision, and how it is traced.

``prepare`` (and its async twin) builds the request from what the calling code gave, asks the
router (then the privacy guard) for a model, and returns a ``PreparedCall`` that knows its
candidates, retry policy and how to write its trace row; ``dispatch.py`` sends it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage

from graphroute.errors import (
    ContextWindowError,
    EndpointUnreachableError,
    GraphRouteError,
    ProviderError,
    RoutingError,
)
from graphroute.pillars.base import RouteRequest
from graphroute.providers.resilience import (
    AllModelsFailedError,
    Attempts,
    RetryPolicy,
)
from graphroute.routing import privacy
from graphroute.routing.base import RouteDecision
from graphroute.routing.learning import feed_back, outcome_of
from graphroute.routing.session import RoutingSession
from graphroute.routing.windows import fit_to_window
from graphroute.traces.quality import call_details
from graphroute.traces.store import CallRecord


def node_from_metadata(metadata: Mapping[str, Any]) -> str | None:
    """The calling node's id: ``inner`` at top level, ``parent:inner`` inside a subgraph.

    LangGraph puts the innermost node in ``langgraph_node`` and the whole path in
    ``langgraph_checkpoint_ns`` (``"parent:<task id>|inner:<task id>"``).
    """
    namespace = metadata.get("langgraph_checkpoint_ns") or metadata.get("checkpoint_ns") or ""
    segments = [segment.split(":", 1)[0] for segment in str(namespace).split("|") if segment]
    if len(segments) > 1:
        return ":".join(segments)
    node = metadata.get("langgraph_node")
    return str(node) if node is not None else (segments[0] if segments else None)


def requested_model(model: BaseChatModel) -> str | None:
    """The model id the calling code asked for (``ChatOpenAI(model="gpt-4o")`` → ``gpt-4o``)."""
    for attribute in ("model_name", "model", "model_id"):
        value = getattr(model, attribute, None)
        if isinstance(value, str):
            return value
    return None


def caller_params(model: BaseChatModel) -> dict[str, Any]:
    """Sampling parameters the calling code set, carried over to the chosen model."""
    max_tokens = getattr(model, "max_tokens", None) or getattr(model, "num_predict", None)
    return {"temperature": getattr(model, "temperature", None), "max_tokens": max_tokens}


def _secret_values(session: RoutingSession) -> list[str]:
    return [value for spec in session.pool if spec.api_key_env and (value := os.environ.get(spec.api_key_env))]


def redact(text: str, session: RoutingSession) -> str:
    """Remove every pool key's value from ``text`` (providers sometimes echo keys in errors)."""
    for secret in _secret_values(session):
        text = text.replace(secret, "[redacted]")
    return text


def _usage(message: BaseMessage | None) -> tuple[int, int]:
    usage = getattr(message, "usage_metadata", None) or {}
    return int(usage.get("input_tokens", 0)), int(usage.get("output_tokens", 0))


@dataclass
class PreparedCall:
    """A decided call, ready to send: the decision, its fallbacks, and how to trace the outcome.

    ``model`` starts as the router's choice and becomes the model that actually answered when
    a fallback had to step in. ``cache_hit`` / ``deduped`` / ``batched`` are set by the reuse
    layer (``cache/layer.py``) when the answer came from a cache or a shared flight (no tokens
    spent) or the call went out in a batch; ``note`` says so in the trace's reason.
    """

    session: RoutingSession
    request: RouteRequest
    decision: RouteDecision
    started: float
    wall_start: float
    model: str = ""
    attempts: Attempts = field(default_factory=Attempts)
    cache_hit: bool = False
    batched: bool = False
    deduped: bool = False
    note: str = ""

    def __post_init__(self) -> None:
        self.model = self.model or self.decision.model
        self.attempts.describe = lambda model, error: str(self.translate(error, model))

    @property
    def local_only(self) -> bool:
        return any(signal.local_only for signal in self.decision.signals)

    def candidates(self) -> list[str]:
        """The chosen model, then the router's and the pool's fallbacks; only local ones if private."""
        pool = self.session.pool
        ordered = [self.decision.model, *self.decision.fallbacks, *pool[self.decision.model].fallbacks]
        models = list(dict.fromkeys(ordered))
        if self.local_only:
            models = [model for model in models if pool[model].is_local]
            if not models:
                reasons = "; ".join(s.reason for s in self.decision.signals if s.local_only)
                local = [spec.name for spec in pool.local()]
                raise RoutingError(
                    f"this request must stay local ({reasons}) but its route offers no local model "
                    f"(pool's local models: {', '.join(local) or 'none'}); add a local model to the pool or as a "
                    "fallback, or, if this data may leave the machine, list it under [rules.privacy] allow "
                    "(or set enabled = false there)",
                    node=self.request.node,
                    run_id=self.session.run_id,
                )
        try:
            fit = fit_to_window(self.request, models, pool, local_only=self.local_only)
        except ContextWindowError as error:
            error.run_id = self.session.run_id
            raise
        if fit.note and fit.note not in self.note:
            self.note = f"{self.note}; {fit.note}" if self.note else fit.note
        return fit.models

    def policy(self, model: str) -> RetryPolicy:
        spec = self.session.pool[model]
        return RetryPolicy(max_retries=spec.max_retries, base_delay_s=spec.retry_delay_s)

    def explained(self) -> str:
        """The decision's reason, any note, and — when another model answered — why: each failed
        model with its (secret-free) error, so a fallback is never silent about its cause."""
        reason = self.decision.reason
        if self.note:
            reason += f"; {self.note}"
        if self.model != self.decision.model:
            reason += f"; fell back to {self.model!r}"
        if self.attempts.failures:
            reason += " (failed: " + "; ".join(f"{m}: {why}" for m, why in self.attempts.failures.items()) + ")"
        return reason

    def finish(self, message: BaseMessage | None, error: BaseException | None = None) -> None:
        """Trace the call, then tell the router how it went (``routing/learning.py``)."""
        input_tokens, output_tokens = (0, 0) if self.cache_hit or self.deduped else _usage(message)
        # an answer from a provider Batch API names its batch (providers/batch_api.py)
        sent_in_batch = "graphroute_batch_id" in (getattr(message, "response_metadata", None) or {})
        spec = self.session.pool[self.model]
        latency_ms = (time.perf_counter() - self.started) * 1000
        cost_usd = spec.cost(input_tokens, output_tokens)
        reason = self.explained()
        self.session.record(
            CallRecord(
                run_id=self.session.run_id,
                node=self.request.node,
                requested_model=self.request.requested_model,
                model=self.model,
                reason=redact(reason, self.session),
                signals=[asdict(signal) for signal in self.decision.signals],
                input_tokens=input_tokens,
                output_tokens=output_tokens,
                latency_ms=latency_ms,
                cost_usd=cost_usd,
                error=None if error is None else redact(f"{type(error).__name__}: {error}", self.session),
                started_at=self.wall_start,
                retries=self.attempts.retries,
                cache_hit=self.cache_hit,
                batched=self.batched or (sent_in_batch and not (self.cache_hit or self.deduped)),
                deduped=self.deduped,
                **call_details(self.request, message, error, redact=lambda text: redact(text, self.session)),
            )
        )
        feed_back(self, outcome_of(self, message, error, latency_ms=latency_ms, cost_usd=cost_usd))

    def translate(self, error: BaseException, model: str | None = None) -> BaseException:
        """Our own error type, naming the model and what to fix; never a key."""
        if isinstance(error, GraphRouteError):
            return error
        model = model or self.model
        spec = self.session.pool[model]
        name = type(error).__name__
        cause = redact(str(error), self.session)
        if "Connection" in name or "Connect" in name or "Timeout" in name:
            translated: ProviderError = EndpointUnreachableError(model, spec.base_url, f"{name}: {cause}")
        else:
            translated = ProviderError(f"model {model!r} failed: {name}: {cause}", model=model)
        translated.node = self.request.node
        translated.run_id = self.session.run_id
        return translated

    def final_error(self, error: AllModelsFailedError) -> BaseException:
        """One model tried: its own (translated) error. Several: one error naming each and why."""
        if len(self.attempts.errors) == 1 and len(self.attempts.failures) == 1:
            [(model, only)] = self.attempts.errors.items()
            return self.translate(only, model)
        return AllModelsFailedError(
            {model: redact(why, self.session) for model, why in error.failures.items()},
            node=self.request.node,
            run_id=self.session.run_id,
        )

    def kwargs(
        self, caller: BaseChatModel | None, kwargs: Mapping[str, Any], model: str | None = None
    ) -> dict[str, Any]:
        params = caller_params(caller) if caller is not None else {}
        adapted = self.session.pool.call_kwargs(model or self.model, **params)
        merged = {**adapted, **kwargs}
        if "extra_body" in adapted and "extra_body" in kwargs:
            merged["extra_body"] = {**adapted["extra_body"], **kwargs["extra_body"]}
        return merged


def prepare(
    session: RoutingSession,
    messages: Sequence[BaseMessage],
    metadata: Mapping[str, Any],
    *,
    requested: str | None,
    tools: Sequence[Mapping[str, Any]] = (),
) -> PreparedCall:
    request = _request(messages, metadata, requested, tools)
    # Whatever router decided, personal data stays local (routing/privacy.py).
    decision = privacy.guard(session.pool, request, session.router.route(request))
    return PreparedCall(session, request, decision, time.perf_counter(), time.time())


async def aprepare(
    session: RoutingSession,
    messages: Sequence[BaseMessage],
    metadata: Mapping[str, Any],
    *,
    requested: str | None,
    tools: Sequence[Mapping[str, Any]] = (),
) -> PreparedCall:
    """Async twin of ``prepare``: a router that does I/O (a judge model) does not block the loop."""
    request = _request(messages, metadata, requested, tools)
    decision = privacy.guard(session.pool, request, await session.router.aroute(request))
    return PreparedCall(session, request, decision, time.perf_counter(), time.time())


def _request(
    messages: Sequence[BaseMessage],
    metadata: Mapping[str, Any],
    requested: str | None,
    tools: Sequence[Mapping[str, Any]],
) -> RouteRequest:
    return RouteRequest(
        messages=list(messages),
        node=node_from_metadata(metadata),
        requested_model=requested,
        tools=tools,
        metadata=dict(metadata),
    )
