"""A canary key in the environment is used for calls and appears nowhere else."""

from __future__ import annotations

import json
import logging
import operator
from pathlib import Path
from typing import Annotated, TypedDict

import httpx
import pytest
from langchain_openai import ChatOpenAI
from langgraph.graph import END, START, StateGraph

from graphroute import GraphRouteError, ModelPool, optimize
from graphroute.providers.resilience import BREAKERS
from graphroute.testing import Faults, Reply, ScriptedProvider

CANARY = "sk-canary-7f3e9b1d-do-not-leak"


class State(TypedDict, total=False):
    answers: Annotated[list[str], operator.add]


def ask(state: State) -> State:
    reply = ChatOpenAI(model="gpt-4o", temperature=0).invoke("Say hi.")
    return {"answers": [str(reply.content)]}


def graph() -> StateGraph:
    builder = StateGraph(State)
    builder.add_node("ask", ask)
    builder.add_node("ask_again", ask)
    builder.add_edge(START, "ask")
    builder.add_edge("ask", "ask_again")
    builder.add_edge("ask_again", END)
    return builder


def files_containing(root: Path, needle: bytes) -> list[Path]:
    return [path for path in root.rglob("*") if path.is_file() and needle in path.read_bytes()]


def test_the_canary_key_reaches_the_provider_and_nothing_else(
    data_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("GRAPHROUTE_CANARY_KEY", CANARY)
    monkeypatch.setenv("OPENAI_API_KEY", CANARY)  # the app's own ChatOpenAI reads it too
    caplog.set_level(logging.DEBUG)
    BREAKERS.reset()
    errors: list[str] = []
    # Faults that echo the key back, as some providers do in their error bodies.
    leaky = Reply(status=500, content=f"bad key {CANARY}")
    with (
        ScriptedProvider(Faults(0.5, faults=[Reply(status=500), Reply(status=429)], seed=3)) as flaky,
        ScriptedProvider(lambda request: leaky) as broken,
    ):
        entry = {"api_key_env": "GRAPHROUTE_CANARY_KEY", "retry_delay_s": 0.0}
        pool = ModelPool.from_dict(
            {
                "models": {
                    "flaky": flaky.pool_entry(max_retries=3, **entry),
                    "broken": broken.pool_entry(max_retries=1, fallbacks=["flaky"], **entry),
                    "hopeless": broken.pool_entry(max_retries=1, **entry),
                }
            }
        )
        for route in ("flaky", "broken", "hopeless"):
            app = optimize(
                graph(), pool=pool, routes={"ask": route, "ask_again": route}, traces=tmp_path / "traces.sqlite"
            )
            for _ in range(5):
                try:
                    app.invoke({})
                except GraphRouteError as error:
                    errors.append(str(error))
        received = [request.headers.get("authorization") for request in flaky.requests + broken.requests]
    BREAKERS.reset()

    assert received and set(received) == {f"Bearer {CANARY}"}  # the key was really used
    assert files_containing(data_home, CANARY.encode()) == []
    assert files_containing(tmp_path, CANARY.encode()) == []
    assert CANARY not in caplog.text
    assert len(errors) >= 5  # every "hopeless" run failed with the key in the provider's error body
    assert all(CANARY not in error for error in errors)


def test_the_canary_stays_out_of_caches_bandit_report_and_server(
    data_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A full run: both caches on, retries, failures, a learning bandit, the HTML report, the server.

    Everything persistent goes to the default data dir, so "no file under the data dir" covers
    the trace store, the node and response caches and the bandit's store.
    """
    from typer.testing import CliRunner

    from graphroute.cache import CacheConfig
    from graphroute.cli import app as cli
    from graphroute.pillars.bandit import BanditPillar
    from graphroute.pillars.rules import RulesPillar
    from graphroute.routing.cascade import CascadeRouter
    from graphroute.server import create_app
    from tests.server.conftest import serving

    monkeypatch.setenv("GRAPHROUTE_CANARY_KEY", CANARY)
    monkeypatch.setenv("OPENAI_API_KEY", CANARY)
    caplog.set_level(logging.DEBUG)
    BREAKERS.reset()
    texts: list[str] = []  # every error, response body, header and CLI output a user could see
    leaky = Reply(status=500, content=f"invalid key {CANARY}")
    with (
        ScriptedProvider(Faults(0.4, faults=[Reply(status=500), Reply(status=429)], seed=5)) as flaky,
        ScriptedProvider(lambda request: leaky) as broken,
    ):
        entry = {"api_key_env": "GRAPHROUTE_CANARY_KEY", "retry_delay_s": 0.0}
        pool = ModelPool.from_dict(
            {
                "routing": {"default": "flaky"},
                "models": {
                    "flaky": flaky.pool_entry(max_retries=4, **entry),
                    "broken": broken.pool_entry(max_retries=1, fallbacks=["flaky"], input_price=1.0, **entry),
                    "hopeless": broken.pool_entry(max_retries=1, input_price=2.0, **entry),
                },
            }
        )
        learning = CascadeRouter(pool, [RulesPillar()], bandit=BanditPillar(), ladder=["broken", "flaky"])
        app = optimize(graph(), pool=pool, router=learning, cache=True)
        for _ in range(4):  # repeats are answered by the node cache
            app.invoke({})
        # Answers cached, nodes not: every run reaches "hopeless" and fails with the key in its error body.
        failing = optimize(graph(), pool=pool, routes={"ask": "hopeless"}, cache=CacheConfig(nodes=()))
        for _ in range(4):
            with pytest.raises(GraphRouteError) as caught:
                failing.invoke({})
            texts.append(str(caught.value))

        report = CliRunner().invoke(
            cli, ["report", str(data_home / "traces.sqlite"), "--html", str(tmp_path / "report.html")]
        )
        assert report.exit_code == 0, report.output
        texts.append(report.output)

        BREAKERS.reset()  # hopeless's circuit is open by now: let the server reach it again
        with serving(create_app(pool)) as base_url:
            for model, stream in [
                ("router-default", False),
                ("broken", False),
                ("hopeless", False),
                ("hopeless", True),
                ("broken", True),
                ("no-such-model", False),
            ]:
                body = {"model": model, "stream": stream, "messages": [{"role": "user", "content": "hi"}]}
                response = httpx.post(base_url + "/chat/completions", json=body, timeout=60)
                texts += [response.text, json.dumps(dict(response.headers))]
            response = httpx.post(base_url + "/chat/completions", json={"model": "hopeless"}, timeout=60)
            texts.append(response.text)
        received = {request.headers.get("authorization") for request in flaky.requests + broken.requests}
    BREAKERS.reset()

    assert received == {f"Bearer {CANARY}"}  # the key was really used, by the runs and by the server
    assert (tmp_path / "report.html").stat().st_size > 0 and (data_home / "bandit.sqlite").exists()
    # The provider's echo of the key reached run errors and server error bodies, redacted.
    assert sum("invalid key [redacted]" in text for text in texts) >= 4
    assert files_containing(data_home, CANARY.encode()) == []
    assert files_containing(tmp_path, CANARY.encode()) == []
    assert CANARY not in caplog.text
    assert [text for text in texts if CANARY in text] == []
