"""A canary key in the environment is used for calls and appears nowhere else."""

from __future__ import annotations

import logging
import operator
from pathlib import Path
from typing import Annotated, TypedDict

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
        pool = ModelPool.from_dict({"models": {
            "flaky": flaky.pool_entry(max_retries=3, **entry),
            "broken": broken.pool_entry(max_retries=1, fallbacks=["flaky"], **entry),
            "hopeless": broken.pool_entry(max_retries=1, **entry),
        }})
        for route in ("flaky", "broken", "hopeless"):
            app = optimize(graph(), pool=pool, routes={"ask": route, "ask_again": route},
                           traces=tmp_path / "traces.sqlite")
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
