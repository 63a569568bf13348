"""The one interception point: how unmodified node code gets routed.

While an optimized app runs, four methods of ``langchain_core``'s ``BaseChatModel`` are
replaced: ``_generate_with_cache`` and ``_agenerate_with_cache`` (the path of ``invoke``,
``ainvoke``, ``batch`` and LangGraph's message streaming) and ``stream`` / ``astream``.
Each replacement does nothing unless a ``RoutingSession`` is active in the *current context*
— i.e. the call was made from inside an optimized run — in which case the call is sent to
the pool model the router chooses. The calling code's messages, tools, stop words and
callbacks are passed through unchanged; its temperature and max tokens are carried over.

Installation is reference-counted: the first concurrent run installs, the last one restores
the originals, so nothing stays patched after the call returns. Pool clients, and models
that route themselves (``RoutedChatModel``), are never re-routed.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage
from langchain_core.outputs import ChatResult
from langchain_core.runnables.config import ensure_config

from graphroute.providers.base import is_pool_client
from graphroute.routing import dispatch
from graphroute.routing.session import RoutingSession, current_session

_originals: dict[str, Any] = {
    name: getattr(BaseChatModel, name)
    for name in ("_generate_with_cache", "_agenerate_with_cache", "stream", "astream")
}
_install_lock = threading.Lock()
_install_count = 0


def _session_for(model: BaseChatModel) -> RoutingSession | None:
    session = current_session()
    if session is None or is_pool_client(model):
        return None
    if getattr(type(model), "_graphroute_routes_itself", False):
        return None
    return session


def _tools(kwargs: dict[str, Any]) -> list[Any]:
    return list(kwargs.get("tools") or [])


def _metadata(run_manager: Any) -> dict[str, Any]:
    return dict(getattr(run_manager, "metadata", None) or {})


def _routed_generate(
    self: BaseChatModel,
    messages: list[BaseMessage],
    stop: list[str] | None = None,
    run_manager: Any = None,
    **kwargs: Any,
) -> ChatResult:
    session = _session_for(self)
    if session is None:
        return _originals["_generate_with_cache"](self, messages, stop, run_manager, **kwargs)
    call = dispatch.prepare(
        session, messages, _metadata(run_manager), requested=dispatch.requested_model(self), tools=_tools(kwargs)
    )
    return dispatch.generate(call, self, messages, stop, run_manager, kwargs)


async def _routed_agenerate(
    self: BaseChatModel,
    messages: list[BaseMessage],
    stop: list[str] | None = None,
    run_manager: Any = None,
    **kwargs: Any,
) -> ChatResult:
    session = _session_for(self)
    if session is None:
        return await _originals["_agenerate_with_cache"](self, messages, stop, run_manager, **kwargs)
    call = await dispatch.aprepare(
        session, messages, _metadata(run_manager), requested=dispatch.requested_model(self), tools=_tools(kwargs)
    )
    return await dispatch.agenerate(call, self, messages, stop, run_manager, kwargs)


def _routed_stream(
    self: BaseChatModel, input: Any, config: Any = None, *, stop: list[str] | None = None, **kwargs: Any
) -> Iterator[Any]:
    session = _session_for(self)
    if session is None:
        yield from _originals["stream"](self, input, config, stop=stop, **kwargs)
        return
    config = ensure_config(config)
    messages = self._convert_input(input).to_messages()
    call = dispatch.prepare(
        session, messages, config.get("metadata") or {}, requested=dispatch.requested_model(self), tools=_tools(kwargs)
    )
    yield from dispatch.stream(call, self, input, config, stop, kwargs)


async def _routed_astream(
    self: BaseChatModel, input: Any, config: Any = None, *, stop: list[str] | None = None, **kwargs: Any
) -> AsyncIterator[Any]:
    session = _session_for(self)
    if session is None:
        async for chunk in _originals["astream"](self, input, config, stop=stop, **kwargs):
            yield chunk
        return
    config = ensure_config(config)
    messages = self._convert_input(input).to_messages()
    call = await dispatch.aprepare(
        session, messages, config.get("metadata") or {}, requested=dispatch.requested_model(self), tools=_tools(kwargs)
    )
    async for chunk in dispatch.astream(call, self, input, config, stop, kwargs):
        yield chunk


_replacements: dict[str, Any] = {
    "_generate_with_cache": _routed_generate,
    "_agenerate_with_cache": _routed_agenerate,
    "stream": _routed_stream,
    "astream": _routed_astream,
}


@contextmanager
def intercepting() -> Iterator[None]:
    """Route chat-model calls made in sessions for the duration of the block."""
    global _install_count
    with _install_lock:
        if _install_count == 0:
            for name, replacement in _replacements.items():
                setattr(BaseChatModel, name, replacement)
        _install_count += 1
    try:
        yield
    finally:
        with _install_lock:
            _install_count -= 1
            if _install_count == 0:
                for name, original in _originals.items():
                    setattr(BaseChatModel, name, original)


def is_installed() -> bool:
    return _install_count > 0
