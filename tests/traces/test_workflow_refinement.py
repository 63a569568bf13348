"""The workflow benchmark refines its λ sweep where a curve has a cost gap.

A geometric λ grid wide enough for any pool leaves stretches of a curve without a point, and on
the convex hull such a stretch is a straight chord: the strategy without a point there looks
worse than it is. The benchmark adds the geometric midpoint of two neighbouring settings whose
seed-averaged costs differ by more than ``REFINE_GAP`` times, by the same rule for every swept
strategy, so the comparison is between strategies and not between where their grids fell.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from tests.traces.test_replay_workflow import DATA, load_benchmark

benchmark = load_benchmark()


def test_a_setting_is_added_between_neighbours_whose_costs_jump() -> None:
    lams = [4.0, 1.0, 8.0, 2.0]  # in any order
    points = [[40.0, 0.62], [100.0, 0.70], [38.0, 0.61], [90.0, 0.69]]

    added = benchmark.refinements(lams, points, gap=1.25)

    assert added == [pytest.approx(math.sqrt(2.0 * 4.0))]  # 90 → 40; 100 → 90 and 40 → 38 are close


def test_a_curve_without_gaps_needs_no_more_settings() -> None:
    assert benchmark.refinements([1.0, 2.0, 3.0], [[100.0, 0.7], [90.0, 0.69], [80.0, 0.68]], gap=1.25) == []


@pytest.mark.skipif(not (DATA / "train.json").exists(), reason="needs shared/data/llmrouter")
def test_every_swept_strategy_is_refined_by_the_same_rule(tmp_path: Path) -> None:
    records = json.loads((DATA / "train.json").read_text(encoding="utf-8"))
    subset = [r for cluster in (0, 1, 2) for r in [x for x in records if x["cluster_id"] == cluster][:60]]
    (tmp_path / "outcomes.json").write_text(json.dumps(subset), encoding="utf-8")
    out = tmp_path / "results.json"
    code = benchmark.main([
        "--outcomes", str(tmp_path / "outcomes.json"), "--models", str(DATA / "models.json"),
        "--seeds", "2", "--runs", "20", "--points", "4", "--refine", "1", "--jobs", "1", "--workflows", "critic_loop",
        "--json", str(out),
    ])  # fmt: skip
    assert code == 0
    document = json.loads(out.read_text(encoding="utf-8"))
    curves = document["workflows"]["critic_loop"]["curves"]
    refined = 0
    for strategy in ("holistic", "per_call"):
        lams = document["meta"]["lambdas"]["critic_loop"][strategy]
        assert len(lams) == len(curves[strategy])  # one seed-averaged point per setting
        base, added = lams[:4], lams[4:]
        base_points = curves[strategy][:4]
        # Exactly the midpoints of the base grid's cost gaps were added, and nothing else.
        assert added == pytest.approx(benchmark.refinements(base, base_points))
        for lam in added:
            below, above = max(x for x in base if x < lam), min(x for x in base if x > lam)
            assert lam == pytest.approx(float(np.sqrt(below * above)))
        refined += len(added)
    assert refined > 0  # four settings over the whole λ range leave gaps on this file
