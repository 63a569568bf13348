"""One routed call: build the request, ask the router, call the chosen pool model, trace it.

Shared by the interception of unmodified node code and by ``RoutedChatModel``, so both
route, measure and record identically.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatResult

from graphroute.cache.scope import current_scope
from graphroute.errors import (
    RoutingError,
)
from graphroute.providers.resilience import (
    AllModelsFailedError,
    arun_with_fallbacks,
    run_with_fallbacks,
)
from graphroute.routing.prepared import (
    PreparedCall,
    aprepare,
    caller_params,
    node_from_metadata,
    prepare,
    redact,
    requested_model,
)

__all__ = [
    "PreparedCall",
    "agenerate",
    "aprepare",
    "astream",
    "caller_params",
    "generate",
    "node_from_metadata",
    "prepare",
    "redact",
    "requested_model",
    "stream",
    "tag",
]


def tag(result: ChatResult, call: PreparedCall) -> ChatResult:
    """Say on the answer itself which pool model produced it (``RoutedChatModel`` does).

    Intercepted calls are not tagged: an optimized app's messages must equal the original's.
    """
    for generation in result.generations:
        if isinstance(generation.message, AIMessage):
            generation.message.response_metadata["graphroute_model"] = call.model
    return result


def _traced_failure(call: PreparedCall, error: AllModelsFailedError | RoutingError) -> BaseException:
    """Trace a call no model could answer; return the error to raise (one message naming every model)."""
    final = call.final_error(error) if isinstance(error, AllModelsFailedError) else error
    call.finish(None, final)
    return final


def generate(
    call: PreparedCall,
    caller: BaseChatModel | None,
    messages: list[BaseMessage],
    stop: list[str] | None,
    run_manager: Any,
    kwargs: Mapping[str, Any],
) -> ChatResult:
    """Answer from a cache or a shared flight when the run has them on, else send the call."""
    scope = current_scope()
    if scope is None:
        return _send(call, caller, messages, stop, run_manager, kwargs)
    request = scope.layer.describe(call, caller, messages, stop, kwargs)
    send = lambda: _send(call, caller, messages, stop, run_manager, kwargs)  # noqa: E731
    return scope.layer.generate(scope, call, send, request, run_manager)


def _send(
    call: PreparedCall,
    caller: BaseChatModel | None,
    messages: list[BaseMessage],
    stop: list[str] | None,
    run_manager: Any,
    kwargs: Mapping[str, Any],
) -> ChatResult:
    """Send the call, with retries and fallbacks; trace it whatever happens."""

    def attempt(model: str) -> ChatResult:
        client = call.session.pool.client(model)
        return client._generate_with_cache(
            messages, stop=stop, run_manager=run_manager, **call.kwargs(caller, kwargs, model)
        )

    try:
        call.model, result = run_with_fallbacks(call.candidates(), attempt, policy=call.policy, attempts=call.attempts)
    except (AllModelsFailedError, RoutingError) as error:
        raise _traced_failure(call, error) from error.__cause__
    call.finish(result.generations[0].message if result.generations else None)
    return result


async def agenerate(
    call: PreparedCall,
    caller: BaseChatModel | None,
    messages: list[BaseMessage],
    stop: list[str] | None,
    run_manager: Any,
    kwargs: Mapping[str, Any],
) -> ChatResult:
    scope = current_scope()
    if scope is None:
        return await _asend(call, caller, messages, stop, run_manager, kwargs)
    request = scope.layer.describe(call, caller, messages, stop, kwargs)
    send = lambda: _asend(call, caller, messages, stop, run_manager, kwargs)  # noqa: E731
    return await scope.layer.agenerate(scope, call, send, request, run_manager)


async def _asend(
    call: PreparedCall,
    caller: BaseChatModel | None,
    messages: list[BaseMessage],
    stop: list[str] | None,
    run_manager: Any,
    kwargs: Mapping[str, Any],
) -> ChatResult:
    async def attempt(model: str) -> ChatResult:
        client = call.session.pool.client(model)
        return await client._agenerate_with_cache(
            messages, stop=stop, run_manager=run_manager, **call.kwargs(caller, kwargs, model)
        )

    try:
        call.model, result = await arun_with_fallbacks(
            call.candidates(), attempt, policy=call.policy, attempts=call.attempts
        )
    except (AllModelsFailedError, RoutingError) as error:
        raise _traced_failure(call, error) from error.__cause__
    call.finish(result.generations[0].message if result.generations else None)
    return result


def stream(
    call: PreparedCall,
    caller: BaseChatModel | None,
    input: Any,
    config: Any,
    stop: list[str] | None,
    kwargs: Mapping[str, Any],
) -> Iterator[Any]:
    """Fallbacks apply until the first chunk arrives; after that a failure ends the stream."""

    def attempt(model: str) -> tuple[Iterator[Any], Any]:
        chunks = iter(
            call.session.pool.client(model).stream(input, config, stop=stop, **call.kwargs(caller, kwargs, model))
        )
        return chunks, next(chunks, None)

    try:
        call.model, (chunks, first) = run_with_fallbacks(
            call.candidates(), attempt, policy=call.policy, attempts=call.attempts
        )
    except (AllModelsFailedError, RoutingError) as error:
        raise _traced_failure(call, error) from error.__cause__
    total: Any = first
    try:
        if first is not None:
            yield first
        for chunk in chunks:
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
    async def attempt(model: str) -> tuple[AsyncIterator[Any], Any]:
        client = call.session.pool.client(model)
        chunks = client.astream(input, config, stop=stop, **call.kwargs(caller, kwargs, model)).__aiter__()
        try:
            return chunks, await chunks.__anext__()
        except StopAsyncIteration:
            return chunks, None

    try:
        call.model, (chunks, first) = await arun_with_fallbacks(
            call.candidates(), attempt, policy=call.policy, attempts=call.attempts
        )
    except (AllModelsFailedError, RoutingError) as error:
        raise _traced_failure(call, error) from error.__cause__
    total: Any = first
    try:
        if first is not None:
            yield first
        async for chunk in chunks:
            total = chunk if total is None else total + chunk
            yield chunk
    except Exception as error:
        call.finish(total, error)
        raise call.translate(error) from error
    call.finish(total)
