"""RouteLLM's metrics on hand-checkable cases and on the real decontaminated sets."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from graphroute.evaluation.data import load_routellm_csv
from graphroute.evaluation.metrics import group_folds, oracle_curve, random_summary, routing_curve
from graphroute.evaluation.training import find_training_data

# Ten prompts: the weak model solves the first six, the strong one all but the last.
WEAK = np.array([1, 1, 1, 1, 1, 1, 0, 0, 0, 0], dtype=float)
STRONG = np.array([1, 1, 1, 1, 1, 1, 1, 1, 1, 0], dtype=float)


def test_a_perfect_ranking_recovers_the_gap_with_few_strong_calls() -> None:
    scores = np.array([0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.9, 0.8, 0.7, 0.6])
    curve = routing_curve(scores, WEAK, STRONG)
    assert curve.weak == 0.6 and curve.strong == 0.9
    assert curve.strong_fraction[0] == 0.0 and curve.strong_fraction[-1] == 1.0
    summary = curve.summary()
    # Three useful strong calls among the top four scores: half the gap needs 1.5 calls = 15 %.
    assert summary["cpt50"] == pytest.approx(15.0)
    assert summary["apgr"] > 0.8


def test_a_reversed_ranking_is_worse_than_random() -> None:
    scores = -np.array([0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.9, 0.8, 0.7, 0.6])
    assert routing_curve(scores, WEAK, STRONG).apgr() < 0.5


def test_oracle_spends_strong_calls_only_where_they_help() -> None:
    curve = oracle_curve(WEAK, STRONG)
    assert curve.quality[0] == pytest.approx(0.6)
    assert curve.quality[3] == pytest.approx(0.9)  # 30 % strong calls fix all three
    assert curve.cpt(0.5) == pytest.approx(0.15)


def test_folds_keep_duplicate_questions_together() -> None:
    prompts = [f"q{i % 37}" for i in range(200)]
    folds = group_folds(prompts, 5, seed=3)
    assert set(folds) == {0, 1, 2, 3, 4}
    for prompt in set(prompts):
        assert len({folds[i] for i, p in enumerate(prompts) if p == prompt}) == 1


@pytest.fixture(scope="module")
def shared_data() -> Path:
    path = find_training_data()
    if path is None or not (path / "routellm").is_dir():
        pytest.skip("shared/data (RouteLLM outcomes) not available")
    return path


@pytest.mark.parametrize(("benchmark", "rows", "oracle_cpt50"), [("mmlu", 14_037, 6.2), ("gsm8k", 1_307, 11.0)])
def test_reference_figures_on_the_real_sets(shared_data: Path, benchmark: str, rows: int, oracle_cpt50: float) -> None:
    table = load_routellm_csv(shared_data / "routellm" / benchmark)
    assert len(table) == rows  # RouteLLM's decontamination
    weak, strong = table.outcomes[:, 0], table.outcomes[:, 1]
    assert strong.mean() > weak.mean()
    random = random_summary(weak, strong)
    assert random["apgr"] == pytest.approx(0.5, abs=0.03)
    assert random["cpt50"] == pytest.approx(50, abs=3)
    assert oracle_curve(weak, strong).summary()["cpt50"] == pytest.approx(oracle_cpt50, abs=0.5)
