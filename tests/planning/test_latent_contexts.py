"""Run contexts found from how traced runs went, without a task label on any call.

Runs are drawn from known kinds of task with their own per-model success rates; the latent-class
model must find how many kinds there are and which run is which, from outcomes alone — also when
each call knows only the outcome of the one model that answered it, as traces do.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest

from graphroute.errors import ConfigError
from graphroute.planning import LatentContexts

# Three kinds of task over four models (cheapest first): hard for everyone, easy for everyone,
# and one only the two big models solve.
RATES = np.array([
    [0.05, 0.10, 0.15, 0.20],
    [0.80, 0.85, 0.90, 0.95],
    [0.10, 0.15, 0.80, 0.90],
])  # fmt: skip
SHARED_DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "llmrouter" / "train.json"


def simulated_runs(
    runs: int, calls: int, *, rates: np.ndarray = RATES, seed: int = 0, one_model_per_call: bool = False
) -> tuple[np.ndarray, list[str], np.ndarray]:
    """Outcomes ``[calls, models]``, each call's run id, and each run's true kind."""
    rng = np.random.default_rng(seed)
    kinds = rng.integers(len(rates), size=runs)
    outcomes = (rng.random((runs * calls, rates.shape[1])) < rates[np.repeat(kinds, calls)]).astype(float)
    if one_model_per_call:
        answered = rng.integers(rates.shape[1], size=len(outcomes))
        outcomes[np.arange(rates.shape[1])[None, :] != answered[:, None]] = np.nan
    run_ids = [f"run-{r}" for r in np.repeat(np.arange(runs), calls)]
    return outcomes, run_ids, kinds


def agreement(found: np.ndarray, truth: np.ndarray) -> float:
    """Share of items labelled alike, under the best matching of found labels to true ones."""
    names, kinds = sorted(set(found)), sorted(set(truth))
    best = 0.0
    for matched in itertools.permutations(kinds, len(names)) if len(names) <= len(kinds) else []:
        mapping = dict(zip(names, matched, strict=True))
        best = max(best, float(np.mean([mapping[f] == t for f, t in zip(found, truth, strict=True)])))
    return best


def test_runs_of_three_kinds_are_told_apart_and_bic_finds_three() -> None:
    outcomes, run_ids, kinds = simulated_runs(300, 4)
    latent = LatentContexts.fit(outcomes, run_ids)
    assert len(latent) == 3
    labels = latent.label_calls(outcomes, run_ids)
    assert agreement(labels[::4], kinds) > 0.95
    # The fitted rates are the kinds' own, context for context.
    for row in latent.success:
        assert np.abs(RATES - row).max(axis=1).min() < 0.1


def test_runs_with_no_kinds_get_one_context() -> None:
    outcomes, run_ids, _ = simulated_runs(300, 4, rates=np.array([[0.3, 0.5, 0.6, 0.8]]))
    latent = LatentContexts.fit(outcomes, run_ids)
    assert len(latent) == 1
    assert set(latent.label_calls(outcomes, run_ids)) == {"latent-0"}
    assert np.allclose(latent.success[0], [0.3, 0.5, 0.6, 0.8], atol=0.05)


def test_traces_that_know_one_model_per_call_still_find_the_kinds() -> None:
    outcomes, run_ids, kinds = simulated_runs(600, 8, one_model_per_call=True)
    assert np.isnan(outcomes).sum(axis=1).tolist() == [3] * len(outcomes)
    latent = LatentContexts.fit(outcomes, run_ids)
    assert len(latent) == 3
    assert agreement(latent.label_calls(outcomes, run_ids)[::8], kinds) > 0.8


def test_a_call_alone_says_less_than_its_run() -> None:
    """The same calls, grouped into runs of one: the kinds blur (this is why runs are pooled)."""
    outcomes, run_ids, kinds = simulated_runs(300, 4, seed=1)
    pooled = LatentContexts.fit(outcomes, run_ids, contexts=3)
    alone = LatentContexts.fit(outcomes, [f"call-{i}" for i in range(len(outcomes))], contexts=3)
    truth = np.repeat(kinds, 4)
    by_run = agreement(pooled.label_calls(outcomes, run_ids), truth)
    by_call = agreement(alone.label_calls(outcomes, [f"call-{i}" for i in range(len(outcomes))]), truth)
    assert by_run > by_call + 0.1


def test_the_same_seed_gives_the_same_contexts() -> None:
    outcomes, run_ids, _ = simulated_runs(200, 4, seed=2)
    first = LatentContexts.fit(outcomes, run_ids, seed=7)
    again = LatentContexts.fit(outcomes, run_ids, seed=7)
    assert np.array_equal(first.success, again.success)
    assert first.names == again.names


def test_the_posterior_of_a_run_sums_to_one_and_names_are_what_labels_use() -> None:
    outcomes, run_ids, _ = simulated_runs(200, 4, seed=3)
    latent = LatentContexts.fit(outcomes, run_ids, contexts=2)
    posterior = latent.run_posterior(outcomes, run_ids)
    assert len(posterior) == 200
    assert all(abs(p.sum() - 1.0) < 1e-9 for p in posterior.values())
    assert set(latent.label_calls(outcomes, run_ids)) <= set(latent.names) == {"latent-0", "latent-1"}


@pytest.mark.parametrize(
    ("outcomes", "runs", "message"),
    [
        (np.array([0.0, 1.0]), ["a", "b"], r"\[calls, models\]"),
        (np.array([[0.0, 1.0]]), ["a", "b"], "1 calls' outcomes but 2 run ids"),
        (np.array([[0.5, 1.0]]), ["a"], "0, 1 or NaN"),
    ],
)
def test_malformed_outcomes_are_refused_with_what_to_fix(outcomes: np.ndarray, runs: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        LatentContexts.fit(outcomes, runs)


def test_labels_for_a_different_pool_are_refused() -> None:
    outcomes, run_ids, _ = simulated_runs(50, 4)
    latent = LatentContexts.fit(outcomes, run_ids, contexts=2)
    with pytest.raises(ConfigError, match="fitted on 4 models, got outcomes for 3"):
        latent.label_calls(outcomes[:, :3], run_ids)


def test_a_context_count_below_one_is_refused() -> None:
    outcomes, run_ids, _ = simulated_runs(20, 2)
    with pytest.raises(ConfigError, match="at least 1 context"):
        LatentContexts.fit(outcomes, run_ids, contexts=0)


@pytest.mark.skipif(not SHARED_DATA.exists(), reason="needs shared/data/llmrouter/train.json")
def test_llmrouter_clusters_are_found_from_runs_of_four_questions() -> None:
    """LLMRouter's task clusters are defined by how the models did: runs drawn one cluster each
    give them back from outcomes alone, where the questions' text does not."""
    items = json.loads(SHARED_DATA.read_text(encoding="utf-8"))
    models = sorted({model for item in items for model in item["scores"]})
    outcomes = np.array([
        [np.nan if item["scores"].get(m) is None else float(item["scores"][m] >= 1.0) for m in models]
        for item in items
    ])  # fmt: skip
    clusters = np.array([str(item["cluster_id"]) for item in items])
    rng = np.random.default_rng(0)
    run_ids = np.empty(len(items), dtype=object)
    for cluster in np.unique(clusters):
        members = rng.permutation(np.flatnonzero(clusters == cluster))
        run_ids[members] = [f"{cluster}-{i // 4}" for i in range(len(members))]
    latent = LatentContexts.fit(outcomes, list(run_ids))
    # BIC finds more kinds than the file's three clusters: cluster 1 holds two, one of which the
    # 49B model does markedly worse on. What counts is that no context mixes clusters.
    assert 3 <= len(latent) <= 6
    labels = latent.label_calls(outcomes, list(run_ids))
    majority = {}
    for name in latent.names:
        members = list(clusters[labels == name])
        majority[name] = max(set(members), key=members.count)
        assert members.count(majority[name]) / len(members) > 0.8
    assert set(majority.values()) == set(clusters)
