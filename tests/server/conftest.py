"""A real graphroute server on a free local port, in a background thread, for the OpenAI client."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from graphroute import ModelPool, TraceStore
from tests.conftest import LOCAL_POOL

TOKEN = "test-server-token-7f3a"


@dataclass
class RunningServer:
    base_url: str
    token: str
    store: TraceStore


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def server_pool(local_pool: ModelPool) -> ModelPool:
    """The test pool plus ``plain``: the same local model, declared without tool support.

    A timeout of its own gives the server's event loop its own HTTP connection pool:
    langchain-openai shares one async pool per (URL, timeout) across event loops, and
    connections made in another test's (closed) loop would fail here.
    """
    models = {name: {**entry, "timeout_s": 119.0} for name, entry in LOCAL_POOL["models"].items()}
    models["plain"] = {**models["local"], "capabilities": ["streaming"]}
    return ModelPool.from_dict({**LOCAL_POOL, "models": models})


@contextmanager
def serving(app: Any) -> Iterator[str]:
    """Run ``app`` with uvicorn on a free port in a thread; yields its ``/v1`` base URL."""
    import uvicorn

    port = free_port()
    instance = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=instance.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not instance.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        instance.should_exit = True
        thread.join(timeout=10)


@pytest.fixture(scope="module")
def server(server_pool: ModelPool, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    from graphroute.server import create_app

    store = TraceStore(Path(tmp_path_factory.mktemp("server")) / "traces.sqlite")
    with serving(create_app(server_pool, traces=store, token=TOKEN)) as base_url:
        yield RunningServer(base_url, TOKEN, store)
    store.close()
