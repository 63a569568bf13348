"""``benchmarks/critic_loop_bound.py``: the best critic_loop policy the estimates allow.

Its figures are only worth reading if (1) its closed-form run of the loop is the benchmark's
LangGraph app, run for run, and (2) its "optimal" policy is optimal — checked by hand on a
two-model pool and exhaustively on a small one.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest

from benchmarks import critic_loop_bound as bound
from benchmarks.workflows import Bench, compose_runs, run_strategy
from graphroute.planning.baselines import PerCallRouter

WORDS = ("add", "subtract", "prime", "list", "string", "sort", "graph", "tree", "count", "sum", "digits", "path")


def outcome_files(tmp_path: Path, questions: int = 160) -> tuple[Path, Path]:
    """Two clusters of distinct questions; the small model is right mostly on the easy one."""
    rng = np.random.default_rng(5)
    records = []
    for i in range(questions):
        hard = i % 2 == 1
        text = f"Question {i}: " + " ".join(rng.choice(WORDS, 6)) + ("?" if hard else ".")
        scores = {
            "small-7b": float(rng.random() < (0.3 if hard else 0.8)),
            "mid-9b": float(rng.random() < (0.45 if hard else 0.85)),
            "big-70b": float(rng.random() < (0.7 if hard else 0.95)),
        }
        records.append({"question": text, "cluster_id": int(hard), "scores": scores})
    models = {
        "small-7b": {"input_price": 0.1, "output_price": 0.1, "size": "7B"},
        "mid-9b": {"input_price": 0.3, "output_price": 0.3, "size": "9B"},
        "big-70b": {"input_price": 2.0, "output_price": 2.0, "size": "70B"},
    }
    (tmp_path / "outcomes.json").write_text(json.dumps(records), encoding="utf-8")
    (tmp_path / "models.json").write_text(json.dumps(models), encoding="utf-8")
    return tmp_path / "outcomes.json", tmp_path / "models.json"


def test_the_closed_form_loop_is_the_benchmark_app_run_for_run(tmp_path: Path) -> None:
    bench = Bench(*outcome_files(tmp_path), ["critic_loop"], encoder="static", estimator="logistic")
    _, test, estimates = bench.split(0, 0.5)
    tasks = compose_runs("critic_loop", test, bench.clusters, 60, np.random.default_rng(3))
    loop = bound.loop_of(bench)
    lookup = {bench.prompts[q]: estimates[q] for q in test}
    solves = np.array([task["solve"] for task in tasks])
    critics = np.array([task["critic"] for task in tasks])
    models_used: set[str] = set()
    for worth in (1e-5, 3e-4, 1e-3, 1e-1):
        router = PerCallRouter(bench.coster["critic_loop"], lambda r: lookup.get(r.last_user_text), lam=1.0 / worth)
        _, runs = run_strategy(bench.apps["critic_loop"], "critic_loop", router, tasks, keep=True)
        cost, success = loop.run(solves, critics, estimates, *bound.per_call(estimates, loop, worth))
        assert cost == pytest.approx([sum(call[3] for call in calls) for _, calls, _ in runs])
        assert success.tolist() == [float(ok) for _, _, ok in runs]
        models_used |= {call[1] for _, calls, _ in runs for call in calls}
    assert len(models_used) == 3  # the worths above move calls across the whole pool


def hand_worked_loop() -> tuple[bound.Loop, np.ndarray]:
    # Two models on four questions: small costs 1 a call and is estimated right half the time,
    # big costs 10 and is estimated always right (it is; small is right on questions 0 and 1).
    costs = np.tile([1.0, 10.0], (4, 1))
    right = np.array([[1.0, 1.0], [1.0, 1.0], [0.0, 1.0], [0.0, 1.0]])
    return bound.Loop(costs, costs, right), np.tile([0.5, 1.0], (4, 1))


def test_a_critic_of_a_sure_answer_is_the_cheapest_model() -> None:
    loop, estimates = hand_worked_loop()
    solves, critics = np.array([[2, 2, 2]]), np.array([[3, 3, 3]])
    # A run's success worth $100: per-call routing sends both calls to big (100 − 10 > 50 − 1);
    # the optimal policy does too for the answer, but a sure answer needs no critic: small judges.
    cost, success = loop.run(solves, critics, estimates, *bound.per_call(estimates, loop, 100.0))
    assert (cost[0], success[0]) == (20.0, 1.0)
    cost, success = loop.run(solves, critics, estimates, *bound.optimal(estimates, np.arange(4), loop, 100.0))
    assert (cost[0], success[0]) == (11.0, 1.0)


def test_at_a_lower_worth_the_first_answer_goes_cheap_because_a_critic_backs_it() -> None:
    loop, estimates = hand_worked_loop()
    solver, critic = bound.optimal(estimates, np.arange(4), loop, 20.0)
    # Worth $20. Last attempt: big 20 − 1 (cheapest critic) − 10 = 9 beats small 10 − 1 − 1 = 8.
    assert solver(2, np.array([0])).tolist() == [1]
    # Attempt 2: small is worth 10 + its critic's value − 1, the critic's best being small at
    # (1 − 0.5)·0.5·9 − 1 = 1.25, so 10.25 against big's 9: small answers, small judges.
    assert solver(1, np.array([0])).tolist() == [0]
    assert critic(1, np.array([0]), np.array([0.5])).tolist() == [0]
    # Attempt 1, with 10.25 behind it: small 10 + (0.25·10.25 − 1) − 1 = 10.5625 against 9.
    assert solver(0, np.array([0])).tolist() == [0]
    # Per-call routing, blind to the critic behind the answer, pays for big: 20 − 10 > 10 − 1.
    per_call_solver, _ = bound.per_call(estimates, loop, 20.0)
    assert per_call_solver(0, np.array([0])).tolist() == [1]


def test_no_fixed_routing_table_beats_the_optimal_policy_where_the_estimates_are_right() -> None:
    # Four questions, three models, random estimates; outcomes drawn from the estimates (the
    # loop's closed form takes probabilities too) and every run the pool allows, so each policy's
    # mean is its exact expectation.
    rng = np.random.default_rng(11)
    estimates = np.sort(rng.uniform(0.1, 0.95, (4, 3)), axis=1)
    costs = np.sort(rng.uniform(0.5, 10.0, (4, 3)), axis=1)
    loop = bound.Loop(costs, costs / 3, estimates)
    runs = np.array(list(itertools.product(range(4), repeat=6)))
    solves, critics = runs[:, :3], runs[:, 3:]

    def objective(policy: tuple[bound.SolverChoice, bound.CriticChoice], worth: float) -> float:
        cost, success = loop.run(solves, critics, estimates, *policy)
        return float(worth * success.mean() - cost.mean())

    for worth in (2.0, 10.0, 40.0):
        best = objective(bound.optimal(estimates, np.arange(4), loop, worth), worth)
        assert best >= objective(bound.per_call(estimates, loop, worth), worth) - 1e-3
        for _ in range(200):  # a model per (attempt, question) for answers and for critics
            answer, judge = rng.integers(0, 3, (3, 4)), rng.integers(0, 3, (3, 4))
            table = (lambda a, q, t=answer: t[a, q], lambda a, q, _, t=judge: t[a, q])
            assert best >= objective(table, worth) - 1e-3


def test_the_command_runs_on_a_file_with_gaps_and_a_lone_cluster(tmp_path: Path) -> None:
    outcomes, models = outcome_files(tmp_path)
    records = json.loads(outcomes.read_text(encoding="utf-8"))
    del records[0]["scores"]["mid-9b"]  # unmeasured: estimators learn from the rest, runs skip it
    records[1]["scores"]["big-70b"] = None
    records.append({"question": "Question alone: count vowels.", "cluster_id": "solo", "scores": records[2]["scores"]})
    outcomes.write_text(json.dumps(records), encoding="utf-8")
    out = tmp_path / "bound.json"
    args = ["--outcomes", str(outcomes), "--models", str(models), "--seeds", "2", "--runs", "40", "--json", str(out)]
    assert bound.main(args) == 0
    figures = json.loads(out.read_text(encoding="utf-8"))
    assert figures["meta"]["runs"] == 40
    for label in bound.COMPARISONS:
        assert np.isfinite(figures[label]["saving"]) and len(figures[label]["per_seed_saving"]) == 2
    for curve in figures["curves"].values():
        assert len(curve) == len(bound.WORTHS)
        assert all(np.isfinite(cost) and 0.0 <= success <= 1.0 for cost, success in curve)
