"""Providers: keys from the environment only, clear errors for missing keys and dead endpoints."""

from __future__ import annotations

import socket

import pytest
from langchain_core.messages import HumanMessage

from graphroute import (
    EndpointUnreachableError,
    LocalModelError,
    MissingAPIKeyError,
    ModelPool,
    StaticRouter,
)
from graphroute.providers.local_models import resolve_gguf
from graphroute.routing import dispatch
from graphroute.routing.session import RoutingSession


def cloud_pool(base_url: str | None = None) -> ModelPool:
    entry = {"provider": "openai", "model": "gpt-4o-mini", "api_key_env": "GRAPHROUTE_TEST_KEY", "max_retries": 0}
    if base_url:
        entry["base_url"] = base_url
    return ModelPool.from_dict({"models": {"cloud": entry}})


def test_a_missing_key_names_the_variable_not_a_value(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GRAPHROUTE_TEST_KEY", raising=False)

    with pytest.raises(MissingAPIKeyError, match=r"\$GRAPHROUTE_TEST_KEY, which is not set") as caught:
        cloud_pool().client("cloud")

    assert caught.value.env_var == "GRAPHROUTE_TEST_KEY"
    assert caught.value.model == "cloud"


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # closed again when we return: nothing listens there


def test_a_dead_endpoint_is_named_and_the_key_never_appears(monkeypatch: pytest.MonkeyPatch) -> None:
    secret = "sk-test-do-not-leak-0123456789"
    monkeypatch.setenv("GRAPHROUTE_TEST_KEY", secret)
    url = f"http://127.0.0.1:{closed_port()}/v1"
    pool = cloud_pool(url)
    session = RoutingSession(pool=pool, router=StaticRouter("cloud"))
    call = dispatch.prepare(session, [HumanMessage("hi")], {}, requested=None)

    with pytest.raises(EndpointUnreachableError) as caught:
        dispatch.generate(call, None, [HumanMessage("hi")], None, None, {})

    assert url in str(caught.value)
    assert "Start the server or fix base_url" in str(caught.value)
    assert secret not in str(caught.value)
    [record] = session.calls  # the failed call is traced, with its error
    assert record.error is not None and secret not in record.error


def test_an_unknown_local_model_reference_is_explained() -> None:
    with pytest.raises(LocalModelError, match="neither a packaged model"):
        resolve_gguf("llama-3-70b")
    with pytest.raises(LocalModelError, match="does not exist"):
        resolve_gguf("/nowhere/model.gguf")
