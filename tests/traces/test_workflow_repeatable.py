"""The workflow benchmark gives the same figures from one run to the next.

map_reduce's six workers are ``Send`` copies; the router's decision for one copy depends on
the run's earlier calls, so the benchmark runs each run's copies in the order the planner sent
them. Two runs of the benchmark on the same data and seed must agree point for point.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.traces.test_replay_workflow import DATA, load_benchmark

pytestmark = pytest.mark.skipif(not (DATA / "train.json").exists(), reason="needs shared/data/llmrouter")


def test_map_reduce_figures_repeat_exactly(tmp_path: Path) -> None:
    records = json.loads((DATA / "train.json").read_text(encoding="utf-8"))
    subset = [r for cluster in (0, 1, 2) for r in [x for x in records if x["cluster_id"] == cluster][:100]]
    (tmp_path / "outcomes.json").write_text(json.dumps(subset), encoding="utf-8")
    benchmark = load_benchmark()
    figures = []
    for attempt in (1, 2):
        out = tmp_path / f"results{attempt}.json"
        code = benchmark.main([
            "--outcomes", str(tmp_path / "outcomes.json"), "--models", str(DATA / "models.json"),
            "--seeds", "1", "--runs", "40", "--points", "4", "--workflows", "map_reduce", "--json", str(out),
        ])  # fmt: skip
        assert code == 0
        figures.append(json.loads(out.read_text(encoding="utf-8"))["workflows"]["map_reduce"])
    first, second = figures
    assert first["curves"] == second["curves"]
    assert first["points"] == second["points"]
    assert first["saving_vs_per_call"] == second["saving_vs_per_call"]
