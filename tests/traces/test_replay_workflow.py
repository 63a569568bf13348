"""The workflow benchmark's runs, replayed: ``graphroute replay`` gets the benchmark's own figures.

A small slice of the LLMRouter outcome data (100 questions from each of its 3 task clusters),
one seed, a few runs per strategy: ``benchmarks/workflows.py --traces DIR`` writes the trace
database, outcome file and pool, and replay must report exact quality and the same cost and
per-call success as the benchmark measured for the same runs.
"""

from __future__ import annotations

import importlib.util
import json
import math
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from typer.testing import CliRunner

from graphroute import ModelPool
from graphroute.cli import app as cli
from graphroute.traces.outcomes import OutcomeIndex, load_outcomes
from graphroute.traces.plans import strategy
from graphroute.traces.render import money
from graphroute.traces.replay import PlanResult, replay
from graphroute.traces.store import TraceStore

ROOT = Path(__file__).parents[2]
DATA = ROOT.parent / "shared" / "data" / "llmrouter"
WORKFLOWS = ("chain", "critic_loop")

pytestmark = pytest.mark.skipif(not (DATA / "train.json").exists(), reason="needs shared/data/llmrouter")


def load_benchmark() -> ModuleType:
    spec = importlib.util.spec_from_file_location("workflows_benchmark", ROOT / "benchmarks" / "workflows.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def benchmark_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any], dict[str, Any]]:
    """One seed of the benchmark on 300 questions, with ``--traces``: (traces dir, figures, results)."""
    base = tmp_path_factory.mktemp("workflow-replay")
    records = json.loads((DATA / "train.json").read_text(encoding="utf-8"))
    subset = [r for cluster in (0, 1, 2) for r in [x for x in records if x["cluster_id"] == cluster][:100]]
    (base / "outcomes.json").write_text(json.dumps(subset), encoding="utf-8")
    traces = base / "traces"
    code = load_benchmark().main([
        "--outcomes", str(base / "outcomes.json"), "--models", str(DATA / "models.json"),
        "--seeds", "1", "--runs", "15", "--points", "3", "--jobs", "1", "--workflows", ",".join(WORKFLOWS),
        "--json", str(base / "results.json"), "--traces", str(traces),
    ])  # fmt: skip
    assert code == 0
    figures = json.loads((traces / "figures.json").read_text(encoding="utf-8"))
    results = json.loads((base / "results.json").read_text(encoding="utf-8"))
    return traces, figures, results


def replayed(traces: Path, graph: str, *names: str) -> dict[str, PlanResult]:
    """What ``graphroute replay`` computes for the runs of one strategy (recorded + named strategies)."""
    pool = ModelPool.from_toml(traces / "pool.toml")
    store = TraceStore(traces / "traces.sqlite")
    calls = store.calls(graph=graph)
    index = OutcomeIndex.build(
        calls, store.feedback(), store.runs(graph), extra=load_outcomes(traces / "outcomes.jsonl")
    )
    plans = [strategy("recorded", pool), *(strategy(name, pool) for name in names)]
    results = {result.name: result for result in replay(calls, plans, index=index)}
    store.close()
    return results


@pytest.mark.parametrize("workflow", WORKFLOWS)
def test_replayed_points_equal_the_benchmark_figures(benchmark_run: Any, workflow: str) -> None:
    traces, figures, results = benchmark_run
    points = results["workflows"][workflow]["points"]
    for label, name in (("all_cloud", "all-cloud"), ("all_local", "all-local")):
        graph = f"{workflow}/{label}"
        measured = figures["graphs"][graph]
        assert [measured["cost_per_run"], measured["success"]] == pytest.approx(points[label], rel=1e-12)

        out = replayed(traces, graph, name)

        for row in (out["recorded"], out[name]):
            assert row.quality_basis == "exact"
            assert row.runs == measured["runs"] and row.calls == measured["calls"]
            assert row.cost_usd == pytest.approx(measured["cost_usd"], rel=1e-9)
            assert row.quality == pytest.approx(measured["call_success"], rel=1e-12)
        assert out[name].description == f"every call on {figures[f'{label}_model']}"


@pytest.mark.parametrize("workflow", WORKFLOWS)
def test_every_swept_setting_replays_to_its_own_figures(benchmark_run: Any, workflow: str) -> None:
    traces, figures, results = benchmark_run
    curves = results["workflows"][workflow]["curves"]
    for strategy_name in ("holistic", "per_call"):
        for i, (cost_per_run, success) in enumerate(curves[strategy_name]):
            measured = figures["graphs"][f"{workflow}/{strategy_name}@{i:02d}"]
            assert [measured["cost_per_run"], measured["success"]] == pytest.approx([cost_per_run, success])

            row = replayed(traces, f"{workflow}/{strategy_name}@{i:02d}")["recorded"]

            assert row.quality_basis == "exact"
            assert row.cost_usd == pytest.approx(measured["cost_usd"], rel=1e-9)
            assert row.quality == pytest.approx(measured["call_success"], rel=1e-12)


def test_a_fixed_shape_workflow_replayed_under_all_cloud_costs_what_all_cloud_did(benchmark_run: Any) -> None:
    """Every strategy ran the same tasks, and a chain makes the same calls whatever the models:
    replaying the per-call router's runs as all-cloud gives the all-cloud runs' exact figures."""
    traces, figures, _ = benchmark_run
    all_cloud = figures["graphs"]["chain/all_cloud"]

    out = replayed(traces, "chain/per_call@01", "all-cloud")["all-cloud"]

    assert out.quality_basis == "exact"
    assert out.cost_usd == pytest.approx(all_cloud["cost_usd"], rel=1e-9)
    assert out.quality == pytest.approx(all_cloud["call_success"], rel=1e-12)


def test_the_replay_command_shows_exact_quality_and_the_benchmark_cost(benchmark_run: Any) -> None:
    traces, figures, _ = benchmark_run
    measured = figures["graphs"]["critic_loop/all_local"]

    result = CliRunner().invoke(cli, [
        "replay", str(traces / "traces.sqlite"), "--pool", str(traces / "pool.toml"),
        "--outcomes", str(traces / "outcomes.jsonl"), "--graph", "critic_loop/all_local",
        "--strategy", "all-cloud", "--strategy", "all-local",
    ])  # fmt: skip

    assert result.exit_code == 0, result.output
    rows = {cells[0]: cells for cells in (
        [c.strip() for c in line.split("│")[1:-1]] for line in result.output.splitlines()
    ) if len(cells) == 8 and cells[0] in ("recorded", "all-cloud", "all-local")}  # fmt: skip
    assert set(rows) == {"recorded", "all-cloud", "all-local"}
    assert all(cells[5] == "exact" for cells in rows.values())
    assert rows["all-local"][1] == rows["recorded"][1] == money(measured["cost_usd"])
    assert math.isclose(float(rows["all-local"][4]), measured["call_success"], abs_tol=5e-4)
