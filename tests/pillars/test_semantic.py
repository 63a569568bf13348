"""The semantic pillar with real MiniLM embeddings on a small labelled set."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from langchain_core.messages import HumanMessage

from graphroute.errors import ConfigError, MissingExtraError
from graphroute.pillars.base import RouteRequest
from graphroute.pillars.encoders import CachedEncoder, MiniLMEncoder, ShapeEncoder, default_encoder
from graphroute.pillars.semantic import (
    KNNSuccessEstimator,
    LogisticSuccessEstimator,
    SemanticPillar,
    SemanticRouter,
    load_estimator,
)

pytest.importorskip("sentence_transformers")

EASY = [
    "What is the capital of France?",
    "Translate 'thank you' into Spanish.",
    "What colour is the sky on a clear day?",
    "Name a fruit that is yellow.",
    "How many days are in a week?",
    "Who wrote Romeo and Juliet?",
    "What is the opposite of hot?",
    "Spell the word 'necessary'.",
    "What animal says moo?",
    "What is 2 + 2?",
]
HARD = [
    "A train leaves at 3:15 pm at 84 km/h; a second leaves 40 minutes later at 105 km/h. When does it catch up?",
    "Prove that there are infinitely many primes congruent to 3 mod 4.",
    "A tank fills in 6 hours with pipe A and 9 with pipe B, and drains in 12 with pipe C. How long with all three?",
    "Derive the closed form of the sum of k^3 for k from 1 to n and prove it by induction.",
    "If 3 workers build 2 walls in 5 days, how many days do 7 workers need for 9 walls at 80% efficiency?",
    "Compute the eigenvalues of the matrix [[2, 1], [1, 3]] and explain the steps.",
    "A shop discounts by 15%, then adds 8% tax; the final price is $91.80. What was the original price?",
    "Show that the function x^x has a minimum and find it exactly.",
    "Alice is twice as old as Bob was when Alice was as old as Bob is now; Bob is 24. How old is Alice?",
    "Find all integer solutions of x^2 - 7y^2 = 1 with x below 200.",
]
MODELS = ["weak-7b", "strong-70b"]


@pytest.fixture(scope="module")
def encoder(tmp_path_factory: pytest.TempPathFactory) -> CachedEncoder:
    return CachedEncoder(MiniLMEncoder(), tmp_path_factory.mktemp("embeddings"))


@pytest.fixture(scope="module")
def labelled(encoder: CachedEncoder) -> tuple[np.ndarray, np.ndarray]:
    """The weak model solves the easy prompts and fails the hard ones; the strong one solves all."""
    embeddings = encoder.encode(EASY + HARD)
    outcomes = np.array([[1.0, 1.0]] * len(EASY) + [[0.0, 1.0]] * len(HARD))
    return embeddings, outcomes


def test_minilm_vectors_are_unit_length_and_cached(tmp_path: Path) -> None:
    encoder = CachedEncoder(MiniLMEncoder(), tmp_path / "cache")
    first = encoder.encode(["hello world", "a second sentence", "hello world"])
    assert first.shape == (3, 384) and first.dtype == np.float32
    assert np.allclose(np.linalg.norm(first, axis=1), 1.0, atol=1e-5)
    assert np.array_equal(first[0], first[2])
    again = CachedEncoder(MiniLMEncoder(), tmp_path / "cache")  # a new process would see the same cache
    assert np.array_equal(again.encode(["a second sentence"])[0], first[1])
    assert again.encoder._model is None  # served from disk: the model never loaded


@pytest.mark.parametrize("estimator", [KNNSuccessEstimator(k=5), LogisticSuccessEstimator(l2=10.0)])
def test_estimators_rank_unseen_prompts(estimator, labelled, encoder) -> None:  # type: ignore[no-untyped-def]
    embeddings, outcomes = labelled
    estimator.fit(embeddings, outcomes, MODELS)
    unseen = encoder.encode(
        [
            "What is the capital of Italy?",
            "A car travels 150 km in 2.5 hours, then 90 km at 45 km/h. What is its average speed overall?",
        ]
    )
    success = estimator.predict(unseen)
    assert success.shape == (2, 2)
    assert success[0, 0] > success[1, 0]  # the weak model is likelier to solve the capital question
    assert np.all((success >= 0) & (success <= 1))


@pytest.mark.parametrize("estimator", [KNNSuccessEstimator(k=3), LogisticSuccessEstimator()])
def test_estimators_round_trip_through_disk(estimator, labelled, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    embeddings, outcomes = labelled
    estimator.fit(embeddings, outcomes, MODELS)
    estimator.save(tmp_path)
    loaded = load_estimator(tmp_path)
    assert type(loaded) is type(estimator) and loaded.models == MODELS
    assert np.allclose(loaded.predict(embeddings), estimator.predict(embeddings), atol=2e-3)  # float16 exemplars


def test_unmeasured_outcomes_are_ignored(labelled) -> None:  # type: ignore[no-untyped-def]
    embeddings, outcomes = labelled
    third = np.full((len(outcomes), 1), np.nan)
    third[: len(EASY)] = 0.0  # a third model measured on the easy prompts only, always wrong
    models = [*MODELS, "flaky-3b"]
    for estimator in (KNNSuccessEstimator(k=3), LogisticSuccessEstimator()):
        success = estimator.fit(embeddings, np.hstack([outcomes, third]), models).predict(embeddings)
        assert np.all(success[:, 2] < 0.4)
        assert not np.isnan(success).any()


def test_pillar_scores_requests(labelled, encoder) -> None:  # type: ignore[no-untyped-def]
    embeddings, outcomes = labelled
    router = SemanticRouter(
        KNNSuccessEstimator(k=5).fit(embeddings, outcomes, MODELS),
        encoder_name=encoder.name,
        weak=["weak-7b"],
        strong=["strong-70b"],
        exemplars=embeddings,
    )
    pillar = SemanticPillar(router, encoder=encoder)
    easy = pillar.score(RouteRequest([HumanMessage("Who painted the Mona Lisa?")]))
    hard = pillar.score(
        RouteRequest([HumanMessage("Prove that the sum of the first n odd numbers is n^2, by induction.")])
    )
    assert easy.pillar == "semantic" and easy.difficulty is not None and hard.difficulty is not None
    assert hard.difficulty > easy.difficulty
    assert 0.0 <= easy.confidence <= 1.0 and "P(weak ok)" in easy.reason
    assert set(pillar.estimates("Who painted the Mona Lisa?")) == set(MODELS)


def test_router_directory_round_trip(labelled, encoder, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    embeddings, outcomes = labelled
    router = SemanticRouter(
        LogisticSuccessEstimator().fit(embeddings, outcomes, MODELS),
        encoder_name=encoder.name,
        weak=["weak-7b"],
        exemplars=embeddings,
        metadata={"rows": len(outcomes)},
    )
    router.save(tmp_path / "router")
    loaded = SemanticRouter.load(tmp_path / "router")
    assert loaded.weak == ["weak-7b"] and loaded.metadata["rows"] == len(outcomes)
    assert np.allclose(loaded.difficulty(embeddings), router.difficulty(embeddings))
    assert np.all(loaded.coverage(embeddings) == 1.0)  # every exemplar is its own nearest neighbour


def test_score_ranks_by_expected_gain_of_the_strong_model(encoder) -> None:  # type: ignore[no-untyped-def]
    # Puzzles that neither model solves should not take strong calls: the score ranks by gain,
    # the difficulty by how likely the weak model fails.
    hopeless = [
        "Prove the Riemann hypothesis.",
        "Resolve P versus NP with a complete proof.",
        "Prove the Collatz conjecture for all n.",
    ]
    helped = HARD[:6]
    embeddings = encoder.encode(EASY + helped + hopeless)
    outcomes = np.array([[1.0, 1.0]] * len(EASY) + [[0.0, 1.0]] * len(helped) + [[0.0, 0.0]] * len(hopeless))
    router = SemanticRouter(
        KNNSuccessEstimator(k=3).fit(embeddings, outcomes, MODELS),
        encoder_name=encoder.name,
        weak=["weak-7b"],
        strong=["strong-70b"],
    )
    probe = encoder.encode(["Prove the twin prime conjecture.", HARD[0]])
    score, difficulty = router.score(probe), router.difficulty(probe)
    assert score[1] > score[0]  # the solvable word problem gains from the strong model
    assert difficulty[0] > 0.5 and difficulty[1] > 0.5  # both are hard for the weak model
    assert np.all((score >= 0) & (score <= 1))


def test_wrong_encoder_or_directory_is_a_clear_error(labelled, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    embeddings, outcomes = labelled
    router = SemanticRouter(
        KNNSuccessEstimator(k=3).fit(embeddings, outcomes, MODELS), encoder_name="other-encoder", weak=["weak-7b"]
    )
    with pytest.raises(ConfigError, match="other-encoder"):
        SemanticPillar(router, encoder=default_encoder()).score(RouteRequest([HumanMessage("hi")]))
    with pytest.raises(ConfigError, match="graphroute train"):
        SemanticRouter.load(tmp_path)


def test_shape_encoder_keeps_vectors_normalised(encoder) -> None:  # type: ignore[no-untyped-def]
    shaped = ShapeEncoder(encoder)
    vectors = shaped.encode(["short", "a much longer prompt with 3 numbers: 4, 5 and 60%?"])
    assert shaped.name == "all-MiniLM-L6-v2+shape" and vectors.shape == (2, 390)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_without_the_extra_encoding_names_the_pip_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "sentence_transformers", None)  # as if it were not installed
    with pytest.raises(MissingExtraError, match=r"graphroute\[semantic\]"):
        MiniLMEncoder().encode(["hello"])
