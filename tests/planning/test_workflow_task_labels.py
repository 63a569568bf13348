"""The workflow benchmark's ``--no-task-labels``: the plan as ``optimize`` gets it from traces.

A trace names no kind of task, so a user's plan has one run context and no recalibration by
task cluster. The benchmark's default plan learns both from the outcome file's ``cluster_id``;
with ``--no-task-labels`` it must not see those labels at all, while the runs themselves (drawn
one cluster per run) and every other strategy stay as they were.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from benchmarks.workflows import Bench, SeedSetup
from graphroute.planning.router import PlannedRouter
from tests.planning.test_critic_loop_bound import outcome_files


def setup(tmp_path: Path, *, task_labels: bool) -> SeedSetup:
    bench = Bench(*outcome_files(tmp_path), ["chain"], encoder="static", estimator="logistic", stack=False)
    args = argparse.Namespace(test_fraction=0.5, runs=20, recalibrate=True, task_labels=task_labels)
    return SeedSetup(bench, 0, args)


def test_by_default_the_plan_learns_run_contexts_and_recalibration_from_the_clusters(tmp_path: Path) -> None:
    labelled = setup(tmp_path, task_labels=True)
    router = labelled.router("chain", "holistic", 1000.0)
    assert isinstance(router, PlannedRouter)
    assert router.plan.contexts.names == ("llmrouter/0", "llmrouter/1")  # the file's two clusters
    assert labelled.recalibration is not None


def test_without_task_labels_the_plan_has_one_context_and_no_recalibration(tmp_path: Path) -> None:
    blind = setup(tmp_path, task_labels=False)
    router = blind.router("chain", "holistic", 1000.0)
    assert isinstance(router, PlannedRouter)
    assert len(router.plan.contexts) == 1
    assert blind.recalibration is None
    assert all(demand.contexts is None for demand in blind.demands["chain"].values())
    # The runs are the labelled benchmark's, task for task: only what the plan may read changed.
    again = tmp_path / "again"
    again.mkdir()
    assert blind.runs == setup(again, task_labels=True).runs
