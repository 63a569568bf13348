"""The workflow benchmark runs on an outcome file it has never seen, gaps included.

A held-out file of the same format may name its task clusters differently, leave some
(question, model) scores out or null, and score models ``models.json`` does not list. The
benchmark must still pick all-cloud by measured accuracy, plan on finite expectations, and run
only on questions every model was scored on.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from tests.traces.test_replay_workflow import DATA, load_benchmark

pytestmark = pytest.mark.skipif(not (DATA / "train.json").exists(), reason="needs shared/data/llmrouter")


def run_benchmark(records: list[dict[str, Any]], tmp_path: Path, *options: str) -> dict[str, Any]:
    """The benchmark's figures on an outcome file of ``records`` (one seed, one process)."""
    outcomes, out = tmp_path / "heldout.json", tmp_path / "results.json"
    outcomes.write_text(json.dumps(records), encoding="utf-8")
    code = load_benchmark().main([
        "--outcomes", str(outcomes), "--models", str(DATA / "models.json"),
        "--seeds", "1", "--jobs", "1", "--json", str(out), *options,
    ])  # fmt: skip
    assert code == 0
    document: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    return document


def test_a_file_with_gaps_and_new_cluster_names_gives_finite_figures(tmp_path: Path) -> None:
    records = json.loads((DATA / "train.json").read_text(encoding="utf-8"))
    names = {0: "reasoning", 1: "code", 2: "facts"}
    subset = []
    for cluster, name in names.items():
        for i, record in enumerate([x for x in records if x["cluster_id"] == cluster][:100]):
            scores = dict(record["scores"], **{"unlisted-model-13b": 1.0})
            if i % 10 == 0:
                del scores["gemma-2-9b-it"]  # the cheapest model, unmeasured on a tenth of the questions
            if i % 10 == 5:
                scores["llama-3.1-nemotron-51b-instruct"] = None
            subset.append({"question": record["question"], "cluster_id": name, "scores": scores})
    document = run_benchmark(subset, tmp_path, "--runs", "30", "--points", "3", "--workflows", "chain,critic_loop")
    for name in ("chain", "critic_loop"):
        result = document["workflows"][name]
        local, cloud = result["points"]["all_local"], result["points"]["all_cloud"]
        assert cloud[0] > 3 * local[0]  # all-cloud is a cloud model, not the unmeasured cheap one
        for curve in result["curves"].values():
            assert all(math.isfinite(cost) and 0.0 <= success <= 1.0 for cost, success in curve)
        assert math.isfinite(result["saving_vs_per_call"]) and math.isfinite(result["worst_ratio"])
    assert document["meta"]["models_used"]["chain"]["all_local"] == "gemma-2-9b-it"
    assert document["meta"]["runs"] == {"chain": 30, "critic_loop": 30}  # --runs overrides every workflow's default
    # The default estimates: kNN (30 neighbours) on MiniLM under the stacked stage, fitted to full
    # scores (see DEFAULT_STACK).
    assert document["meta"]["estimator"] == "knn {'k': 30}, stacked on all-MiniLM-L6-v2+shape2, fitted to success"
    # Recalibration by the run's context is on by default: the plan read estimates by the file's
    # renamed clusters.
    assert document["meta"]["recalibrate"] is True


def test_every_workflow_has_a_default_run_count() -> None:
    bench = load_benchmark()
    assert set(bench.RUNS) == set(bench.WORKFLOWS)
    # critic_loop's success range is the narrowest, so it gets the most runs (see RUNS)
    assert bench.RUNS["critic_loop"] == max(bench.RUNS.values())


def test_a_file_too_small_to_stack_runs_on_the_plain_estimates(tmp_path: Path) -> None:
    records = json.loads((DATA / "train.json").read_text(encoding="utf-8"))[:16]  # 8 training questions
    document = run_benchmark(records, tmp_path, "--runs", "10", "--points", "3", "--workflows", "chain")
    assert document["meta"]["unstacked_seeds"] == [0]  # said, not silently changed
    assert math.isfinite(document["workflows"]["chain"]["saving_vs_per_call"])
