"""The bandit hears how every routed call ended: failures move traffic, cache hits teach nothing.

Two models on one scripted OpenAI-compatible server (real HTTP, real clients); ``cheap`` answers
every call with HTTP 500 and ``dear`` answers. The app is an unmodified LangGraph graph run
through ``optimize`` with a ``CascadeRouter`` (rules → ladder → bandit): dispatch feeds each
call's outcome back to the router, with no code in the test doing it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, TypedDict

import pytest
from langchain_core.messages import HumanMessage
from langchain_openai import ChatOpenAI
from langgraph.graph import StateGraph

from graphroute import ModelPool, RoutedChatModel, optimize
from graphroute.cache import CacheConfig
from graphroute.errors import ContextWindowError
from graphroute.pillars.bandit import BanditPillar, Outcome
from graphroute.pillars.rules import RulesPillar
from graphroute.providers.resilience import BREAKERS
from graphroute.routing.base import RouteDecision
from graphroute.routing.cascade import CascadeRouter
from graphroute.testing import ReceivedRequest, Reply, ScriptedProvider
from tests.apps import one_node

RUNS = 40


class QA(TypedDict, total=False):
    question: str
    answer: str


def answer(state: QA) -> QA:
    reply = ChatOpenAI(model="gpt-4o", temperature=0).invoke([HumanMessage(state["question"])])
    return {"answer": str(reply.content)}


def qa_graph() -> StateGraph:
    return one_node(QA, answer)


def cheap_fails(request: ReceivedRequest) -> Reply:
    if request.body.get("model") == "cheap":
        return Reply(status=500, content="upstream exploded")
    return Reply(content="fine")


@pytest.fixture
def provider(monkeypatch: pytest.MonkeyPatch) -> Iterator[ScriptedProvider]:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-the-app-own-key")  # the app's ChatOpenAI needs one to be built
    BREAKERS.reset()
    with ScriptedProvider(cheap_fails) as scripted:
        yield scripted
    BREAKERS.reset()


def two_models(provider: ScriptedProvider) -> ModelPool:
    return ModelPool.from_dict(
        {
            "models": {
                "cheap": provider.pool_entry(model="cheap", input_price=0.1, output_price=0.4),
                "dear": provider.pool_entry(model="dear", input_price=5.0, output_price=20.0),
            }
        }
    )


@pytest.fixture
def pool(provider: ScriptedProvider) -> ModelPool:
    return two_models(provider)


def cascade(pool: ModelPool, tmp_path: Path) -> tuple[CascadeRouter, BanditPillar]:
    bandit = BanditPillar(store=tmp_path / "bandit.sqlite", seed=0)
    return CascadeRouter(pool, [RulesPillar()], bandit=bandit), bandit


def bandit_pick(call: Any) -> str:
    [signal] = [signal for signal in call.signals if signal["pillar"] == "bandit"]
    return str(signal["model"])


def test_a_failing_model_is_charged_for_its_failures_and_loses_its_traffic(
    pool: ModelPool, provider: ScriptedProvider, tmp_path: Path
) -> None:
    router, bandit = cascade(pool, tmp_path)
    app = optimize(qa_graph(), pool=pool, router=router, traces=tmp_path / "traces.sqlite")

    answers = [app.invoke({"question": f"Say hello to guest {n}."})["answer"] for n in range(RUNS)]

    assert answers == ["fine"] * RUNS  # the fallback answered whenever cheap was chosen
    picks = [bandit_pick(call) for call in app.store.calls()]
    assert len(picks) == RUNS and picks[0] == "cheap"  # cheap is the default before any evidence
    [context] = bandit.store.contexts()
    step, arms = bandit.store.load(context)
    assert step == RUNS  # every call was observed
    assert arms["cheap"].streak == picks.count("cheap") and arms["cheap"].failure > arms["cheap"].success
    assert arms["dear"].streak == 0 and arms["dear"].success > arms["dear"].failure
    later = picks[RUNS // 4 :]
    assert later.count("cheap") / len(later) < 0.25  # without feedback the bandit would keep picking cheap


def test_a_cache_hit_does_not_update_the_bandit(provider: ScriptedProvider, tmp_path: Path) -> None:
    # Both models healthy here: a fallback's answer is never cached, the chosen model's is.
    with ScriptedProvider(lambda request: Reply(content="fine")) as healthy:
        router, bandit = cascade(two_models(healthy), tmp_path)
        cache = CacheConfig(path=tmp_path / "cache", nodes=())  # answers cached, every run reaches the call
        app = optimize(qa_graph(), pool=router.pool, router=router, cache=cache, traces=tmp_path / "traces.sqlite")

        app.invoke({"question": "Say hello."})
        [context] = bandit.store.contexts()
        after_first = bandit.store.load(context)
        app.invoke({"question": "Say hello."})
        [repeat] = app.store.calls(run_id=app.last_run.run_id)

        assert repeat.cache_hit and len(healthy.requests) == 1
        assert bandit.store.load(context) == after_first
        app.invoke({"question": "Say hello again."})  # a miss is observed again
        assert bandit.store.load(context)[0] == after_first[0] + 1


def test_routed_chat_model_feeds_back_through_its_capability_guard(pool: ModelPool, tmp_path: Path) -> None:
    router, bandit = cascade(pool, tmp_path)
    llm = RoutedChatModel(pool=pool, router=router, traces=tmp_path / "traces.sqlite")

    assert llm.invoke("Say hello.").content == "fine"

    [context] = bandit.store.contexts()
    step, arms = bandit.store.load(context)
    assert step == 1 and arms["cheap"].streak == 1  # the guard passed the failure on to the cascade


class BrokenLearner(CascadeRouter):
    def observe(self, decision: RouteDecision, outcome: Outcome) -> float | None:
        raise RuntimeError("the bandit's database is gone")


def test_a_router_that_fails_to_learn_never_fails_the_call(pool: ModelPool, tmp_path: Path) -> None:
    router = BrokenLearner(pool, [RulesPillar()], bandit=BanditPillar(store=":memory:", seed=0))
    app = optimize(qa_graph(), pool=pool, router=router, traces=tmp_path / "traces.sqlite")

    assert app.invoke({"question": "Say hello."})["answer"] == "fine"


def test_a_call_refused_before_sending_teaches_the_bandit_nothing(provider: ScriptedProvider, tmp_path: Path) -> None:
    small = ModelPool.from_dict(
        {
            "models": {
                "cheap": provider.pool_entry(model="cheap", input_price=0.1, context_window=64),
                "dear": provider.pool_entry(model="dear", input_price=5.0, context_window=64),
            }
        }
    )
    router, bandit = cascade(small, tmp_path)
    llm = RoutedChatModel(pool=small, router=router, traces=False)

    with pytest.raises(ContextWindowError):
        llm.invoke("word " * 200)  # ~250 tokens, more than any window

    assert bandit.store.contexts() == []  # no model failed: none was asked
