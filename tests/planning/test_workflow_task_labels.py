"""The workflow benchmark's ``--no-task-labels``: the plan as ``optimize`` gets it from traces.

A trace names no kind of task, so a user's plan has one run context and no recalibration by
task cluster. The benchmark's default plan learns both from the outcome file's ``cluster_id``;
with ``--no-task-labels`` it must not see those labels at all, while the runs themselves (drawn
one cluster per run) and every other strategy stay as they were. With ``--latent-contexts`` it
learns run contexts from how the training split's runs went instead, still without a label.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pytest

from benchmarks.workflows import Bench, SeedSetup, main, training_runs
from graphroute.planning.router import PlannedRouter
from tests.planning.test_critic_loop_bound import outcome_files


def setup(tmp_path: Path, *, task_labels: bool, latent_contexts: bool = False) -> SeedSetup:
    bench = Bench(*outcome_files(tmp_path), ["chain"], encoder="static", estimator="logistic", stack=False)
    args = argparse.Namespace(
        test_fraction=0.5, runs=20, recalibrate=True, task_labels=task_labels, latent_contexts=latent_contexts
    )
    return SeedSetup(bench, 0, args)


def test_by_default_the_plan_learns_run_contexts_and_recalibration_from_the_clusters(tmp_path: Path) -> None:
    labelled = setup(tmp_path, task_labels=True)
    router = labelled.router("chain", "holistic", 1000.0)
    assert isinstance(router, PlannedRouter)
    assert router.plan.contexts.names == ("llmrouter/0", "llmrouter/1")  # the file's two clusters
    assert labelled.recalibration["chain"] is not None


def test_without_task_labels_the_plan_has_one_context_and_no_recalibration(tmp_path: Path) -> None:
    blind = setup(tmp_path, task_labels=False)
    router = blind.router("chain", "holistic", 1000.0)
    assert isinstance(router, PlannedRouter)
    assert len(router.plan.contexts) == 1
    assert blind.recalibration["chain"] is None
    assert all(demand.contexts is None for demand in blind.demands["chain"].values())
    # The runs are the labelled benchmark's, task for task: only what the plan may read changed.
    again = tmp_path / "again"
    again.mkdir()
    assert blind.runs == setup(again, task_labels=True).runs


def test_latent_contexts_are_learnt_from_training_runs_outcomes_not_from_labels(tmp_path: Path) -> None:
    learnt = setup(tmp_path, task_labels=False, latent_contexts=True)
    router = learnt.router("chain", "holistic", 1000.0)
    assert isinstance(router, PlannedRouter)
    # Named by the model, not by the file: the two clusters are found again from outcomes alone.
    assert router.plan.contexts.names == ("latent-0", "latent-1")
    assert learnt.latent_purity["chain"] > 0.9
    assert learnt.recalibration["chain"] is not None
    assert learnt.recalibration["chain"].names == ("latent-0", "latent-1")
    again = tmp_path / "again"
    again.mkdir()
    assert learnt.runs == setup(again, task_labels=True).runs


def test_training_runs_share_a_cluster_and_have_the_workflows_size() -> None:
    clusters = np.array(["a"] * 9 + ["b"] * 7)
    rows = np.arange(16)
    ids = training_runs("chain", rows, clusters, np.random.default_rng(0))
    by_run: dict[str, list[int]] = {}
    for row, run in zip(rows, ids, strict=True):
        by_run.setdefault(run, []).append(row)
    assert sorted(len(members) for members in by_run.values()) == [1, 3, 4, 4, 4]
    assert all(len({clusters[r] for r in members}) == 1 for members in by_run.values())


def test_latent_contexts_with_task_labels_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    outcomes, models = outcome_files(tmp_path)
    argv = ["--outcomes", str(outcomes), "--models", str(models), "--json", str(tmp_path / "out.json")]
    with pytest.raises(SystemExit):
        main([*argv, "--latent-contexts"])
    assert "use it with --no-task-labels" in capsys.readouterr().err
