"""The semantic cache: near-duplicates share an answer; negated or reversed questions never do."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TypedDict

import pytest
from langchain_core.messages import HumanMessage, SystemMessage
from langchain_openai import ChatOpenAI
from langgraph.graph import END, START, StateGraph

from graphroute import ModelPool, optimize
from graphroute.cache import CacheConfig, SemanticCache
from graphroute.cache.semantic import Wording, same_question
from graphroute.testing import Reply, ScriptedProvider

QUESTION = "Is the Pacific the largest ocean on Earth?"
PARAPHRASE = "Is the Pacific the largest ocean on Earth, please?"
NEGATED = "Is the Pacific not the largest ocean on Earth?"
FLIPPED = "Is the Pacific the smallest ocean on Earth?"


@pytest.mark.parametrize(
    ("asked", "stored", "why"),
    [
        (NEGATED, QUESTION, "negation"),
        ("Shouldn't I take the job offer?", "Should I take the job offer?", "negation"),
        ("Does Paris lie east of Tokyo?", "Does Tokyo lie east of Paris?", "reversed"),
        ("Convert 10 kilometers to miles.", "Convert 10 miles to kilometers.", "reversed"),
        ("What is 17 times 24?", "What is 17 times 23?", "numbers"),
        (FLIPPED, QUESTION, "polarity"),
    ],
)
def test_the_wording_guard_refuses_questions_that_mean_something_else(asked: str, stored: str, why: str) -> None:
    reason = same_question(Wording.of(asked), Wording.of(stored))
    assert reason is not None and why in reason


@pytest.mark.parametrize(
    ("asked", "stored"),
    [
        (PARAPHRASE, QUESTION),
        ("What's the capital of France?", "What is the capital of France?"),
        ("Which city is the capital of France?", "What is the capital of France?"),
    ],
)
def test_the_wording_guard_lets_rewordings_through(asked: str, stored: str) -> None:
    assert same_question(Wording.of(asked), Wording.of(stored)) is None


needs_minilm = pytest.mark.skipif(
    importlib.util.find_spec("sentence_transformers") is None, reason="needs the semantic extra (MiniLM)"
)


@pytest.fixture
def provider() -> Iterator[ScriptedProvider]:
    script = lambda request: Reply(content="answer to: " + request.body["messages"][-1]["content"])  # noqa: E731
    with ScriptedProvider(script) as scripted:
        yield scripted


class Ask(TypedDict, total=False):
    question: str
    route: str
    answer: str


def asking(node_prompt: str) -> Any:
    def ask(state: Ask) -> Ask:
        llm = ChatOpenAI(model="gpt-4o", temperature=0)
        reply = llm.invoke([SystemMessage(node_prompt), HumanMessage(state["question"])])
        return {"answer": str(reply.content)}

    return ask


def two_node_graph() -> StateGraph:
    """``ask`` and ``check`` use the same prompt template; ``brief`` another one."""
    graph = StateGraph(Ask)
    graph.add_node("ask", asking("Answer yes or no."))
    graph.add_node("check", asking("Answer yes or no."))
    graph.add_node("brief", asking("Answer in one word."))
    graph.add_conditional_edges(START, lambda state: state.get("route", "ask"), ["ask", "check", "brief"])
    for node in ("ask", "check", "brief"):
        graph.add_edge(node, END)
    return graph


@needs_minilm
def test_a_near_duplicate_gets_the_stored_answer_but_a_negated_or_reversed_one_does_not(
    provider: ScriptedProvider, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from graphroute.pillars.encoders import default_encoder

    monkeypatch.setenv("OPENAI_API_KEY", "sk-app-key")
    semantic = SemanticCache(encoder=default_encoder(), threshold=0.9, path=tmp_path / "semantic")
    pool = ModelPool.from_dict({"models": {"m": provider.pool_entry()}})
    config = CacheConfig(path=tmp_path / "cache", nodes=(), semantic=semantic)
    app = optimize(two_node_graph(), pool=pool, cache=config, traces=tmp_path / "t.sqlite")

    def ask(question: str, route: str = "ask") -> str:
        return str(app.invoke({"question": question, "route": route})["answer"])

    assert ask(QUESTION) == f"answer to: {QUESTION}"
    assert ask(PARAPHRASE) == f"answer to: {QUESTION}"  # near-duplicate: the stored answer
    [call] = app.last_run.calls
    assert call.cache_hit and "semantic cache (similarity 0.9" in call.reason
    assert app.last_run.cache.semantic_hits == 1

    assert ask(NEGATED) == f"answer to: {NEGATED}"  # negated: sent to the model
    assert ask("Is Earth's largest ocean the Pacific?") != f"answer to: {QUESTION}"  # reordered: never shared
    assert ask(PARAPHRASE, route="check") == f"answer to: {PARAPHRASE}"  # another node
    assert ask(PARAPHRASE, route="brief") == f"answer to: {PARAPHRASE}"  # another template
    assert len(provider.requests) == 5
