"""The plan applied live: ``PlannedRouter`` inside ``optimize``, and the ``graphroute plan`` CLI."""

from __future__ import annotations

import operator
import textwrap
from pathlib import Path
from typing import Annotated, TypedDict

import pytest
from langchain_core.language_models import FakeListChatModel
from langchain_core.messages import HumanMessage
from langgraph.graph import END, START, StateGraph
from typer.testing import CliRunner

from graphroute import ModelPool, TraceStore, optimize
from graphroute.cli import app as cli
from graphroute.testing import Reply, ScriptedProvider
from tests.planning.conftest import local_and_cloud


class State(TypedDict, total=False):
    question: str
    notes: Annotated[list[str], operator.add]


def _step(name: str):
    def run(state: State) -> State:
        # Node code builds whatever model it likes; optimize() routes the call to a pool model.
        reply = FakeListChatModel(responses=["unused"]).invoke([HumanMessage(f"{name}: {state['question']}")])
        return {"notes": [str(reply.content)]}

    return run


def chain() -> StateGraph:
    graph = StateGraph(State)
    for name in ("plan", "solve", "answer"):
        graph.add_node(name, _step(name))
    graph.add_edge(START, "plan")
    graph.add_edge("plan", "solve")
    graph.add_edge("solve", "answer")
    graph.add_edge("answer", END)
    return graph


@pytest.fixture
def provider():
    # Every call is billed 500 tokens in, 100 out: more than the router can estimate from the prompt.
    with ScriptedProvider(lambda request: Reply("ok", prompt_tokens=500, completion_tokens=100)) as server:
        yield server


def test_a_planned_app_keeps_every_run_within_its_budget(provider, tmp_path: Path) -> None:
    pool = local_and_cloud(provider)
    budget = 0.008  # one cloud call costs $0.006: a run can afford one
    # optimize() plans the run, paces it and gives each run's real spend back to the pacer.
    app = optimize(chain(), pool=pool, budget_usd=budget, traces=TraceStore(tmp_path / "traces.sqlite"))
    one_call = pool["cloud"].cost(500, 100)
    spends, cloud_calls = [], 0
    for index in range(20):
        app.invoke({"question": f"question {index}", "notes": []})
        run = app.last_run
        spends.append(run.cost_usd)
        cloud_calls += sum(call.model == "cloud" for call in run.calls)
    assert max(spends) <= budget + one_call
    assert cloud_calls > 0  # the budget is used, not just avoided
    assert all(call.reason.startswith("plan: ") for call in app.last_run.calls)
    # Each traced run keeps the plan it ran under and its budget, for the report and replay.
    recorded = app.store.run(app.last_run.run_id)
    assert recorded.budget_usd == budget
    assert recorded.plan == str(app.plan)


