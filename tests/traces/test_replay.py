"""Replay: recorded runs of the example app re-costed and re-scored under other plans."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from langchain_core.messages import AIMessage, HumanMessage
from typer.testing import CliRunner

from graphroute import ModelPool, TraceStore, optimize
from graphroute.cli import app as cli
from graphroute.feedback import feedback
from graphroute.pillars.encoders import normalise
from graphroute.pillars.semantic import KNNSuccessEstimator, SemanticPillar, SemanticRouter
from graphroute.traces.outcomes import OutcomeIndex, load_outcomes
from graphroute.traces.plans import RecordedPlan, load_plan, strategy
from graphroute.traces.quality import call_details
from graphroute.traces.records import CallRecord
from graphroute.traces.render import money
from graphroute.traces.replay import SuccessModelEstimator, replay
from tests.traces.conftest import BIG_PRICES, Recorded, load_example, write_plan

RECORDED_PINS = {"plan": "big", "write_report": "big"}


def table_rows(output: str) -> dict[str, list[str]]:
    """The rich table's body rows, by plan name."""
    rows = {}
    for line in output.splitlines():
        cells = [cell.strip() for cell in line.split("│")[1:-1]]
        if len(cells) == 8 and cells[0] and cells[0] != "plan":
            rows[cells[0]] = cells
    return rows


def three_plans(directory: Path) -> list[Path]:
    return [
        write_plan(directory, "as-recorded", "small", RECORDED_PINS),
        write_plan(directory, "all-small", "small", {}),
        write_plan(directory, "cloud-writer", "small", {"write_report": "big"}),
    ]


def test_three_plans_print_a_table_and_write_a_plot(recorded: Recorded, tmp_path: Path) -> None:
    png = tmp_path / "cost-quality.png"
    plan_args = [arg for plan in three_plans(tmp_path) for arg in ("--plan", str(plan))]

    result = CliRunner().invoke(
        cli, ["replay", str(recorded.path), *plan_args, "--strategy", "all-cloud", "--plot", str(png)]
    )

    assert result.exit_code == 0, result.output
    rows = table_rows(result.output)
    assert list(rows) == ["recorded", "as-recorded", "all-small", "cloud-writer", "all-cloud"]
    recorded_cost = math.fsum(call.cost_usd for call in recorded.store().calls())
    assert rows["recorded"][1] == money(recorded_cost)
    assert rows["as-recorded"][1:3] == [money(recorded_cost), "="]
    assert rows["all-small"][1:3] == ["$0", "−100.0%"]
    assert rows["all-small"][6] == "0%" and rows["all-cloud"][6] == "100%"
    assert rows["cloud-writer"][7] == "small 8, big 6"
    assert all(row[5] == "unknown: no outcomes" for row in rows.values())  # nothing known, nothing invented
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000


def test_recorded_cost_is_exactly_the_sum_of_the_traced_calls(recorded: Recorded, tmp_path: Path) -> None:
    calls = recorded.store().calls()
    as_recorded = load_plan(write_plan(tmp_path, "as-recorded", "small", RECORDED_PINS))

    [baseline, replayed, cloud] = replay(calls, [RecordedPlan(), as_recorded, strategy("all-cloud", recorded.pool)])

    assert baseline.cost_usd == math.fsum(call.cost_usd for call in calls) > 0
    assert replayed.cost_usd == baseline.cost_usd  # same routes, same prices: the same figure, bit for bit
    assert replayed.models == baseline.models == {"big": 9, "small": 5}
    expected_cloud = math.fsum(
        (call.input_tokens * BIG_PRICES[0] + call.output_tokens * BIG_PRICES[1]) / 1_000_000 for call in calls
    )
    assert cloud.cost_usd == pytest.approx(expected_cloud, rel=1e-12)


def write_outcomes(recorded: Recorded, path: Path) -> Path:
    """Known results for both models on every call, as a workflow benchmark would write them.

    ``big`` succeeds everywhere; ``small`` answers the research questions but fails at planning
    and report writing. Calls are named by id, and the report subgraph by run and node.
    """
    lines = []
    for call in recorded.store().calls():
        if call.node.startswith("write_report"):
            continue
        lines.append({"call_id": call.call_id, "model": "big", "score": 1})
        lines.append({"call_id": call.call_id, "model": "small", "score": 0 if call.node == "plan" else 1})
    for run_id in recorded.run_ids:
        lines.append({"run_id": run_id, "node": "write_report", "model": "big", "score": 1.0})
        lines.append({"run_id": run_id, "node": "write_report", "model": "small", "score": 0.0})
    path.write_text("# benchmark outcomes\n" + "\n".join(json.dumps(line) for line in lines) + "\n")
    return path


