"""The workflow benchmark gives the same figures from one run to the next, on any number of jobs.

map_reduce's six workers are ``Send`` copies; the router's decision for one copy depends on
the run's earlier calls, so the benchmark runs each run's copies in the order the planner sent
them. Its strategy settings run on worker processes (``--jobs``), each building its router
afresh on its seed's fixed runs. Two runs of the benchmark on the same data and seeds — one
here, one as a command on two worker processes — must agree point for point.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.traces.test_replay_workflow import DATA, ROOT, load_benchmark

pytestmark = pytest.mark.skipif(not (DATA / "train.json").exists(), reason="needs shared/data/llmrouter")


def test_map_reduce_figures_repeat_exactly_on_any_number_of_jobs(tmp_path: Path) -> None:
    records = json.loads((DATA / "train.json").read_text(encoding="utf-8"))
    subset = [r for cluster in (0, 1, 2) for r in [x for x in records if x["cluster_id"] == cluster][:100]]
    (tmp_path / "outcomes.json").write_text(json.dumps(subset), encoding="utf-8")
    arguments = [
        "--outcomes", str(tmp_path / "outcomes.json"), "--models", str(DATA / "models.json"),
        "--seeds", "2", "--runs", "30", "--points", "4", "--refine", "1", "--workflows", "map_reduce",
    ]  # fmt: skip

    here = load_benchmark().main([*arguments, "--jobs", "1", "--json", str(tmp_path / "here.json")])
    command = [sys.executable, str(ROOT / "benchmarks" / "workflows.py"), *arguments]
    forked = subprocess.run([*command, "--jobs", "2", "--json", str(tmp_path / "forked.json")], cwd=ROOT, check=False)

    assert here == 0 and forked.returncode == 0
    first, second = (
        json.loads((tmp_path / f"{name}.json").read_text(encoding="utf-8"))["workflows"]["map_reduce"]
        for name in ("here", "forked")
    )
    assert first["curves"] == second["curves"]
    assert first["points"] == second["points"]
    assert first["saving_vs_per_call"] == second["saving_vs_per_call"]
