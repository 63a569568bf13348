"""The static encoder (MiniLM distilled into token vectors) on real prompts, and routers that
refuse vectors from any encoder but the one they were trained with.

The first test to encode distils the model into the session's models dir (1–3 minutes once per
session; set GRAPHROUTE_TEST_MODELS to keep it between sessions).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from langchain_core.messages import HumanMessage

from graphroute.errors import ConfigError
from graphroute.evaluation.data import OutcomeTable
from graphroute.evaluation.training import train_router, training_encoder
from graphroute.pillars.base import RouteRequest
from graphroute.pillars.encoders import MINILM_NAME, STATIC_NAME, ShapeEncoder, encoder_for
from graphroute.pillars.semantic import SemanticPillar, SemanticRouter
from graphroute.pillars.static_encoder import StaticEncoder, static_model_dir

pytest.importorskip("model2vec")
pytest.importorskip("sentence_transformers")  # distillation runs MiniLM once

EASY = [
    "What is the capital of France?",
    "Translate 'thank you' into Spanish.",
    "Name a fruit that is yellow.",
    "How many days are in a week?",
    "Who wrote Romeo and Juliet?",
    "What animal says moo?",
]
HARD = [
    "A train leaves at 3:15 pm at 84 km/h; a second leaves 40 minutes later at 105 km/h. When does it catch up?",
    "A tank fills in 6 hours with pipe A and 9 with pipe B, and drains in 12 with pipe C. How long with all three?",
    "If 3 workers build 2 walls in 5 days, how many days do 7 workers need for 9 walls at 80% efficiency?",
    "A shop discounts by 15%, then adds 8% tax; the final price is $91.80. What was the original price?",
    "Alice is twice as old as Bob was when Alice was as old as Bob is now; Bob is 24. How old is Alice?",
    "A car travels 150 km in 2.5 hours, then 90 km at 45 km/h. What is its average speed overall?",
]
WEAK, STRONG = "weak-7b", "strong-70b"


@pytest.fixture
def table() -> OutcomeTable:
    """The weak model solves the easy prompts and fails the word problems; the strong one solves all."""
    outcomes = [[1.0, 1.0]] * len(EASY) + [[0.0, 1.0]] * len(HARD)
    return OutcomeTable(prompts=EASY + HARD, models=[WEAK, STRONG], outcomes=np.array(outcomes))


def ask(text: str) -> RouteRequest:
    return RouteRequest([HumanMessage(text)])


def test_paraphrases_are_closer_than_unrelated_prompts() -> None:
    encoder = StaticEncoder()
    vectors = encoder.encode(
        [
            "What is the capital city of France?",
            "Which city is France's capital?",
            "How do I reverse a linked list in Python?",
            "Write a Python function that reverses a singly linked list.",
            "Suggest a vegetarian recipe for dinner.",
        ]
    )
    similarity = vectors @ vectors.T
    assert similarity[0, 1] > 0.6 and similarity[2, 3] > 0.6  # paraphrases
    unrelated = [similarity[0, 2], similarity[0, 4], similarity[1, 3], similarity[3, 4]]
    assert max(unrelated) < 0.3
    assert similarity[0, 1] > max(unrelated) + 0.4


def test_vectors_are_unit_length_float32_and_cost_no_torch_once_built() -> None:
    encoder = StaticEncoder()
    vectors = encoder.encode(["hello world", "a second, longer sentence with 3 numbers: 4, 5 and 60%"])
    assert vectors.shape == (2, 256) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert encoder.encode([]).shape == (0, 256)
    built = static_model_dir()
    assert (built / "model.safetensors").is_file() and (built / "graphroute.json").is_file()
    again = StaticEncoder(built)  # a new process: loads the table from disk, no distillation
    assert np.allclose(again.encode(["hello world"])[0], vectors[0], atol=1e-6)


def test_names_and_aliases_resolve_to_the_shipped_encoders() -> None:
    assert encoder_for("static").name == STATIC_NAME
    assert encoder_for("minilm").name == MINILM_NAME
    assert encoder_for("static+shape").name == STATIC_NAME + "+shape"
    assert encoder_for(STATIC_NAME + "+shape").dim == 256 + 6
    with pytest.raises(ConfigError, match=r"unknown encoder 'glove'.*static"):
        encoder_for("glove")


def test_a_static_router_refuses_minilm_and_a_minilm_router_refuses_static(table: OutcomeTable, tmp_path: Path) -> None:
    train_router(table, encoder=training_encoder(base="static")).save(tmp_path / "static")
    train_router(table, encoder=training_encoder(base="minilm")).save(tmp_path / "minilm")
    static_router = SemanticRouter.load(tmp_path / "static")
    minilm_router = SemanticRouter.load(tmp_path / "minilm")
    assert static_router.encoder_name == STATIC_NAME + "+shape2"
    with pytest.raises(ConfigError, match=rf"trained with encoder '{STATIC_NAME}\+shape2'.*'{MINILM_NAME}\+shape2'"):
        SemanticPillar(static_router, encoder=encoder_for("minilm+shape2")).score(ask("hi"))
    with pytest.raises(ConfigError, match=rf"trained with encoder '{MINILM_NAME}\+shape2'"):
        SemanticPillar(minilm_router, encoder=encoder_for("static+shape2")).score(ask("hi"))
    with pytest.raises(ConfigError, match=rf"trained with encoder '{STATIC_NAME}\+shape2'.*'{STATIC_NAME}\+shape'"):
        SemanticPillar(static_router, encoder=encoder_for("static+shape")).score(ask("hi"))  # other features

    # Left to pick its own encoder, each router scores with the one it was trained with.
    for router in (static_router, minilm_router):
        pillar = SemanticPillar(router)
        easy, hard = pillar.score(ask("What is the capital of Italy?")), pillar.score(ask(HARD[0].replace("84", "90")))
        assert pillar.encoder.name == router.encoder_name
        assert hard.difficulty is not None and easy.difficulty is not None and hard.difficulty > easy.difficulty


def test_a_router_refuses_an_encoder_rebuilt_under_the_same_name(table: OutcomeTable, tmp_path: Path) -> None:
    from model2vec import StaticModel

    router_dir = train_router(table, encoder=training_encoder(base="static")).save(tmp_path / "router")
    # Another distillation of the "same" model, as a new model2vec release could produce: the
    # token table in another basis (PCA is only defined up to rotation and sign).
    original = StaticModel.from_pretrained(str(static_model_dir()))
    rotation, _ = np.linalg.qr(np.random.default_rng(0).normal(size=(original.dim, original.dim)))
    rebuilt = StaticModel(
        original.embedding.astype(np.float32) @ rotation, original.tokenizer, config=original.config, normalize=True
    )
    rebuilt.save_pretrained(str(tmp_path / "rebuilt"))
    impostor = StaticEncoder(tmp_path / "rebuilt")
    assert impostor.name == STATIC_NAME

    router = SemanticRouter.load(router_dir)
    with pytest.raises(ConfigError, match=r"no longer gives the vectors this router was trained on.*retrain"):
        SemanticPillar(router, encoder=ShapeEncoder(impostor, problem=True)).score(ask("hi"))
    assert SemanticPillar(router).score(ask("hi")).pillar == "semantic"  # the real one still passes


def test_coverage_tells_a_known_kind_of_prompt_from_an_unseen_kind(table: OutcomeTable) -> None:
    router = train_router(table, encoder=training_encoder(base="static"))
    encoder = router.encoder()
    near, far = router.coverage(encoder.encode([EASY[0], "Write a limerick about a robot who learns to paint."]))
    assert near == 1.0  # an exemplar itself
    assert far < 0.5  # nothing like it in training: the cascade should not trust the estimate


def test_without_model2vec_encoding_names_the_pip_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import sys

    from graphroute.errors import MissingExtraError

    monkeypatch.setitem(sys.modules, "model2vec", None)  # as if it were not installed
    with pytest.raises(MissingExtraError, match=r"graphroute\[semantic\]"):
        StaticEncoder(tmp_path / "never-built").encode(["hello"])
    assert not (tmp_path / "never-built").exists()  # nothing half-built
