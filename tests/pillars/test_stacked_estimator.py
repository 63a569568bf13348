"""The stacked estimator: a cross-fitted second stage that re-reads each model's success from every
model's estimate. Synthetic embeddings here, so the truth behind every outcome is known."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from graphroute.errors import ConfigError
from graphroute.evaluation.training import make_estimator
from graphroute.pillars.semantic import KNNSuccessEstimator, StackedSuccessEstimator, load_estimator

MODELS = ["small-7b", "mid-27b", "big-70b"]
SKILL = np.array([-0.6, 0.0, 0.6])  # each model's log-odds of success on a question of difficulty 0


def world(rows: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Questions whose difficulty is one direction of their embedding; every model fails harder ones.

    Returns embeddings, sampled 0/1 outcomes and the true success probabilities.
    """
    rng = np.random.default_rng(seed)
    embeddings = rng.normal(size=(rows, 12))
    difficulty = 1.5 * embeddings[:, 0]
    truth = 1.0 / (1.0 + np.exp(-(SKILL[None, :] - difficulty[:, None])))
    outcomes = (rng.random(truth.shape) < truth).astype(float)
    return embeddings, outcomes, truth


def gap_error(estimates: np.ndarray, truth: np.ndarray) -> float:
    """How wrong the estimated gaps between models are: what a routing decision reads."""
    gaps = estimates[:, 1:] - estimates[:, :1]
    true_gaps = truth[:, 1:] - truth[:, :1]
    return float(np.sqrt(np.mean((gaps - true_gaps) ** 2)))


def test_stacking_a_knn_base_estimates_the_gaps_between_models_better() -> None:
    embeddings, outcomes, _ = world(1200, seed=1)
    unseen, _, truth = world(400, seed=2)

    plain = KNNSuccessEstimator(k=20).fit(embeddings, outcomes, MODELS).predict(unseen)
    stacked = StackedSuccessEstimator.over(KNNSuccessEstimator(k=20)).fit(embeddings, outcomes, MODELS).predict(unseen)

    assert gap_error(stacked, truth) < 0.7 * gap_error(plain, truth)
    assert np.all((stacked > 0) & (stacked < 1))
    # The shared signal survives: harder questions still look harder to every model.
    hardest, easiest = np.argmax(unseen[:, 0]), np.argmin(unseen[:, 0])
    assert np.all(stacked[hardest] < stacked[easiest])


def test_stacked_estimator_round_trips_through_disk(tmp_path: Path) -> None:
    embeddings, outcomes, _ = world(200, seed=3)
    estimator = StackedSuccessEstimator("knn", base_params={"k": 15}).fit(embeddings, outcomes, MODELS)

    estimator.save(tmp_path)
    loaded = load_estimator(tmp_path)

    assert isinstance(loaded, StackedSuccessEstimator) and loaded.models == MODELS
    assert loaded.params() == estimator.params()
    assert np.allclose(loaded.predict(embeddings[:20]), estimator.predict(embeddings[:20]), atol=2e-3)  # float16


def test_a_model_measured_on_some_rows_only_is_fitted_on_those() -> None:
    embeddings, outcomes, _ = world(300, seed=4)
    partial = np.full((len(outcomes), 1), np.nan)
    partial[:100] = 0.0  # always wrong where measured
    never = np.full((len(outcomes), 1), np.nan)
    models = [*MODELS, "flaky-3b", "unmeasured-1b"]

    stacked = StackedSuccessEstimator.over(make_estimator("logistic"))
    fitted = stacked.fit(embeddings, np.hstack([outcomes, partial, never]), models)
    success = fitted.predict(embeddings[200:])

    assert not np.isnan(success).any()
    assert np.all(success[:, 3] < 0.2)
    assert np.allclose(success[:, 4], 0.5)  # no evidence: the base's prior, untouched


def test_bad_settings_and_too_little_data_are_clear_errors() -> None:
    embeddings, outcomes, _ = world(8, seed=5)

    with pytest.raises(ConfigError, match="fewer than 2 × folds"):
        StackedSuccessEstimator("knn").fit(embeddings, outcomes, MODELS)
    with pytest.raises(ConfigError, match="base 'stacked'"):
        StackedSuccessEstimator("stacked")
    with pytest.raises(ConfigError, match="folds=1"):
        StackedSuccessEstimator("knn", folds=1)
    with pytest.raises(ConfigError, match="unknown estimator 'stacked'"):
        make_estimator("stacked")  # a second stage is put over a base, not made by name
