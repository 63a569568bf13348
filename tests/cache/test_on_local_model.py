"""On the real local model: a warm run of an app is served from the caches, with identical output."""

from __future__ import annotations

from pathlib import Path

import pytest

from graphroute import ModelPool, optimize
from graphroute.cache import CacheConfig
from tests.apps import TOPICS, build_capitals


def test_a_warm_run_makes_no_model_call_and_returns_the_same(
    local_pool: ModelPool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-app-key")  # the app builds a ChatOpenAI; routing never uses it
    cache = CacheConfig(path=tmp_path / "cache")

    cold_app = optimize(build_capitals(), pool=local_pool, cache=cache, traces=tmp_path / "t.sqlite")
    cold = cold_app.invoke({"topics": TOPICS})
    warm_app = optimize(build_capitals(), pool=local_pool, cache=cache, traces=tmp_path / "t.sqlite")
    warm = warm_app.invoke({"topics": TOPICS})

    assert warm == cold
    assert len(cold_app.last_run.calls) == 6 and warm_app.last_run.calls == []
    assert warm_app.last_run.cache.node_hits == 5  # start, capital × 3, review (a subgraph, whole)
    rows = warm_app.store.node_runs(run_id=warm_app.last_run.run_id)
    assert sorted(row.node for row in rows if row.cache_hit) == ["capital", "capital", "capital", "review", "start"]
