"""A traced, cached, checkpointed LangGraph app, run in a child process that gets killed.

``tests/test_crash_safety.py`` runs ``run_essay`` in a child process, kills it with SIGKILL at
a random moment, then runs it again in a fresh child, which must resume the same thread from
its last checkpoint. Each of the four nodes makes two model calls in a row, so a kill between
them leaves a node half done: the checkpoint does not have it, the response cache has its first
answer.

Everything persistent sits under one data dir: ``traces.sqlite`` (graphroute's trace store),
``checkpoints.sqlite`` (LangGraph's ``SqliteSaver``) and ``cache/`` (node and response caches).
"""

from __future__ import annotations

import json
import operator
import os
import sqlite3
from pathlib import Path
from typing import Annotated, Any, TypedDict

from langchain_openai import ChatOpenAI
from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.graph import END, START, StateGraph

from graphroute import ModelPool, optimize
from graphroute.cache import CacheConfig

STEPS = ("draft", "critique", "revise", "summarize")
CALLS_PER_RUN = 2 * len(STEPS)


class Essay(TypedDict, total=False):
    question: str
    notes: Annotated[list[str], operator.add]


def _step(name: str) -> Any:
    def node(state: Essay) -> Essay:
        llm = ChatOpenAI(model="gpt-4o", temperature=0, max_retries=0)
        context = " | ".join(state.get("notes", []))
        first = llm.invoke(f"{name}, part 1, on {state['question']!r} after: {context}").content
        second = llm.invoke(f"{name}, part 2, building on: {first}").content
        return {"notes": [f"{name}: {second}"]}

    node.__name__ = node.__qualname__ = name  # the node cache's namespace names the function
    return node


def essay_graph() -> StateGraph:
    graph = StateGraph(Essay)
    previous = START
    for name in STEPS:
        graph.add_node(name, _step(name))
        graph.add_edge(previous, name)
        previous = name
    graph.add_edge(previous, END)
    return graph


def run_essay(home: str, pool: dict[str, Any], thread: str, question: str, result: str) -> None:
    """Run (or resume) ``thread`` to its end and write the final state to ``result`` as JSON."""
    os.environ["GRAPHROUTE_HOME"] = home
    os.environ.setdefault("OPENAI_API_KEY", "sk-the-app-own-key")  # the app's ChatOpenAI needs one to be built
    data = Path(home)
    connection = sqlite3.connect(str(data / "checkpoints.sqlite"), check_same_thread=False)
    app = optimize(
        essay_graph(),
        pool=ModelPool.from_dict(pool),
        traces=data / "traces.sqlite",
        cache=CacheConfig(path=data / "cache"),
        checkpointer=SqliteSaver(connection),
    )
    config = {"configurable": {"thread_id": thread}}
    # ``invoke(None)`` goes on from the last checkpoint (or returns a finished run's state). Not
    # ``get_state().next``: after a kill between a task's saved writes and the next checkpoint,
    # ``next`` is empty although the run is not over.
    started = app.get_state(config).created_at is not None
    final = app.invoke(None if started else {"question": question}, config)
    Path(result).write_text(json.dumps(final, sort_keys=True))