def test_the_cli_prints_the_plan_and_calibrated_thresholds(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "app.py").write_text(
        textwrap.dedent("""
        from tests.planning.test_router import chain
        app = chain().compile()
    """)
    )
    (tmp_path / "graphroute.toml").write_text(
        textwrap.dedent("""
        [routing]
        default = "local"
        [models.local]
        provider = "openai-compatible"
        model = "small"
        base_url = "http://127.0.0.1:9/v1"
        locality = "local"
        [models.cloud]
        provider = "openai-compatible"
        model = "large"
        base_url = "http://127.0.0.1:9/v1"
        input_price = 2.5
        output_price = 10.0
        locality = "cloud"
    """)
    )
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[2]))
    target = f"{tmp_path / 'app.py'}:app"
    result = CliRunner().invoke(cli, ["plan", target, "--budget", "0.002"])
    assert result.exit_code == 0, result.output
    for text in ("plan", "solve", "answer", "expected per run", "ladder"):
        assert text in result.output
    result = CliRunner().invoke(cli, ["calibrate", target, "--cloud-share", "0.3"])
    assert result.exit_code == 0, result.output
    assert "cloud when difficulty" in result.output
    result = CliRunner().invoke(cli, ["plan", target])
    assert result.exit_code == 1 and "--budget" in result.output
    # The pool file's pins hold in the printed plan as they do in optimize().
    pool_file = tmp_path / "graphroute.toml"
    pool_file.write_text(pool_file.read_text() + '[routing.nodes]\nanswer = "cloud"\nelsewhere = "local"\n')
    result = CliRunner().invoke(cli, ["plan", target, "--budget", "0.002"], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "pinned (kept whatever the budget; the plan spends the rest around them): answer = cloud" in result.output
    # --pin adds to them, for this plan only; a node or model that is not there is named.
    result = CliRunner().invoke(cli, ["plan", target, "--budget", "0.002", "--pin", "solve=cloud"], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "around them): answer = cloud, solve = cloud" in result.output
    result = CliRunner().invoke(cli, ["calibrate", target, "--budget", "0.002", "--pin", "solve=cloud"])
    assert result.exit_code == 0, result.output
    assert "answer = cloud, solve = cloud" in result.output  # calibrate shows the plan's notes too
    result = CliRunner().invoke(cli, ["calibrate", target, "--budget", "0.002", "--pin", "nowhere=cloud"])
    assert result.exit_code == 1 and "--pin names node(s) nowhere that the graph does not have" in result.output
    result = CliRunner().invoke(cli, ["plan", target, "--budget", "0.002", "--pin", "solve=gpt-5"])
    assert result.exit_code == 1 and "unknown model 'gpt-5'" in result.output


def short_chain() -> StateGraph:
    """Three steps whose node code asks for short answers (the cap is carried to the pool model)."""
    from langchain_ollama import ChatOllama

    def step(name: str):
        def run(state: State) -> State:
            model = ChatOllama(model="any", num_predict=8, temperature=0)
            reply = model.invoke([HumanMessage(f"In one word, {name}: {state['question']}")])
            return {"notes": [str(reply.content)]}

        return run

    graph = StateGraph(State)
    for name in ("plan", "solve", "answer"):
        graph.add_node(name, step(name))
    graph.add_edge(START, "plan")
    graph.add_edge("plan", "solve")
    graph.add_edge("solve", "answer")
    graph.add_edge("answer", END)
    return graph


@pytest.mark.model
@pytest.mark.slow
def test_budgeted_runs_on_the_local_model_stay_within_budget(local_pool: ModelPool, tmp_path: Path) -> None:
    # "local" is free; "local-b" (the same server) is billed $0.5/$1 per 1M tokens. Before any
    # trace, the plan expects 500 tokens in and 200 out per call: the budget buys ~1.5 such calls.
    graph = short_chain()
    budget = 1.5 * local_pool["local-b"].cost(500, 200)
    app = optimize(graph, pool=local_pool, budget_usd=budget, traces=TraceStore(tmp_path / "traces.sqlite"))
    spends, billed = [], 0
    for index in range(20):
        app.invoke({"question": f"what is {index} plus one?", "notes": []})
        run = app.last_run
        spends.append(run.cost_usd)
        assert run.cost_usd <= budget + max(call.cost_usd for call in run.calls)
        billed += sum(call.model == "local-b" for call in run.calls)
    assert billed > 0  # the budget is spent where the plan says, not just avoided


def test_each_call_climbs_its_nodes_ladder_by_the_rules_pillars_difficulty(provider, tmp_path: Path) -> None:
    """Inside optimize(), a call's difficulty (the rules pillar's, recorded in the trace) picks
    its rung: at a 20 % cloud share a greeting stays local and a proof goes to the cloud."""
    pool = local_and_cloud(provider, price=5.0)
    graph = StateGraph(State)
    graph.add_node("answer", _step("answer"))
    graph.add_edge(START, "answer")
    graph.add_edge("answer", END)
    app = optimize(graph, pool=pool, cloud_share=0.2, traces=TraceStore(tmp_path / "traces.sqlite"))
    chosen = {}
    for question in ("hi", "Prove that the square root of two is irrational."):
        app.invoke({"question": question, "notes": []})
        (call,) = app.last_run.calls
        chosen[question] = (call.model, [s["pillar"] for s in call.signals], [s["difficulty"] for s in call.signals])
    assert chosen["hi"] == ("local", ["rules"], [0.2])
    assert chosen["Prove that the square root of two is irrational."] == ("cloud", ["rules"], [0.8])


def test_a_rolling_budget_over_many_runs_holds_on_top_of_the_per_run_one(provider, tmp_path: Path) -> None:
    """$0.03 for 20 runs of a chain whose per-run budget affords a $0.006 cloud call each time."""
    from graphroute import RollingBudget

    pool = local_and_cloud(provider)
    one_call = pool["cloud"].cost(500, 100)

    def total_spend(**rolling: RollingBudget) -> float:
        store = TraceStore(tmp_path / f"{len(rolling)}.sqlite")
        app = optimize(chain(), pool=pool, budget_usd=0.008, traces=store, replan_every=None, **rolling)
        for index in range(20):
            app.invoke({"question": f"question {index}", "notes": []})
        return sum(call.cost_usd for call in store.calls())

    kept = total_spend(rolling_budget=RollingBudget(total_usd=0.03, runs=20))
    unkept = total_spend()
    assert kept <= 0.03 + one_call
    assert unkept > 0.03 + one_call  # without it, the per-run budgets alone spend more


def test_a_rolling_budget_is_checked() -> None:
    from graphroute import RollingBudget
    from graphroute.errors import ConfigError

    for bad, message in [
        ({"total_usd": 0, "runs": 10}, "total_usd must be > 0"),
        ({"total_usd": 5.0}, "one horizon"),
        ({"total_usd": 5.0, "runs": 10, "period_s": 60}, "one horizon"),
        ({"total_usd": 5.0, "period_s": -1}, "period_s must be > 0"),
        ({"total_usd": 5.0, "runs": 2.5}, "whole number"),
    ]:
        with pytest.raises(ConfigError, match=message):
            RollingBudget(**bad)
    with pytest.raises(ConfigError, match="add budget_usd"):
        optimize(chain(), rolling_budget=RollingBudget(total_usd=5.0, runs=10))
    shared = RollingBudget(total_usd=5.0, period_s=86_400, ledger="redis://:s3cret-pw@cache:6379/0")
    assert "s3cret-pw" not in repr(shared) and "redis://:***@cache:6379/0" in repr(shared)


def test_a_pool_files_pin_holds_under_a_budget_and_the_plan_spends_around_it(provider, tmp_path: Path) -> None:
    """The budget affords one cloud call per run; the pin takes it, so every other call stays local."""
    pool = ModelPool.from_dict(
        {**local_and_cloud(provider).config.model_dump(), "routing": {"default": "local", "nodes": {"plan": "cloud"}}}
    )
    budget, one_call = 0.008, pool["cloud"].cost(500, 100)  # one cloud call: $0.006

    app = optimize(chain(), pool=pool, budget_usd=budget, traces=tmp_path / "t.sqlite", replan_every=None)
    runs = []
    for index in range(10):
        app.invoke({"question": f"question {index}", "notes": []})
        runs.append(app.last_run)

    for run in runs:
        models = {call.node: call.model for call in run.calls}
        assert models == {"plan": "cloud", "solve": "local", "answer": "local"}
        assert run.cost_usd <= budget + one_call
    plan_call = next(call for call in runs[-1].calls if call.node == "plan")
    assert plan_call.reason.startswith("pinned to cloud (kept under the budget); plan: ")
    assert app.plan.slots[("plan", 0)].ladder.models == ("cloud",)
    assert [row["ladder"] for row in app.plan.rows() if row["node"] == "plan"] == ["cloud (pinned)"]
    assert "pinned (kept whatever the budget; the plan spends the rest around them): plan = cloud" in str(app.plan)


def test_a_pin_that_alone_overspends_the_budget_is_named_and_still_kept(provider, tmp_path: Path) -> None:
    pool = local_and_cloud(provider)
    tiny = 0.001  # the cloud call the pin asks for costs about $0.006 (500 tokens in, 100 out)

    app = optimize(chain(), pool=pool, budget_usd=tiny, routes={"solve": "cloud"}, traces=tmp_path / "t.sqlite")
    app.invoke({"question": "q", "notes": []})

    assert "NOT reachable" in str(app.plan)
    assert "the pinned nodes alone expect $" in str(app.plan) and "raise the budget" in str(app.plan)
    assert {call.node: call.model for call in app.last_run.calls}["solve"] == "cloud"


def test_a_routes_pin_keeps_a_node_local_when_the_budget_would_buy_it_the_cloud(provider, tmp_path: Path) -> None:
    pool = local_and_cloud(provider)
    generous = 0.1  # every call could go to the cloud

    unpinned = optimize(chain(), pool=pool, budget_usd=generous, traces=tmp_path / "a.sqlite", replan_every=None)
    unpinned.invoke({"question": "q", "notes": []})
    pinned = optimize(
        chain(),
        pool=pool,
        budget_usd=generous,
        routes={"answer": "local"},
        traces=tmp_path / "b.sqlite",
        replan_every=None,
    )
    pinned.invoke({"question": "q", "notes": []})

    assert {call.node: call.model for call in unpinned.last_run.calls}["answer"] == "cloud"
    assert {call.node: call.model for call in pinned.last_run.calls} == {
        "plan": "cloud",
        "solve": "cloud",
        "answer": "local",
    }
