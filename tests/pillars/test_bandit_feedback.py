"""Feedback given after the fact reaches the bandit's arms: wrong answers lose traffic too.

Both models answer every call (no error the dispatch hook could see), but the cheap model's
answers are wrong: only the user's ``graphroute.feedback`` says so. ``learn_from_feedback``
reads those scores from the trace store and credits the arm that chose each scored call.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TypedDict

import pytest
from langchain_openai import ChatOpenAI
from langgraph.graph import StateGraph

from graphroute import ModelPool, feedback, optimize
from graphroute.pillars.bandit import BanditPillar
from graphroute.pillars.bandit_feedback import bandit_context, learn_from_feedback
from graphroute.pillars.rules import RulesPillar
from graphroute.providers.resilience import BREAKERS
from graphroute.routing.cascade import CascadeRouter
from graphroute.testing import ReceivedRequest, Reply, ScriptedProvider
from tests.apps import one_node


class QA(TypedDict, total=False):
    question: str
    answer: str


def answer(state: QA) -> QA:
    return {"answer": str(ChatOpenAI(model="gpt-4o", temperature=0).invoke(state["question"]).content)}


def qa_graph() -> StateGraph:
    return one_node(QA, answer)


def by_model(request: ReceivedRequest) -> Reply:
    return Reply(content="4" if request.body.get("model") == "dear" else "5")  # cheap is confidently wrong


@pytest.fixture
def provider(monkeypatch: pytest.MonkeyPatch) -> Iterator[ScriptedProvider]:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-the-app-own-key")
    BREAKERS.reset()
    with ScriptedProvider(by_model) as scripted:
        yield scripted


def run_with_feedback(
    provider: ScriptedProvider, tmp_path: Path, *, learn: bool
) -> tuple[list[str], BanditPillar, str]:
    """60 runs, each scored by the user; the bandit reads the scores every 10 runs when ``learn``."""
    pool = ModelPool.from_dict({"models": {
        "cheap": provider.pool_entry(model="cheap", input_price=0.1, output_price=0.4),
        "dear": provider.pool_entry(model="dear", input_price=0.5, output_price=2.0),
    }})  # fmt: skip
    bandit = BanditPillar(store=tmp_path / "bandit.sqlite", seed=0)
    app = optimize(qa_graph(), pool=pool, router=CascadeRouter(pool, [RulesPillar()], bandit=bandit),
                   traces=tmp_path / "traces.sqlite")  # fmt: skip
    models, seen = [], None
    for run in range(60):
        result = app.invoke({"question": "What is 2 + 2?"})
        feedback(app.last_run.run_id, result["answer"] == "4", node="answer", traces=app.store)
        models.append(app.last_run.calls[0].model)
        if learn and run % 10 == 9:
            seen = learn_from_feedback(bandit, app.store, since=seen)
    context = bandit_context(app.store.calls(run_id=app.last_run.run_id)[0])
    assert context is not None
    if learn:  # reading again finds nothing new and changes nothing
        before = bandit.store.load(context)
        assert learn_from_feedback(bandit, app.store, since=seen) == seen
        assert bandit.store.load(context) == before
    return models, bandit, context


def test_user_feedback_moves_traffic_away_from_a_model_that_answers_wrongly(
    provider: ScriptedProvider, tmp_path: Path
) -> None:
    models, bandit, context = run_with_feedback(provider, tmp_path / "learning", learn=True)

    cheap, dear = bandit.arms(context, ["cheap", "dear"])
    assert cheap.mean_reward < dear.mean_reward
    assert models[-20:].count("dear") >= 15


def test_without_reading_the_feedback_the_cheap_wrong_model_keeps_its_traffic(
    provider: ScriptedProvider, tmp_path: Path
) -> None:
    """The control: every call succeeds as far as dispatch can see, so cheap looks best."""
    models, bandit, context = run_with_feedback(provider, tmp_path / "blind", learn=False)

    cheap, dear = bandit.arms(context, ["cheap", "dear"])
    assert cheap.mean_reward > dear.mean_reward
    assert models[-20:].count("cheap") >= 15
