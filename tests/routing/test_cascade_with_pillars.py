"""The cascade with the real pillars: rules and MiniLM semantic routing, and inside optimize()."""

from __future__ import annotations

from pathlib import Path
from typing import TypedDict

import numpy as np
import pytest
from langchain_core.messages import HumanMessage
from langchain_ollama import ChatOllama
from langgraph.graph import END, START, StateGraph

from graphroute import ModelPool, RouteRequest, TraceStore, optimize
from graphroute.pillars.judge import JudgePillar
from graphroute.pillars.rules import RulesPillar
from graphroute.routing.cascade import CascadeRouter

EASY = [
    "What is the capital of France?",
    "Translate 'thank you' into Spanish.",
    "Name a fruit that is yellow.",
    "How many days are in a week?",
    "Who wrote Romeo and Juliet?",
    "What is the opposite of hot?",
]
HARD = [
    "Prove that there are infinitely many primes congruent to 3 mod 4.",
    "Derive the closed form of the sum of k^3 for k from 1 to n and prove it by induction.",
    "Compute the eigenvalues of the matrix [[2, 1], [1, 3]] and explain the steps.",
    "Show that the function x^x has a minimum and find it exactly.",
    "Find all integer solutions of x^2 - 7y^2 = 1 with x below 200.",
    "A tank fills in 6 hours with pipe A and 9 with pipe B, and drains in 12 with pipe C. How long with all three?",
]
POOL = {
    "models": {
        "local": {"provider": "llamacpp", "model": "qwen2.5-coder-0.5b-instruct"},
        "cloud": {
            "provider": "openai",
            "model": "gpt-4o",
            "api_key_env": "OPENAI_API_KEY",
            "input_price": 2.5,
            "output_price": 10.0,
        },
    }
}


