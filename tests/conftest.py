"""Shared fixtures: every on-disk path under tmp dirs, and one real local model server per session."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from graphroute import ModelPool, TraceStore

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(scope="session")
def session_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data dir for the whole test session: the assembled GGUF is built once here.

    Set ``GRAPHROUTE_TEST_MODELS`` to a directory holding an already assembled model to skip
    the assembly (it is verified all the same).
    """
    home = tmp_path_factory.mktemp("graphroute-home")
    shared_models = os.environ.get("GRAPHROUTE_TEST_MODELS")
    if shared_models:
        Path(shared_models).mkdir(parents=True, exist_ok=True)
        (home / "models").symlink_to(Path(shared_models), target_is_directory=True)
    else:
        (home / "models").mkdir()
    return home


@pytest.fixture(autouse=True)
def data_home(session_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """GRAPHROUTE_HOME points at a per-test dir; the models dir is shared for the session."""
    home = tmp_path / "home"
    home.mkdir()
    (home / "models").symlink_to((session_home / "models").resolve(), target_is_directory=True)
    monkeypatch.setenv("GRAPHROUTE_HOME", str(home))
    return home


LOCAL_POOL = {
    "routing": {"default": "local"},
    "models": {
        "local": {
            "provider": "llamacpp",
            "model": "qwen2.5-coder-0.5b-instruct",
            "capabilities": ["streaming", "tools", "json"],
            "timeout_s": 600,  # a shared 2-core machine can be very slow; never a reason to fail
        },
        # Same server, another name: lets tests see that a pin picks exactly the pinned model.
        "local-b": {
            "provider": "llamacpp",
            "model": "qwen2.5-coder-0.5b-instruct",
            "capabilities": ["streaming", "tools", "json"],
            "input_price": 0.5,
            "output_price": 1.0,
            "timeout_s": 600,
        },
    },
}


@pytest.fixture(scope="session")
def local_pool(session_home: Path) -> Iterator[ModelPool]:
    """A pool on the real Qwen2.5-Coder-0.5B served by a managed llama.cpp server."""
    previous = os.environ.get("GRAPHROUTE_HOME")
    os.environ["GRAPHROUTE_HOME"] = str(session_home)
    try:
        pool = ModelPool.from_dict(LOCAL_POOL)
        pool.client("local")  # start the server now, inside the session home
    finally:
        if previous is None:
            os.environ.pop("GRAPHROUTE_HOME", None)
        else:
            os.environ["GRAPHROUTE_HOME"] = previous
    yield pool


@pytest.fixture
def trace_store(tmp_path: Path) -> Iterator[TraceStore]:
    store = TraceStore(tmp_path / "traces.sqlite")
    yield store
    store.close()
