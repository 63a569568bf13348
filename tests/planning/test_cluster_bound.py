"""``benchmarks/cluster_bound.py`` on a file it has never seen, whose bound is worked out by hand."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from graphroute.planning import TokenCounter

ROOT = Path(__file__).parents[2]
QUESTION = "What is two plus two?"


def test_knowing_the_cluster_buys_the_cheap_model_where_it_is_enough(tmp_path: Path) -> None:
    # Cluster "easy": both models always right. Cluster "hard": only the big one ever is.
    records = [{"question": QUESTION, "cluster_id": "easy", "scores": {"small": 1, "big": 1}}] * 4
    records += [{"question": QUESTION, "cluster_id": "hard", "scores": {"small": 0, "big": 1}}] * 4
    (tmp_path / "outcomes.json").write_text(json.dumps(records))
    models = {"small": {"input_price": 1.0, "output_price": 1.0}, "big": {"input_price": 10.0, "output_price": 10.0}}
    (tmp_path / "models.json").write_text(json.dumps(models))

    script = ROOT / "benchmarks" / "cluster_bound.py"
    files = ["--outcomes", tmp_path / "outcomes.json", "--models", tmp_path / "models.json"]
    subprocess.run(
        [sys.executable, script, *files, "--json", tmp_path / "out.json"],
        check=True,
        cwd=ROOT,
        capture_output=True,
    )
    figures = json.loads((tmp_path / "out.json").read_text())
    assert figures["all_cloud"] == "big"

    q = TokenCounter()(QUESTION)  # a call costs (question + output tokens) × price: small 1, big 10

    def ratio(easy: float, hard: float, cloud: float) -> float:  # half the runs in each cluster
        return (easy + hard) / 2 / cloud

    chain = [q + out for out in (200, 400, 100, 150)]
    # easy: every step small; hard: every step must be big (one small step and the run fails).
    expected_chain = ratio(sum(chain), 10 * sum(chain), 10 * sum(chain))
    # easy: all small; hard: planner, aggregator and exactly the 4 workers the quorum needs big.
    planner, worker, aggregate = q + 200, q + 300, q + 400
    cloud = 10 * (planner + 6 * worker + aggregate)
    expected_map = ratio(planner + 6 * worker + aggregate, 10 * (planner + 4 * worker + aggregate) + 2 * worker, cloud)
    # The first answer is right on both plans (small in easy, big in hard): no critic is needed,
    # so the small one judges; all-cloud pays a big critic.
    solve, critic = q + 400, q + 100
    expected_critic = ratio(solve + critic, 10 * solve + critic, 10 * (solve + critic))

    workflows = figures["workflows"]
    assert workflows["chain"]["all_cloud_success"] == pytest.approx(1.0)
    assert workflows["chain"]["cost_to_match_all_cloud"] == pytest.approx(expected_chain)
    assert workflows["map_reduce"]["cost_to_match_all_cloud"] == pytest.approx(expected_map)
    assert workflows["critic_loop"]["cost_to_match_all_cloud"] == pytest.approx(expected_critic)
