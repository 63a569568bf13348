"""The planner reads feedback: scored calls in the traces replace the price-rank prior."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from langgraph.graph import END, START, StateGraph

from graphroute import ModelPool, TraceStore, feedback, optimize
from graphroute.graph import inspect
from graphroute.planning.live import app_nodes, measured_skills, plan_app
from graphroute.planning.pricing import PoolPrices
from graphroute.planning.profiles import prior_skills
from graphroute.testing import Reply, ScriptedProvider
from tests.apps import TOPICS, build_capitals
from tests.planning.test_router import chain


@pytest.fixture
def provider():
    with ScriptedProvider(lambda request: Reply("ok", prompt_tokens=500, completion_tokens=100)) as server:
        yield server


def test_feedback_on_a_models_runs_lowers_its_skill_in_the_next_plan(provider, tmp_path: Path) -> None:
    pool = ModelPool.from_dict({
        "routing": {"default": "mid"},
        "models": {
            "local": provider.pool_entry(locality="local"),
            "mid": provider.pool_entry(locality="cloud", input_price=1.0, output_price=4.0),
            "cloud": provider.pool_entry(locality="cloud", input_price=10.0, output_price=40.0),
        },
    })  # fmt: skip
    store = TraceStore(tmp_path / "traces.sqlite")
    app = optimize(chain(), pool=pool, traces=store)
    for index in range(10):
        app.invoke({"question": f"question {index}", "notes": []})
        feedback(app.last_run.run_id, 0.0, traces=store)  # every answer of "mid" was wrong

    prices = PoolPrices.from_pool(pool)
    skills, scored = measured_skills(store, prices)
    plan = plan_app(chain().compile(), pool, budget_usd=0.01, traces=store)

    assert scored == 30 and set(skills) == {"mid"}  # 10 runs × 3 nodes; unscored models keep the prior
    assert skills["mid"] == pytest.approx(5 * prior_skills(prices)["mid"] / 35)
    assert any("measured on 30 scored calls" in note for note in plan.notes)
    assert any("price-rank prior" in note for note in plan_app(chain().compile(), pool, budget_usd=0.01).notes)


def capitals_pool(provider: ScriptedProvider) -> ModelPool:
    return ModelPool.from_dict({
        "routing": {"default": "mid"},
        "models": {
            "local": provider.pool_entry(locality="local"),
            "mid": provider.pool_entry(locality="cloud", input_price=1.0, output_price=4.0),
        },
    })  # fmt: skip


def test_only_this_apps_scored_calls_count_in_a_store_several_apps_share(
    provider, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The chain's answers are all right, the capitals app's all wrong; each plan sees its own."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-the-app-own-key")
    pool = capitals_pool(provider)
    store = TraceStore(tmp_path / "traces.sqlite")
    chain_app = optimize(chain(), pool=pool, traces=store)
    capitals_app = optimize(build_capitals(), pool=pool, traces=store)
    for index in range(4):
        chain_app.invoke({"question": f"question {index}", "notes": []})
        feedback(chain_app.last_run.run_id, 1.0, traces=store)  # 3 calls: plan, solve, answer
        capitals_app.invoke({"topics": TOPICS})
        feedback(capitals_app.last_run.run_id, 0.0, traces=store)  # 6 calls, 2 inside the review subgraph

    prices = PoolPrices.from_pool(pool)
    prior = prior_skills(prices)["mid"]
    chain_nodes = app_nodes(inspect(chain()))
    capitals_nodes = app_nodes(inspect(build_capitals()))

    assert capitals_nodes == ["start", "capital", "review"]  # "review:summarize" counts under "review"
    assert measured_skills(store, prices, nodes=chain_nodes) == ({"mid": pytest.approx((12 + 5 * prior) / 17)}, 12)
    assert measured_skills(store, prices, nodes=capitals_nodes) == ({"mid": pytest.approx(5 * prior / 29)}, 24)
    assert measured_skills(store, prices)[1] == 36  # without nodes: every app's calls, as before
    plan = plan_app(chain().compile(), pool, budget_usd=0.01, traces=store)
    assert any("measured on 12 scored calls" in note for note in plan.notes)


def test_since_keeps_only_the_calls_started_after_a_time(provider, tmp_path: Path) -> None:
    pool = capitals_pool(provider)
    store = TraceStore(tmp_path / "traces.sqlite")
    app = optimize(chain(), pool=pool, traces=store)
    app.invoke({"question": "an early question", "notes": []})
    feedback(app.last_run.run_id, 0.0, traces=store)
    cut = time.time()
    app.invoke({"question": "a later question", "notes": []})
    feedback(app.last_run.run_id, 1.0, traces=store)

    prices = PoolPrices.from_pool(pool)
    skills, scored = measured_skills(store, prices, nodes=app_nodes(inspect(chain())), since=cut)

    assert scored == 3
    assert skills["mid"] == pytest.approx((3 + 5 * prior_skills(prices)["mid"]) / 8)
    assert measured_skills(store, prices, nodes=[]) == ({}, 0)  # an app with no nodes learns from nothing


def reversed_chain() -> StateGraph:
    """Another app whose nodes have the chain's names: answer → solve → plan."""
    graph = chain()
    other = StateGraph(graph.state_schema)
    for name, spec in graph.nodes.items():
        other.add_node(name, spec.runnable)
    other.add_edge(START, "answer")
    other.add_edge("answer", "solve")
    other.add_edge("solve", "plan")
    other.add_edge("plan", END)
    return other


def test_two_apps_with_the_same_node_names_learn_apart(provider, tmp_path: Path) -> None:
    """The chain's answers are all right, the look-alike's all wrong: each plan sees only its own."""
    pool = capitals_pool(provider)
    store = TraceStore(tmp_path / "traces.sqlite")
    chain_app = optimize(chain(), pool=pool, traces=store)
    twin_app = optimize(reversed_chain(), pool=pool, traces=store)
    for index in range(4):
        chain_app.invoke({"question": f"question {index}", "notes": []})
        feedback(chain_app.last_run.run_id, 1.0, traces=store)
        twin_app.invoke({"question": f"question {index}", "notes": []})
        feedback(twin_app.last_run.run_id, 0.0, traces=store)

    prices = PoolPrices.from_pool(pool)
    prior = prior_skills(prices)["mid"]
    nodes = app_nodes(inspect(chain()))
    assert nodes == app_nodes(inspect(reversed_chain()))  # a node-name filter cannot tell them apart
    assert measured_skills(store, prices, nodes=nodes)[1] == 24
    chain_only = measured_skills(store, prices, graph=chain_app.graph_id, nodes=nodes)
    assert chain_only == ({"mid": pytest.approx((12 + 5 * prior) / 17)}, 12)
    twin_only = measured_skills(store, prices, graph=twin_app.graph_id, nodes=nodes)
    assert twin_only == ({"mid": pytest.approx(5 * prior / 17)}, 12)
    plan = plan_app(reversed_chain().compile(), pool, budget_usd=0.01, traces=store)
    assert any("measured on 12 scored calls" in note for note in plan.notes)
