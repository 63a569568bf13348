"""How much any plan could save over per-call routing on critic_loop, given the estimates.

``python benchmarks/critic_loop_bound.py --outcomes PATH --models PATH [--seeds 5] [--runs N] [--json OUT]
[--no-stack]`` (the workflow benchmark's data files; any file of that format; its estimates, stacked
by default — ``--no-stack`` for the plain kNN).

The workflow benchmark's critic_loop goal is a saving of ≥ 0.30 over per-call routing at equal
success. This script asks how much saving the estimates leave on the table for *any* policy, by
computing the best one outright instead of planning it:

- ``plain``: the optimal policy given each question's estimates (backward induction over the
  three attempts: the last critic is worthless, a critic is worth ``P(answer wrong)`` times the
  value of the attempts after it, an answer its success plus what a right one spares), treating
  the estimates as right and the run's questions as independent — what a perfect planner knows
  at a run's first call;
- ``cluster_known``: the same, told each run's true task cluster from its first call (every
  model's estimates recalibrated per cluster, Platt scaling fitted on the training split) —
  more than any run can know, since a question says little about its cluster;
- ``both_cluster_known``: per-call routing gets the recalibrated estimates too, so the saving is
  what the loop's structure is worth once the estimates are that sharp.

Each is compared with the benchmark's per-call router on the plain estimates (or, for the last,
the recalibrated ones) exactly as ``workflows.py`` compares curves: the same seeds, train/test
split, estimator, tasks and cost rule; curves averaged over seeds setting by setting; 20 success
levels from all-local to the lower top. A run's success and cost come from the real outcomes in
closed form (every call's outcome is 0 or 1, so the loop's path is determined by the models
chosen); ``tests/planning/test_critic_loop_bound.py`` checks that closed form against the
benchmark's LangGraph app, run for run.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.workflows import ATTEMPTS, DEFAULT_STACK, RUNS, Bench, compose_runs, mean_curve
from graphroute.evaluation.data import full_success
from graphroute.planning import curves
from graphroute.planning.context import ContextCalibration
from graphroute.planning.plan import choose

WORKFLOW = "critic_loop"
# Worth of a run's success in dollars, swept: from "cheapest everywhere" to "best everywhere".
WORTHS = np.geomspace(1e-5, 1e-1, 60)
# Resolution of a critic's value as a function of the answer's estimated success.
GRID = np.linspace(0.0, 1.0, 401)

SolverChoice = Callable[[int, np.ndarray], np.ndarray]
"""(attempt index, question ids) → each call's model column."""
CriticChoice = Callable[[int, np.ndarray, np.ndarray], np.ndarray]
"""(attempt index, question ids, the judged answers' estimated success) → each call's model column."""


@dataclass(frozen=True)
class Loop:
    """What a critic_loop run's calls cost and whether they are right, per question and model."""

    solve_cost: np.ndarray  # (questions, models)
    critic_cost: np.ndarray
    right: np.ndarray  # 1 where the model gets the question fully right

    def run(
        self, solves: np.ndarray, critics: np.ndarray, estimates: np.ndarray, solver: SolverChoice, critic: CriticChoice
    ) -> tuple[np.ndarray, np.ndarray]:
        """Cost and success of each run (rows of ``solves``/``critics``: its questions per attempt).

        An attempt is reached when every earlier answer was wrong and its critic right; the last
        critic's verdict sends nothing back.
        """
        cost, success = np.zeros(len(solves)), np.zeros(len(solves))
        reached = np.ones(len(solves))
        for attempt in range(ATTEMPTS):
            answers, judges = solves[:, attempt], critics[:, attempt]
            a = solver(attempt, answers)
            k = critic(attempt, judges, estimates[answers, a])
            cost += reached * (self.solve_cost[answers, a] + self.critic_cost[judges, k])
            right = self.right[answers, a]
            success += reached * right
            caught = self.right[judges, k] if attempt < ATTEMPTS - 1 else 0.0
            reached = reached * (1.0 - right) * caught
        return cost, success