def test_known_outcomes_make_quality_exact_and_match_the_benchmark(recorded: Recorded, tmp_path: Path) -> None:
    outcomes = write_outcomes(recorded, tmp_path / "outcomes.jsonl")
    plan_args = [arg for plan in three_plans(tmp_path) for arg in ("--plan", str(plan))]

    result = CliRunner().invoke(cli, ["replay", str(recorded.path), *plan_args, "--outcomes", str(outcomes)])

    assert result.exit_code == 0, result.output
    rows = table_rows(result.output)
    # 14 calls: 3 plan, 5 research/answer, 6 report. Benchmark figures: mean success per call.
    expected = {"recorded": 14 / 14, "as-recorded": 14 / 14, "all-small": 5 / 14, "cloud-writer": 11 / 14}
    assert {name: (row[4], row[5]) for name, row in rows.items()} == {
        name: (f"{value:.3f}", "exact") for name, value in expected.items()
    }
    store = recorded.store()
    index = OutcomeIndex.build(store.calls(), store.feedback(), extra=load_outcomes(outcomes))
    [all_small] = replay(store.calls(), [load_plan(tmp_path / "all-small.toml")], index=index)
    assert (all_small.quality, all_small.quality_basis, all_small.quality_known_share) == (5 / 14, "exact", 1.0)


def test_quality_without_a_known_result_is_marked_as_estimated(recorded: Recorded, tmp_path: Path) -> None:
    for run_id in recorded.run_ids:
        feedback(run_id, 1.0, traces=recorded.path)  # scores every recorded answer of its recorded model
    feedback(recorded.run_ids[0], 0.0, node="research", traces=recorded.path)
    plan_args = [arg for plan in three_plans(tmp_path) for arg in ("--plan", str(plan))]

    result = CliRunner().invoke(cli, ["replay", str(recorded.path), *plan_args])

    rows = table_rows(result.output)
    assert rows["recorded"][4:6] == [f"{12 / 14:.3f}", "exact"]
    assert rows["as-recorded"][4:6] == [f"{12 / 14:.3f}", "exact"]
    # all-small moves 9 calls to a model only ever scored on research and answers: estimated
    assert rows["all-small"][4].startswith("~") and rows["all-small"][5] == "estimated (36% known)"
    assert "~ = estimated" in result.output


def test_a_jsonl_export_replays_like_the_database(recorded: Recorded, tmp_path: Path) -> None:
    runner = CliRunner()
    export = tmp_path / "week.jsonl"
    assert runner.invoke(cli, ["export", str(recorded.path), "--out", str(export)]).exit_code == 0
    plan = str(write_plan(tmp_path, "all-small", "small", {}))

    from_db = table_rows(runner.invoke(cli, ["replay", str(recorded.path), "--plan", plan]).output)
    from_export = table_rows(runner.invoke(cli, ["replay", str(export), "--plan", plan]).output)

    assert from_db == from_export and len(from_db) == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "pass at least one --plan FILE or --strategy NAME"),
        (["--strategy", "all-gpu"], "unknown strategy 'all-gpu'"),
        (["--plan", "missing.toml"], "plan file not found"),
    ],
)
def test_replay_explains_what_to_fix(recorded: Recorded, args: list[str], message: str) -> None:
    result = CliRunner().invoke(cli, ["replay", str(recorded.path), *args])

    assert result.exit_code == 1
    assert message in result.output


@pytest.mark.model
def test_replay_of_the_demo_app_recorded_on_the_local_model(local_pool: ModelPool, tmp_path: Path) -> None:
    traces = tmp_path / "demo.sqlite"
    app = optimize(load_example().build_graph(), pool=local_pool, routes={"plan": "local-b"}, traces=traces)
    app.invoke({"question": "What is the capital of France?"})
    app.store.close()
    models = {"local": local_pool["local"], "local-b": local_pool["local-b"]}
    pool_toml = "\n".join(
        f'[models.{name}]\nprovider = "llamacpp"\nmodel = "{spec.model}"\n'
        f"input_price = {spec.input_price}\noutput_price = {spec.output_price}\n"
        for name, spec in models.items()
    )
    pool_file = tmp_path / "pool.toml"
    pool_file.write_text(
        pool_toml + '[models.cloud]\nprovider = "openai"\nmodel = "gpt-4o"\n'
        'api_key_env = "OPENAI_API_KEY"\ninput_price = 2.5\noutput_price = 10.0\n'
    )
    plans = []
    for name, pins in {"pins": 'plan = "local-b"', "free": "", "cloud-report": 'write_report = "cloud"'}.items():
        path = tmp_path / f"{name}.toml"
        path.write_text(f'[routing]\ndefault = "local"\n[routing.nodes]\n{pins}\n')
        plans += ["--plan", str(path)]
    png = tmp_path / "plot.png"

    result = CliRunner().invoke(cli, ["replay", str(traces), *plans, "--pool", str(pool_file), "--plot", str(png)])

    assert result.exit_code == 0, result.output
    rows = table_rows(result.output)
    calls = app.store.__class__(traces).calls()
    assert rows["recorded"][1] == money(math.fsum(call.cost_usd for call in calls))
    assert rows["pins"][2] == "=" and rows["free"][1] == "$0"
    assert rows["cloud-report"][6] != "0%"
    assert png.stat().st_size > 10_000


