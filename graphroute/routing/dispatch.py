"""One routed call: build the request, ask the router, call the chosen pool model, trace it.

Shared by the interception of unmodified node code and by ``RoutedChatModel``, so both
route, measure and record identically.
"""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatResult

from graphroute.errors import EndpointUnreachableError, GraphRouteError, ProviderError
from graphroute.pillars.base import RouteRequest
from graphroute.routing.base import RouteDecision
from graphroute.routing.session import RoutingSession
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
    """A decided call, ready to send: the decision, the target client and its kwargs."""

    session: RoutingSession
    request: RouteRequest
    decision: RouteDecision
    started: float
    wall_start: float

    @property
    def model(self) -> str:
        return self.decision.model

    def client(self) -> BaseChatModel:
        try:
            return self.session.pool.client(self.model)
        except GraphRouteError as error:
            self.finish(None, error)
            raise

    def finish(self, message: BaseMessage | None, error: BaseException | None = None) -> None:
        input_tokens, output_tokens = _usage(message)
        spec = self.session.pool[self.model]
        self.session.record(
            CallRecord(
                run_id=self.session.run_id,
                node=self.request.node,
                requested_model=self.request.requested_model,
                model=self.model,
                reason=self.decision.reason,
                signals=[asdict(signal) for signal in self.decision.signals],
                input_tokens=input_tokens,
                output_tokens=output_tokens,
                latency_ms=(time.perf_counter() - self.started) * 1000,
                cost_usd=spec.cost(input_tokens, output_tokens),
                error=None if error is None else redact(f"{type(error).__name__}: {error}", self.session),
                started_at=self.wall_start,
            )
        )

    def translate(self, error: Exception) -> Exception:
        """Our own error type, naming the model and what to fix; never a key."""
        if isinstance(error, GraphRouteError):
            return error
        spec = self.session.pool[self.model]
        name = type(error).__name__
        cause = redact(str(error), self.session)
        if "Connection" in name or "Connect" in name or "Timeout" in name:
            translated: ProviderError = EndpointUnreachableError(self.model, spec.base_url, f"{name}: {cause}")
        else:
            translated = ProviderError(f"model {self.model!r} failed: {name}: {cause}", model=self.model)
        translated.node = self.request.node
        translated.run_id = self.session.run_id
        return translated

    def kwargs(self, caller: BaseChatModel | None, kwargs: Mapping[str, Any]) -> dict[str, Any]:
        params = caller_params(caller) if caller is not None else {}
        adapted = self.session.pool.call_kwargs(self.model, **params)
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
    request = RouteRequest(
        messages=list(messages),
        node=node_from_metadata(metadata),
        requested_model=requested,
        tools=tools,
        metadata=dict(metadata),
    )
    decision = session.router.route(request)
    return PreparedCall(session, request, decision, time.perf_counter(), time.time())


def _tag(result: ChatResult, call: PreparedCall) -> ChatResult:
    """Say on the answer itself which pool model produced it."""
    for generation in result.generations:
        if isinstance(generation.message, AIMessage):
            generation.message.response_metadata["graphroute_model"] = call.model
    return result


def generate(
    call: PreparedCall,
    caller: BaseChatModel | None,
    messages: list[BaseMessage],
    stop: list[str] | None,
    run_manager: Any,
    kwargs: Mapping[str, Any],
) -> ChatResult:
    client = call.client()
    try:
        result = client._generate_with_cache(
            messages, stop=stop, run_manager=run_manager, **call.kwargs(caller, kwargs)
        )
    except Exception as error:
        call.finish(None, error)
        raise call.translate(error) from error
    call.finish(result.generations[0].message if result.generations else None)
    return _tag(result, call)


async def agenerate(
    call: PreparedCall,
    caller: BaseChatModel | None,
    messages: list[BaseMessage],
    stop: list[str] | None,
    run_manager: Any,
    kwargs: Mapping[str, Any],
) -> ChatResult:
    client = call.client()
    try:
        result = await client._agenerate_with_cache(
            messages, stop=stop, run_manager=run_manager, **call.kwargs(caller, kwargs)
        )
    except Exception as error:
        call.finish(None, error)
        raise call.translate(error) from error
    call.finish(result.generations[0].message if result.generations else None)
    return _tag(result, call)


def stream(
    call: PreparedCall,
    caller: BaseChatModel | None,
    input: Any,
    config: Any,
    stop: list[str] | None,
    kwargs: Mapping[str, Any],
) -> Iterator[Any]:
    client = call.client()
    total: Any = None
    try:
        for chunk in client.stream(input, config, stop=stop, **call.kwargs(caller, kwargs)):
            total = chunk if total is None else total + chunk
            yield chunk
    except Exception as error:
        call.finish(total, error)
        raise call.translate(error) from error
    call.finish(total)


async def astream(
    call: PreparedCall,
    caller: BaseChatModel | None,
    input: Any,
    config: Any,
    stop: list[str] | None,
    kwargs: Mapping[str, Any],
) -> AsyncIterator[Any]:
    client = call.client()
    total: Any = None
    try:
        async for chunk in client.astream(input, config, stop=stop, **call.kwargs(caller, kwargs)):
            total = chunk if total is None else total + chunk
            yield chunk
    except Exception as error:
        call.finish(total, error)
        raise call.translate(error) from error
    call.finish(total)