def loop_of(bench: Bench) -> Loop:
    """The benchmark's critic_loop costs (its cost rule) and full-score outcomes."""
    coster = bench.coster[WORKFLOW]
    return Loop(
        np.array([coster(p, "solve") for p in bench.prompts]),
        np.array([coster(p, "critic") for p in bench.prompts]),
        full_success(bench.outcomes),
    )


def per_call(estimates: np.ndarray, loop: Loop, worth: float) -> tuple[SolverChoice, CriticChoice]:
    """The benchmark's per-call rule: every call's success worth the same, whatever it does for the run."""
    return (
        lambda _, q: choose(estimates[q], loop.solve_cost[q], worth),
        lambda _, q, __: choose(estimates[q], loop.critic_cost[q], worth),
    )


def optimal(estimates: np.ndarray, pool: np.ndarray, loop: Loop, worth: float) -> tuple[SolverChoice, CriticChoice]:
    """The policy maximising worth·P(run ok) − E[cost] if ``estimates`` were right and a run's
    questions independent draws from ``pool``, knowing only the question at hand.

    Backward induction: ``later`` is the value (worth·success − cost) of the attempts after this
    one. A critic on an answer of estimated success p is worth (1 − p)·later per unit of its own
    success; an answer's choice weighs what it leaves to the critic after it (``critic_value``).
    """
    est, solve_cost, critic_cost = estimates[pool], loop.solve_cost[pool], loop.critic_cost[pool]
    later, values = 0.0, {}
    for attempt in reversed(range(ATTEMPTS)):
        if attempt == ATTEMPTS - 1:
            table = np.full_like(GRID, -critic_cost.min(axis=1).mean())
        else:
            catch = max(later, 0.0)  # a catch is never worth less than nothing (the library's rule too)
            table = np.array([np.max((1.0 - p) * est * catch - critic_cost, axis=1).mean() for p in GRID])
        values[attempt] = (table, later)
        later = float(np.max(est * worth + np.interp(est, GRID, table) - solve_cost, axis=1).mean())

    def solver(attempt: int, q: np.ndarray) -> np.ndarray:
        critic_value = np.interp(estimates[q], GRID, values[attempt][0])
        return np.argmax(estimates[q] * worth + critic_value - loop.solve_cost[q], axis=1)

    def critic(attempt: int, q: np.ndarray, answer: np.ndarray) -> np.ndarray:
        if attempt == ATTEMPTS - 1:
            return np.argmin(loop.critic_cost[q], axis=1)
        catch_worth = (1.0 - answer)[:, None] * max(values[attempt][1], 0.0)
        return np.argmax(estimates[q] * catch_worth - loop.critic_cost[q], axis=1)

    return solver, critic


def by_cluster(
    estimates: np.ndarray, targets: np.ndarray, clusters: np.ndarray, train: np.ndarray, test: np.ndarray
) -> np.ndarray:
    """Test rows' estimates recalibrated per (cluster, model) on the training rows of that cluster."""
    calibration = ContextCalibration.fit(estimates[train], targets[train], clusters[train])
    out = estimates.copy()
    for c, name in enumerate(calibration.names):
        rows = test[clusters[test].astype(str) == name]
        out[rows] = calibration.per_context_rows(estimates[rows], c)
    return out


