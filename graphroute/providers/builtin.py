"""The built-in providers: OpenAI, any OpenAI-compatible URL, Ollama, managed llama.cpp.

OpenAI and OpenAI-compatible entries with ``batch_api = true`` get the Batch API chat model
(``providers/batch_api.py``) instead of a plain ``ChatOpenAI``.
"""

from __future__ import annotations

import asyncio
import os
import weakref
from typing import Any

import httpx
from langchain_core.language_models import BaseChatModel

from graphroute.config import ModelSpec
from graphroute.errors import MissingAPIKeyError
from graphroute.providers.base import register_provider

# Local servers ignore the key, but the OpenAI client insists on one being present.
_PLACEHOLDER_KEY = "not-needed"


def _api_key(spec: ModelSpec) -> str:
    """The key named by ``api_key_env``; a declared but unset variable is an error."""
    if not spec.api_key_env:
        return _PLACEHOLDER_KEY
    value = os.environ.get(spec.api_key_env)
    if not value:
        raise MissingAPIKeyError(spec.name, spec.api_key_env)
    return value


class PerLoopTransport(httpx.AsyncBaseTransport):
    """One async connection pool per event loop.

    The OpenAI client otherwise shares one async pool across loops, and a second
    ``asyncio.run(model.ainvoke(...))`` on the same pool client fails with "Event loop is closed".
    """

    def __init__(self) -> None:
        self._pools: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx.AsyncHTTPTransport] = (
            weakref.WeakKeyDictionary()
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        loop = asyncio.get_running_loop()
        pool = self._pools.get(loop)
        if pool is None:
            pool = self._pools.setdefault(loop, httpx.AsyncHTTPTransport())
        return await pool.handle_async_request(request)


def _chat_openai(spec: ModelSpec, *, base_url: str | None, api_key: str, model: str) -> BaseChatModel:
    from langchain_openai import ChatOpenAI

    return ChatOpenAI(
        http_async_client=httpx.AsyncClient(transport=PerLoopTransport(), timeout=spec.timeout_s),
        model=model,
        base_url=base_url,
        api_key=api_key,  # type: ignore[arg-type]  # wrapped in SecretStr by the client
        timeout=spec.timeout_s,
        max_retries=0,  # graphroute retries (with backoff, breakers and fallbacks) itself
        stream_usage=True,
    )


def _batch_api(spec: ModelSpec) -> BaseChatModel:
    from graphroute.providers.batch_api import build_batch_api  # imports langchain_openai

    return build_batch_api(spec, api_key=_api_key(spec))


def build_openai(spec: ModelSpec) -> BaseChatModel:
    if spec.batch_api:
        return _batch_api(spec)
    return _chat_openai(spec, base_url=spec.base_url, api_key=_api_key(spec), model=spec.model)


def build_openai_compatible(spec: ModelSpec) -> BaseChatModel:
    if spec.batch_api:
        return _batch_api(spec)
    return _chat_openai(spec, base_url=spec.base_url, api_key=_api_key(spec), model=spec.model)


def build_ollama(spec: ModelSpec) -> BaseChatModel:
    from langchain_ollama import ChatOllama

    return ChatOllama(
        model=spec.model,
        base_url=spec.base_url or "http://127.0.0.1:11434",
        client_kwargs={"timeout": spec.timeout_s},
    )


def build_llamacpp(spec: ModelSpec) -> BaseChatModel:
    from graphroute.providers.llamacpp import get_server
    from graphroute.providers.local_models import resolve_gguf

    server = get_server(resolve_gguf(spec.model), spec.llamacpp)
    return _chat_openai(spec, base_url=server.base_url, api_key=_PLACEHOLDER_KEY, model=spec.name)


def adapt_openai(spec: ModelSpec, params: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in params.items() if value is not None}


def adapt_local_openai(spec: ModelSpec, params: dict[str, Any]) -> dict[str, Any]:
    """Local OpenAI-compatible servers read ``max_tokens``, which ChatOpenAI renames: send it raw."""
    out = adapt_openai(spec, params)
    max_tokens = out.pop("max_tokens", None)
    if max_tokens is not None:
        out["extra_body"] = {**out.get("extra_body", {}), "max_tokens": max_tokens}
    return out


def adapt_ollama(spec: ModelSpec, params: dict[str, Any]) -> dict[str, Any]:
    out = dict(params)
    options = dict(out.pop("options", None) or {})
    if (temperature := out.pop("temperature", None)) is not None:
        options["temperature"] = temperature
    if (max_tokens := out.pop("max_tokens", None)) is not None:
        options["num_predict"] = max_tokens
    if options:
        out["options"] = options
    return out


register_provider("openai", build_openai, adapt_openai)
register_provider("openai-compatible", build_openai_compatible, adapt_local_openai)
register_provider("ollama", build_ollama, adapt_ollama)
register_provider("llamacpp", build_llamacpp, adapt_local_openai)