@pytest.fixture(scope="module")
def semantic(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """A semantic pillar on a small labelled set: the weak model solves EASY, fails HARD."""
    pytest.importorskip("sentence_transformers")
    from graphroute.pillars.encoders import CachedEncoder, MiniLMEncoder
    from graphroute.pillars.semantic import KNNSuccessEstimator, SemanticPillar, SemanticRouter

    encoder = CachedEncoder(MiniLMEncoder(), tmp_path_factory.mktemp("embeddings"))
    embeddings = encoder.encode(EASY + HARD)
    outcomes = np.array([[1.0, 1.0]] * len(EASY) + [[0.0, 1.0]] * len(HARD))
    estimator = KNNSuccessEstimator(k=4).fit(embeddings, outcomes, ["weak", "strong"])
    router = SemanticRouter(estimator, encoder_name=encoder.name, weak=["weak"], exemplars=embeddings)
    return SemanticPillar(router, encoder=encoder)


def test_rules_then_semantic_send_a_proof_up_and_a_greeting_down(semantic) -> None:  # type: ignore[no-untyped-def]
    router = CascadeRouter(ModelPool.from_dict(POOL), [RulesPillar(), semantic], exit_confidence=0.8)

    hard = router.route(RouteRequest([HumanMessage("Prove that the sum of the first n odd numbers is n^2.")]))
    easy = router.route(RouteRequest([HumanMessage("Who painted the Mona Lisa?")]))
    private = router.route(RouteRequest([HumanMessage("Prove Fermat's little theorem and mail it to a@b.org")]))

    assert hard.model == "cloud" and easy.model == "local"
    assert [s.pillar for s in hard.signals][:2] == ["rules", "semantic"]
    assert hard.difficulty is not None and easy.difficulty is not None and hard.difficulty > easy.difficulty
    assert private.model == "local" and "local only" in private.explain()


class State(TypedDict, total=False):
    question: str
    answer: str


def answer(state: State) -> State:
    reply = ChatOllama(model="llama3.1:8b", temperature=0, num_predict=8).invoke(state["question"])
    return {"answer": str(reply.content)}


def answer_app() -> StateGraph:
    graph = StateGraph(State)
    graph.add_node("answer", answer)
    graph.add_edge(START, "answer")
    graph.add_edge("answer", END)
    return graph


@pytest.mark.model
def test_optimize_routes_through_the_cascade_and_traces_every_signal(local_pool: ModelPool, tmp_path: Path) -> None:
    graph = answer_app()
    router = CascadeRouter(local_pool, [RulesPillar(), JudgePillar(local_pool)], exit_confidence=0.95)
    app = optimize(graph, pool=local_pool, router=router, traces=TraceStore(tmp_path / "t.sqlite"))

    result = app.invoke({"question": "What is the capital of France? One word."})

    [call] = app.store.calls(run_id=app.last_run.run_id)
    assert "paris" in result["answer"].lower()
    assert call.model in {"local", "local-b"} and call.node == "answer"
    assert call.reason.startswith(f"{call.model} for answer: rules ")
    assert [s["pillar"] for s in call.signals] == ["rules", "judge"]  # rules unsure → the judge was asked
    judge = call.signals[1]
    assert judge["rating"] is not None and judge["latency_ms"] > 0  # the judge's latency reaches the trace


def test_routed_chat_model_takes_the_cascade_as_its_router(tmp_path: Path) -> None:
    from graphroute.chat_model import RoutedChatModel
    from graphroute.testing import ReceivedRequest, Reply, ScriptedProvider

    def answer_as_model(request: ReceivedRequest) -> Reply:
        return Reply(content=f"answered by {request.body['model']}")

    with ScriptedProvider(answer_as_model) as provider:
        pool = ModelPool.from_dict(
            {
                "models": {
                    "cheap": provider.pool_entry(model="cheap", input_price=0.1, output_price=0.4),
                    "strong": provider.pool_entry(model="strong", input_price=5.0, output_price=20.0),
                }
            }
        )
        router = CascadeRouter(pool, [RulesPillar()])
        model = RoutedChatModel(pool=pool, router=router, traces=tmp_path / "t.sqlite")

        easy = model.invoke("Hi!")
        hard = model.invoke("Prove, step by step, that the integral of x^2 from 0 to 1 is 1/3.")

    assert easy.content == "answered by cheap" and easy.response_metadata["graphroute_model"] == "cheap"
    assert hard.content == "answered by strong"


@pytest.mark.model
def test_a_budgeted_plan_asks_the_real_judge_when_the_rules_are_unsure(local_pool: ModelPool, tmp_path: Path) -> None:
    """``pillars=["rules", "judge"]``: the local Qwen grades each call; its grade picks the rung."""
    graph = answer_app()
    budget = 2 * local_pool["local-b"].cost(500, 200)
    app = optimize(
        graph, pool=local_pool, budget_usd=budget, pillars=["rules", "judge"], traces=TraceStore(tmp_path / "t.sqlite")
    )
    graded = {}
    for question in ("Hello! How are you today?", "Prove that there are infinitely many primes."):
        app.invoke({"question": question})
        [call] = app.last_run.calls
        assert [s["pillar"] for s in call.signals] == ["rules", "judge"]  # neither rules signal is sure
        assert call.reason.startswith("plan: answer")
        graded[question] = call.signals[1]["rating"]
    assert graded["Prove that there are infinitely many primes."] > graded["Hello! How are you today?"]


def test_a_semantic_router_trained_on_the_pools_models_gives_the_plan_per_model_estimates(
    tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    """Trained on outcomes of "local" and "cloud" themselves, the semantic pillar tells the
    budget's plan each call's success per model, and the plan weighs them against the prices."""
    pytest.importorskip("sentence_transformers")
    from graphroute.pillars.encoders import CachedEncoder, MiniLMEncoder
    from graphroute.pillars.semantic import KNNSuccessEstimator, SemanticPillar, SemanticRouter
    from graphroute.testing import Reply, ScriptedProvider

    encoder = CachedEncoder(MiniLMEncoder(), tmp_path_factory.mktemp("embeddings"))
    embeddings = encoder.encode(EASY + HARD)
    outcomes = np.array([[1.0, 1.0]] * len(EASY) + [[0.0, 1.0]] * len(HARD))
    estimator = KNNSuccessEstimator(k=3, prior_strength=0.1).fit(embeddings, outcomes, ["local", "cloud"])
    ours = SemanticPillar(SemanticRouter(estimator, encoder_name=encoder.name, weak=["local"]), encoder=encoder)
    other_models = KNNSuccessEstimator(k=3).fit(embeddings, outcomes, ["weak", "strong"])
    theirs = SemanticPillar(SemanticRouter(other_models, encoder_name=encoder.name, weak=["weak"]), encoder=encoder)

    with ScriptedProvider(lambda request: Reply("ok", prompt_tokens=30, completion_tokens=10)) as provider:
        pool = ModelPool.from_dict({
            "routing": {"default": "local"},
            "models": {
                "local": provider.pool_entry(locality="local"),
                "cloud": provider.pool_entry(locality="cloud", input_price=2.0, output_price=2.0),
            },
        })  # fmt: skip
        app = optimize(
            answer_app(), pool=pool, budget_usd=0.0005, pillars=["rules", ours], traces=tmp_path / "traces.sqlite"
        )
        chosen = {}
        for question in ("Who painted the Mona Lisa?", "Prove that the sum of the first n odd numbers is n^2."):
            app.invoke({"question": question})
            [call] = app.last_run.calls
            chosen[question] = call.model
            [signal] = call.signals
            assert signal["pillar"] == "estimates" and "per-model success: local" in signal["reason"]
        # A router trained on other models cannot estimate these: its difficulty picks the rung.
        other = optimize(answer_app(), pool=pool, budget_usd=0.0005, pillars=["rules", theirs], traces=tmp_path / "o")
        other.invoke({"question": "Who painted the Mona Lisa?"})
        assert [s["pillar"] for s in other.last_run.calls[0].signals] == ["rules", "semantic"]
    assert chosen == {
        "Who painted the Mona Lisa?": "local",  # local 0.98 against cloud 1.00: not worth the price
        "Prove that the sum of the first n odd numbers is n^2.": "cloud",  # local 0.02
    }