def seed_curves(bench: Bench, loop: Loop, seed: int, runs: int, test_fraction: float) -> dict[str, Any]:
    """One seed: every policy's (cost, success) per worth, and the all-local point."""
    train, test, estimates = bench.split(seed, test_fraction)
    tasks = compose_runs(WORKFLOW, test, bench.clusters, runs, np.random.default_rng(10_000 + seed))
    solves = np.array([task["solve"] for task in tasks])
    critics = np.array([task["critic"] for task in tasks])
    run_cluster = bench.clusters[solves[:, 0]]
    sharp = by_cluster(estimates, bench.targets, bench.clusters, train, test)

    def mean(parts: list[tuple[np.ndarray, np.ndarray]]) -> list[float]:
        return [
            float(np.concatenate([c for c, _ in parts]).mean()),
            float(np.concatenate([s for _, s in parts]).mean()),
        ]

    def told_cluster(worth: float) -> list[float]:
        parts = []
        for label in np.unique(run_cluster):
            mine = run_cluster == label
            policy = optimal(sharp, test[bench.clusters[test] == label], loop, worth)
            parts.append(loop.run(solves[mine], critics[mine], sharp, *policy))
        return mean(parts)

    out: dict[str, list[list[float]]] = {
        name: [] for name in ("per_call", "plain", "cluster_known", "per_call_cluster_known")
    }
    for worth in WORTHS:
        out["per_call"].append(mean([loop.run(solves, critics, estimates, *per_call(estimates, loop, worth))]))
        out["plain"].append(mean([loop.run(solves, critics, estimates, *optimal(estimates, test, loop, worth))]))
        out["cluster_known"].append(told_cluster(worth))
        out["per_call_cluster_known"].append(mean([loop.run(solves, critics, sharp, *per_call(sharp, loop, worth))]))
    local = int(np.flatnonzero(bench.prices.local)[0])
    fixed = lambda *_: np.full(len(solves), local)  # noqa: E731
    return {"curves": out, "all_local": mean([loop.run(solves, critics, estimates, fixed, fixed)])}


COMPARISONS = {
    "plain": ("plain", "per_call"),
    "cluster_known": ("cluster_known", "per_call"),
    "both_cluster_known": ("cluster_known", "per_call_cluster_known"),
}


def summarise(per_seed: list[dict[str, Any]]) -> dict[str, Any]:
    """Curves averaged over seeds setting by setting, compared as the workflow benchmark does."""
    names = per_seed[0]["curves"]
    averaged = {name: mean_curve([s["curves"][name] for s in per_seed]) for name in names}
    floor = float(np.mean([s["all_local"][1] for s in per_seed]))
    out: dict[str, Any] = {"curves": averaged, "all_local": mean_curve([[s["all_local"]] for s in per_seed])[0]}
    for label, (policy, baseline) in COMPARISONS.items():
        points = {name: [(c, s) for c, s in averaged[name]] for name in (policy, baseline)}
        figures = curves.compare(points[policy], points[baseline], floor=floor)
        seeds = [
            curves.compare(s["curves"][policy], s["curves"][baseline], floor=s["all_local"][1])["saving"]
            for s in per_seed
        ]
        out[label] = {"saving": figures["saving"], "worst_ratio": figures["worst"], "per_seed_saving": seeds}
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--outcomes", type=Path, required=True, help="LLMRouter train.json-format file")
    parser.add_argument("--models", type=Path, required=True, help="LLMRouter models.json-format file")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--runs", type=int, default=RUNS[WORKFLOW], help="test runs per seed (the benchmark's)")
    parser.add_argument("--test-fraction", type=float, default=0.5)
    parser.add_argument("--json", type=Path, help="where to write the figures")
    parser.add_argument(
        "--stack",
        action=argparse.BooleanOptionalAction,
        default=DEFAULT_STACK,
        help="the benchmark's stacked estimates (--no-stack: its plain kNN)",
    )
    args = parser.parse_args(argv)
    started = time.perf_counter()
    bench = Bench(args.outcomes, args.models, [WORKFLOW], stack=args.stack)
    loop = loop_of(bench)
    per_seed = [seed_curves(bench, loop, seed, args.runs, args.test_fraction) for seed in range(args.seeds)]
    figures = summarise(per_seed)
    print(f"critic_loop, {args.seeds} seeds × {args.runs} runs, {bench.describe_estimator()}")
    print(f"{'policy (against per-call)':<42} {'saving':>7} {'worst':>7}  per seed")
    for label in COMPARISONS:
        row = figures[label]
        seeds = " ".join(f"{x:.3f}" for x in row["per_seed_saving"])
        print(f"{label:<42} {row['saving']:7.3f} {row['worst_ratio']:7.3f}  {seeds}")
    if args.json:
        meta = {"seeds": args.seeds, "runs": args.runs, "estimator": bench.describe_estimator()}
        args.json.write_text(json.dumps({"meta": meta, **figures}, indent=1), encoding="utf-8")
    print(f"{time.perf_counter() - started:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
