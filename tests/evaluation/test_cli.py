"""`graphroute train` and `graphroute score` end to end, with real embeddings (the default static encoder, MiniLM)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from graphroute.cli import app
from graphroute.evaluation.training import DATA_ENV, default_router_dir
from graphroute.pillars.encoders import STATIC_NAME

pytest.importorskip("sentence_transformers")

runner = CliRunner()

UNSEEN = [
    "What is the capital of Canada?",
    "A baker makes 48 rolls, sells 3/8 of them in the morning and 40% of the rest later. How many are left?",
    "Which metal is liquid at room temperature?",
]


def write_prompts(path: Path, prompts: list[str]) -> Path:
    path.write_text("".join(json.dumps({"prompt": p}) + "\n" for p in prompts) + "\n", encoding="utf-8")
    return path


def read_scores(path: Path) -> list[float]:
    return [json.loads(line)["score"] for line in path.read_text(encoding="utf-8").splitlines()]


def test_train_then_score_unseen_prompts(routellm_dir: Path, llmrouter_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "router"
    trained = runner.invoke(app, ["train", "--data", str(routellm_dir), str(llmrouter_dir), "--out", str(out)])
    assert trained.exit_code == 0, trained.output
    assert "router saved" in trained.output
    document = json.loads((out / "router.json").read_text(encoding="utf-8"))
    assert document["weak"] == ["mistralai/Mixtral-8x7B-Instruct-v0.1", "small-9b"]
    assert document["rows"] == 23

    prompts = write_prompts(tmp_path / "prompts.jsonl", UNSEEN)
    scores_path = tmp_path / "out" / "scores.jsonl"
    scored = runner.invoke(app, ["score", "--router", str(out), "--input", str(prompts), "--output", str(scores_path)])
    assert scored.exit_code == 0, scored.output
    scores = read_scores(scores_path)
    assert len(scores) == len(UNSEEN)  # same order, one line per prompt
    assert all(0.0 <= s <= 1.0 for s in scores)
    assert scores[1] > scores[0] and scores[1] > scores[2]  # the word problem needs the stronger model


def test_train_with_the_logistic_estimator(routellm_dir: Path, tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["train", "--data", str(routellm_dir), "--out", str(tmp_path / "r"), "--estimator", "logistic"]
    )
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "r" / "router.json").read_text(encoding="utf-8"))["estimator"] == "logistic"


def test_train_a_planning_estimator_on_full_scores_with_few_neighbours(llmrouter_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "planning"
    arguments = ["train", "--data", str(llmrouter_dir), "--out", str(out), "--estimator", "knn"]

    trained = runner.invoke(app, [*arguments, "--k", "3", "--fit-to", "success"])

    assert trained.exit_code == 0, trained.output
    document = json.loads((out / "router.json").read_text(encoding="utf-8"))
    assert document["fitted_to"] == "success"
    assert json.loads((out / "estimator.json").read_text(encoding="utf-8"))["params"]["k"] == 3


def test_train_a_stacked_router_and_score_with_it(routellm_dir: Path, llmrouter_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "stacked"
    data = ["--data", str(routellm_dir), str(llmrouter_dir)]

    trained = runner.invoke(app, ["train", *data, "--out", str(out), "--estimator", "knn", "--k", "5", "--stack"])

    assert trained.exit_code == 0, trained.output
    saved = json.loads((out / "estimator.json").read_text(encoding="utf-8"))
    assert saved["kind"] == "stacked" and saved["params"]["base"] == "knn" and saved["params"]["base_params"]["k"] == 5
    prompts = write_prompts(tmp_path / "prompts.jsonl", UNSEEN)
    scored = runner.invoke(
        app, ["score", "--router", str(out), "--input", str(prompts), "--output", str(tmp_path / "s.jsonl")]
    )
    assert scored.exit_code == 0, scored.output
    scores = read_scores(tmp_path / "s.jsonl")
    assert scores[1] > scores[0] and scores[1] > scores[2]  # the word problem still needs the stronger model


def test_train_refuses_options_that_do_not_fit_together(llmrouter_dir: Path, tmp_path: Path) -> None:
    base = ["train", "--data", str(llmrouter_dir), "--out", str(tmp_path / "r")]

    logistic_k = runner.invoke(app, [*base, "--estimator", "logistic", "--k", "5"])
    partial = runner.invoke(app, [*base, "--fit-to", "partial"])

    assert logistic_k.exit_code == 1 and "--k 5: needs --estimator knn" in logistic_k.output
    assert partial.exit_code == 1 and "--fit-to 'partial': use score or success" in partial.output
    assert not (tmp_path / "r").exists()  # nothing half-written


def test_score_reports_bad_lines_and_missing_routers(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "fine"}\n{"text": "no prompt key"}\n', encoding="utf-8")
    missing = runner.invoke(
        app, ["score", "--router", str(tmp_path / "nope"), "--input", str(bad), "--output", str(tmp_path / "s")]
    )
    assert missing.exit_code == 1 and "graphroute train" in missing.output


def test_default_router_is_trained_on_first_use(
    routellm_dir: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(DATA_ENV, str(routellm_dir.parent))
    prompts = write_prompts(tmp_path / "p.jsonl", UNSEEN)
    first = runner.invoke(
        app, ["score", "--router", "default", "--input", str(prompts), "--output", str(tmp_path / "a")]
    )
    assert first.exit_code == 0, first.output
    assert (default_router_dir() / "router.json").exists()  # in the data dir, reused from now on
    assert len(read_scores(tmp_path / "a")) == len(UNSEEN)


def test_default_router_without_data_says_how_to_get_one(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(DATA_ENV, str(tmp_path / "no-such-dir"))
    prompts = write_prompts(tmp_path / "p.jsonl", UNSEEN)
    result = runner.invoke(
        app, ["score", "--router", "default", "--input", str(prompts), "--output", str(tmp_path / "s")]
    )
    assert result.exit_code == 1
    assert DATA_ENV in result.output


def test_a_default_router_trained_with_another_encoder_is_retrained(
    routellm_dir: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from graphroute.evaluation.data import load_outcomes
    from graphroute.evaluation.training import default_router, train_router, training_encoder

    monkeypatch.setenv(DATA_ENV, str(routellm_dir.parent))
    old = train_router(load_outcomes([routellm_dir]), encoder=training_encoder(base="minilm"))
    old.save(default_router_dir())  # as left by a version whose default encoder was MiniLM
    assert old.encoder_name == "all-MiniLM-L6-v2+shape2"

    router = default_router()
    assert router.encoder_name == training_encoder().name == STATIC_NAME + "+shape2"
    saved = json.loads((default_router_dir() / "router.json").read_text(encoding="utf-8"))
    assert saved["encoder"] == router.encoder_name  # re-embedded on disk too, not only in memory
    prompts = write_prompts(tmp_path / "p.jsonl", UNSEEN)
    scored = runner.invoke(
        app, ["score", "--router", "default", "--input", str(prompts), "--output", str(tmp_path / "s")]
    )
    assert scored.exit_code == 0, scored.output
    assert len(read_scores(tmp_path / "s")) == len(UNSEEN)


def test_train_with_minilm_then_score_with_the_encoder_it_recorded(routellm_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "minilm-router"
    trained = runner.invoke(app, ["train", "--data", str(routellm_dir), "--out", str(out), "--encoder", "minilm"])
    assert trained.exit_code == 0, trained.output
    assert json.loads((out / "router.json").read_text(encoding="utf-8"))["encoder"] == "all-MiniLM-L6-v2+shape2"
    prompts = write_prompts(tmp_path / "p.jsonl", UNSEEN)
    scored = runner.invoke(
        app, ["score", "--router", str(out), "--input", str(prompts), "--output", str(tmp_path / "s")]
    )
    assert scored.exit_code == 0, scored.output
    scores = read_scores(tmp_path / "s")
    assert scores[1] > scores[0] and scores[1] > scores[2]
    unknown = runner.invoke(app, ["train", "--data", str(routellm_dir), "--out", str(out), "--encoder", "glove"])
    assert unknown.exit_code == 1 and "unknown encoder 'glove'" in unknown.output
