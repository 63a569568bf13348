"""Word-problem features: counts a multi-step problem has and a fact question lacks."""

from __future__ import annotations

import numpy as np

from graphroute.pillars.encoders import ShapeEncoder, encoder_for
from graphroute.pillars.problem_features import PROBLEM_DIM, problem_features

FACT = "What is the boiling point of water in kelvin?"
MULTI_STEP = (
    "Maria buys 3 boxes of 12 pencils for $4.50 each. After giving 1/4 of the pencils to Tom, she sells "
    "the rest at 25 cents each. If she spends 2 hours selling, how much more than she paid does she earn per hour?"
)


def test_a_multi_step_problem_scores_above_a_fact_question_on_every_count() -> None:
    fact, problem = problem_features([FACT, MULTI_STEP])
    assert fact.shape == (PROBLEM_DIM,) and fact.dtype == np.float32
    # sentences, distinct numbers, decimals, fractions, money, time, comparisons, what is left,
    # conditions, names, largest and mean magnitude: all higher for the word problem.
    rises = [0, 1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 12]
    assert np.all(problem[rises] > fact[rises])
    assert np.all(np.abs(fact) < 3) and np.all(np.abs(problem) < 6)  # roughly standardised, nothing explodes


def test_empty_and_numberless_text_give_finite_features() -> None:
    features = problem_features(["", "hello"])
    assert features.shape == (2, PROBLEM_DIM) and np.isfinite(features).all()


class Letters:
    """A tiny real encoder: letter frequencies (enough to check what ShapeEncoder appends)."""

    name, dim = "letters", 26

    def encode(self, texts: list[str]) -> np.ndarray:
        rows = [[text.lower().count(chr(97 + i)) for i in range(26)] for text in texts]
        vectors = np.asarray(rows, dtype=np.float32) + 1e-3
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def test_shape2_appends_shape_and_problem_features_and_stays_unit_length() -> None:
    shaped = ShapeEncoder(Letters(), problem=True)
    vectors = shaped.encode([FACT, MULTI_STEP])
    assert shaped.name == "letters+shape2" and vectors.shape == (2, 26 + 6 + PROBLEM_DIM)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert encoder_for("static+shape2").name == "all-MiniLM-L6-v2-static256+shape2"