class KeywordEncoder:
    """A tiny deterministic encoder (graphroute's ``Encoder`` protocol): sums or words?"""

    name = "keywords-v1"
    dim = 2

    def encode(self, texts: list[str]) -> np.ndarray:
        rows = [[1.0, 0.1] if any(ch.isdigit() for ch in text) else [0.1, 1.0] for text in texts]
        return normalise(np.asarray(rows, dtype=np.float32))


def test_a_success_model_estimates_answers_no_one_has_scored(trace_store: TraceStore, tmp_path: Path) -> None:
    encoder = KeywordEncoder()
    train = ["What is 2 + 2?", "What is 17 * 3?", "Say hi.", "Name a colour."]
    outcomes = np.array([[0, 1], [0, 1], [1, 1], [1, 1]], dtype=float)  # the weak model fails at sums
    fitted = KNNSuccessEstimator(k=2, prior_strength=0.0).fit(encoder.encode(train), outcomes, ["weak", "strong"])
    pillar = SemanticPillar(SemanticRouter(fitted, encoder_name=encoder.name, weak=["weak"]), encoder=encoder)
    trace_store.start_run("r1", "g")
    for question in ("What is 40 + 2?", "Say hello."):
        details = call_details([HumanMessage(question)], AIMessage("ok"))
        trace_store.record_call(CallRecord("r1", "answer", None, "big", input_tokens=9, output_tokens=1, **details))
    calls = trace_store.calls()
    estimator = SuccessModelEstimator(pillar, {"small": "weak", "big": "strong"})

    [all_small] = replay(calls, [load_plan(write_plan(tmp_path, "all-small", "small", {}))], estimator=estimator)

    assert all_small.quality_basis == "estimated" and all_small.quality_known_share == 0.0
    assert all_small.quality == pytest.approx((0.0 + 1.0) / 2)


def add_failed_run(recorded: Recorded) -> None:
    """A fourth run whose planning call failed at the provider: the call has no answer."""
    store = recorded.store()
    store.start_run("failed-run", "g")
    ask = [HumanMessage("What is the tallest mountain?")]
    failed = CallRecord(
        "failed-run", "plan", None, "big", input_tokens=9, error="ProviderError: 500", **call_details(ask, None, "500")
    )
    store.record_call(failed)
    store.end_run("failed-run", "error", "ProviderError: 500")
    store.close()


def test_one_failed_call_counts_as_a_failure_for_that_call_only(recorded: Recorded) -> None:
    for run_id in recorded.run_ids:
        feedback(run_id, 1.0, traces=recorded.path)
    add_failed_run(recorded)
    store = recorded.store()
    calls = store.calls()
    index = OutcomeIndex.build(calls, store.feedback(), store.runs())

    [as_recorded, all_cloud] = replay(calls, [RecordedPlan(), strategy("all-cloud", recorded.pool)], index=index)

    assert (as_recorded.quality, as_recorded.quality_basis) == (14 / 15, "exact")
    # the 5 calls moved to big are estimated from big's scored answers (all good), not from its failure
    assert all_cloud.quality == pytest.approx(14 / 15) and all_cloud.quality_basis == "estimated"


def test_a_failed_call_is_no_estimate_for_the_calls_no_one_scored(recorded: Recorded, tmp_path: Path) -> None:
    add_failed_run(recorded)
    all_big = write_plan(tmp_path, "all-big", "big", {})

    result = CliRunner().invoke(cli, ["replay", str(recorded.path), "--plan", str(all_big)])

    assert result.exit_code == 0, result.output
    rows = table_rows(result.output)
    # not ~0.000: the one failure is neither the estimate of the other 14 calls nor their mean
    assert rows["recorded"][4:6] == rows["all-big"][4:6] == ["n/a", "unknown: 14 of 15 unscored"]
    store = recorded.store()
    [as_recorded] = replay(store.calls(), [RecordedPlan()], index=OutcomeIndex.build(store.calls(), store.feedback()))
    assert (as_recorded.quality, as_recorded.quality_known_share, as_recorded.unscored_calls) == (None, 1 / 15, 14)


def test_another_run_failing_on_the_same_request_leaves_a_good_answer_unscored(trace_store: TraceStore) -> None:
    ask = [HumanMessage("Say hi.")]
    trace_store.start_run("r1", "g")
    good = CallRecord("r1", "answer", None, "small", **call_details(ask, AIMessage("Hi!")))
    trace_store.record_call(good)
    trace_store.start_run("r2", "g")
    trace_store.record_call(CallRecord("r2", "answer", None, "small", error="timeout", **call_details(ask, None, "x")))
    trace_store.record_call(CallRecord("r2", "answer", None, "big", **call_details(ask, AIMessage("Hello."))))

    index = OutcomeIndex.build(trace_store.calls(), trace_store.feedback())

    assert index.score(good, "small") is None  # its own answer did not fail
    assert index.score(good, "big") is None  # big's answer to it was fine, and no one scored it
