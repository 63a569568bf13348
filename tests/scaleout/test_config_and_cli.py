"""Choosing shared backends where users configure things: the pool file and the command line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from graphroute import ConfigError, ModelPool, optimize
from graphroute.cli import app as cli
from graphroute.scaleout import open_trace_store
from graphroute.scaleout.postgres import PostgresTraceStore
from graphroute.scaleout.redis_cache import RedisNodeCache, RedisResponseCache
from graphroute.testing import ScriptedProvider
from tests.traces.conftest import PLAN_MODELS, answer, load_example, pool_for


def write_pool(directory: Path, provider: ScriptedProvider, storage: str) -> Path:
    path = directory / "graphroute.toml"
    path.write_text(
        f"""
[models.local]
provider = "openai-compatible"
model = "scripted"
base_url = "{provider.base_url}"
locality = "local"

[storage]
{storage}
""",
        encoding="utf-8",
    )
    return path


def test_the_pool_file_names_the_shared_trace_store_and_cache(
    redis_url: str, postgres_url: str, tmp_path: Path
) -> None:
    with ScriptedProvider(lambda request: answer(request, big=False)) as provider:
        pool = write_pool(tmp_path, provider, f'traces = "{postgres_url}"\ncache = "{redis_url}"')
        app = optimize(load_example().build_graph(), pool=pool, cache=True)
        app.invoke({"question": "What is the capital of France?"})

    assert isinstance(app.store, PostgresTraceStore)
    assert isinstance(app.cache_layer.responses, RedisResponseCache)
    assert isinstance(app.cache_layer.node_backend, RedisNodeCache)
    assert len(open_trace_store(postgres_url).calls(run_id=app.last_run.run_id)) == len(app.last_run.calls) > 0


def test_a_storage_url_of_the_wrong_kind_is_named_when_the_pool_loads(tmp_path: Path) -> None:
    with ScriptedProvider(lambda request: answer(request, big=False)) as provider:
        pool = write_pool(tmp_path, provider, 'cache = "postgresql://me:hunter2@db/app"')
        with pytest.raises(ConfigError, match=r"\[storage.cache\] cache: postgresql is not supported here") as caught:
            ModelPool.from_toml(pool)
    assert "hunter2" not in str(caught.value)


def test_report_replay_and_export_read_a_postgresql_url(postgres_url: str, tmp_path: Path) -> None:
    with (
        ScriptedProvider(lambda request: answer(request, big=False)) as small,
        ScriptedProvider(lambda request: answer(request, big=True)) as big,
    ):
        app = optimize(load_example().build_graph(), pool=pool_for(small, big), traces=postgres_url)
        for question in ("Why is the sky blue, and why are sunsets red?", "What is the capital of France?"):
            app.invoke({"question": question})
    calls = len(open_trace_store(postgres_url).calls())
    runner = CliRunner()

    report = runner.invoke(cli, ["report", postgres_url, "--html", str(tmp_path / "report.html")])
    (tmp_path / "pool.toml").write_text(PLAN_MODELS, encoding="utf-8")
    replayed = runner.invoke(
        cli, ["replay", postgres_url, "--strategy", "all-local", "--pool", str(tmp_path / "pool.toml")]
    )
    exported = runner.invoke(cli, ["export", postgres_url, "--out", str(tmp_path / "t.jsonl")])

    assert report.exit_code == 0, report.output
    assert f"2 runs, {calls} calls" in report.output
    assert (tmp_path / "report.html").read_text(encoding="utf-8").count("<html") == 1
    assert replayed.exit_code == 0, replayed.output
    assert f"Replay of {postgres_url}" in replayed.output.replace("\n", "")
    assert "recorded" in replayed.output and "all-local" in replayed.output
    assert exported.exit_code == 0, exported.output
    kinds = [json.loads(line)["kind"] for line in (tmp_path / "t.jsonl").read_text(encoding="utf-8").splitlines()]
    assert kinds.count("call") == calls


def test_inspect_learns_from_traces_in_postgresql(postgres_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.graph.fakes import mirror_pool
    from tests.graph.shapes import make_loop

    built = make_loop()
    app = optimize(built.graph, pool=mirror_pool(built.models), routes=built.routes, traces=postgres_url)
    for _ in range(4):
        app.invoke({"question": "q"})
    monkeypatch.chdir(Path(__file__).parents[2])

    result = CliRunner().invoke(
        cli, ["inspect", "tests/graph/shapes.py:loop_app", "--traces", postgres_url, "--no-draw", "--no-mermaid"]
    )

    assert result.exit_code == 0, result.output
    assert f"learned from 4 traced runs in {postgres_url}" in " ".join(result.output.split())
    assert "loop ['draft', 'review']" in result.output and "(traces)" in result.output


def test_routed_chat_model_and_the_server_trace_into_postgresql(postgres_url: str, tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from graphroute import RoutedChatModel
    from graphroute.server import create_app
    from graphroute.testing import Reply

    with ScriptedProvider(lambda request: Reply(content="fine")) as provider:
        pool = ModelPool.from_dict({"models": {"local": provider.pool_entry(locality="local")}})
        assert RoutedChatModel(pool=pool, traces=postgres_url).invoke("hello").content == "fine"
        with TestClient(create_app(pool, traces=postgres_url)) as client:
            body = {"model": "local", "messages": [{"role": "user", "content": "hi"}]}
            assert client.post("/v1/chat/completions", json=body).status_code == 200

    store = open_trace_store(postgres_url)
    assert isinstance(store, PostgresTraceStore) and store.count("calls") == 2
    assert not any(Path.cwd().glob("postgresql*"))  # the URL was never taken for a directory
