"""What knowing each run's task cluster could buy: the cheapest plan that matches all-cloud.

``python benchmarks/cluster_bound.py --outcomes PATH --models PATH [--json OUT]``
(the workflow benchmark's data files; any file of that format).

The workflow benchmark's ``cost_to_match_all_cloud`` asks how cheaply a strategy reaches the
success of sending every call to the best model. This script answers it for a strategy told
more than any run knows at its first call — the run's true task cluster — but nothing about
single questions: per cluster, every assignment of pool models to the workflow's call slots
(the same shapes and output tokens as ``workflows.py``) is scored with the models' mean
success in that cluster, and plans may be mixed across runs (``curves.frontier``). The
cheapest mix whose overall success reaches all-cloud's is the figure. A strategy whose
per-question estimates only tell clusters apart cannot beat it; one that beats it is using
what the questions say inside a cluster.

It is a bound on knowledge, not a run: every figure comes from the whole file's per-cluster
mean outcomes (no train/test split), with questions of a run drawn independently, as the
benchmark draws them.
"""

from __future__ import annotations

import argparse
import itertools
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
from workflows import ATTEMPTS, OUTPUT_TOKENS, QUORUMS

from graphroute.evaluation.data import load_llmrouter_json
from graphroute.planning.curves import frontier
from graphroute.planning.pricing import TokenCounter

Cost = Callable[[float], np.ndarray]  # a call's cost per model, given its output tokens
Plans = Callable[[np.ndarray, Cost], tuple[np.ndarray, np.ndarray]]


def at_least(successes: np.ndarray, needed: int) -> np.ndarray:
    """P(at least ``needed`` of independent calls succeed); ``successes``: [plans, calls]."""
    counts = np.zeros((len(successes), successes.shape[1] + 1))
    counts[:, 0] = 1.0
    for p in successes.T:
        counts[:, 1:] = counts[:, 1:] * (1 - p[:, None]) + counts[:, :-1] * p[:, None]
        counts[:, 0] *= 1 - p
    return np.asarray(counts[:, needed:].sum(axis=1))


def chain(accuracy: np.ndarray, cost: Cost) -> tuple[np.ndarray, np.ndarray]:
    """Every assignment of models to the chain's steps: (cost, success) per plan."""
    steps = list(OUTPUT_TOKENS["chain"].values())
    picks = np.array(list(itertools.product(range(len(accuracy)), repeat=len(steps))))
    success = np.prod(accuracy[picks], axis=1)
    spend = sum(cost(out)[picks[:, i]] for i, out in enumerate(steps))
    return spend, success


def map_reduce(accuracy: np.ndarray, cost: Cost) -> tuple[np.ndarray, np.ndarray]:
    """Planner and aggregator models, and a multiset of models for the six workers."""
    tokens = OUTPUT_TOKENS["map_reduce"]
    width, needed = 6, QUORUMS["map_reduce"]["worker"]
    n = len(accuracy)
    workers = np.array(list(itertools.combinations_with_replacement(range(n), width)))
    ends = np.array(list(itertools.product(range(n), repeat=2)))
    quorum = at_least(accuracy[workers], int(needed))
    worker_cost = cost(tokens["worker"])[workers].sum(axis=1)
    success = (accuracy[ends[:, 0]] * accuracy[ends[:, 1]])[:, None] * quorum[None, :]
    ends_cost = cost(tokens["planner"])[ends[:, 0]] + cost(tokens["aggregate"])[ends[:, 1]]
    spend = ends_cost[:, None] + worker_cost[None, :]
    return spend.ravel(), success.ravel()


def critic_loop(accuracy: np.ndarray, cost: Cost) -> tuple[np.ndarray, np.ndarray]:
    """A model per answer and per critic (the last critic can send nothing back: cheapest).

    A critic rejects a wrong answer when it gets its own question right, and never a right
    one; a rejected answer is tried again, up to ``ATTEMPTS`` answers.
    """
    tokens = OUTPUT_TOKENS["critic_loop"]
    solve, critic = cost(tokens["solve"]), cost(tokens["critic"])
    n = len(accuracy)
    picks = np.array(list(itertools.product(range(n), repeat=2 * ATTEMPTS - 1)))
    cheapest = int(np.argmin(critic))
    success, spend, reach = np.zeros(len(picks)), np.zeros(len(picks)), np.ones(len(picks))
    for attempt in range(ATTEMPTS):
        answer = picks[:, 2 * attempt]
        judge = picks[:, 2 * attempt + 1] if attempt < ATTEMPTS - 1 else np.full(len(picks), cheapest)
        spend += reach * (solve[answer] + critic[judge])
        success += reach * accuracy[answer]
        reach = reach * (1 - accuracy[answer]) * accuracy[judge]
    return spend, success


def cheapest_mix(hulls: list[np.ndarray], shares: np.ndarray, target: float) -> float | None:
    """Least expected spend per run reaching ``target`` success (a fractional knapsack over hull steps)."""
    spend = float(sum(w * h[0, 0] for w, h in zip(shares, hulls, strict=True)))
    success = float(sum(w * h[0, 1] for w, h in zip(shares, hulls, strict=True)))
    if success >= target:
        return spend
    steps = [
        (w * (h[i + 1, 1] - h[i, 1]), w * (h[i + 1, 0] - h[i, 0]))
        for w, h in zip(shares, hulls, strict=True)
        for i in range(len(h) - 1)
    ]
    for gain, extra in sorted(steps, key=lambda step: -step[0] / max(step[1], 1e-300)):
        if success + gain >= target:
            return spend + extra * (target - success) / gain
        success, spend = success + gain, spend + extra
    return None


WORKFLOWS: dict[str, Plans] = {"chain": chain, "map_reduce": map_reduce, "critic_loop": critic_loop}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--outcomes", type=Path, required=True)
    parser.add_argument("--models", type=Path, required=True)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    table = load_llmrouter_json(args.outcomes, args.models)
    prices = table.prices or {}
    models = [m for m in table.models if m in prices]
    columns = [table.models.index(m) for m in models]
    right = np.where(np.isnan(table.outcomes[:, columns]), np.nan, table.outcomes[:, columns] == 1)
    clusters = np.array(table.clusters or ["all"] * len(table.prompts))
    names = sorted(set(clusters))
    shares = np.array([np.mean(clusters == c) for c in names])
    tokens = np.array(TokenCounter().many(table.prompts), dtype=np.float64)
    input_price = np.array([prices[m][0] for m in models]) / 1e6
    output_price = np.array([prices[m][1] for m in models]) / 1e6
    best = int(np.nanargmax(np.nanmean(right, axis=0)))  # all-cloud: the best mean success
    figures: dict[str, dict[str, float | None]] = {}
    listed = ", ".join(f"{n} ({s:.2f})" for n, s in zip(names, shares, strict=True))
    print(f"all-cloud = {models[best]}; clusters {listed}")
    for name, plans in WORKFLOWS.items():
        hulls, cloud_spend, cloud_success = [], 0.0, 0.0
        for share, cluster in zip(shares, names, strict=True):
            rows = clusters == cluster
            accuracy = np.nan_to_num(np.nanmean(right[rows], axis=0))
            question = float(tokens[rows].mean())

            def cost(out: float, question: float = question) -> np.ndarray:
                return np.asarray(question * input_price + out * output_price)

            spend, success = plans(accuracy, cost)
            hulls.append(np.array(frontier(list(zip(spend.tolist(), success.tolist(), strict=True)))))

            # All-cloud: the same workflow with a pool of the best model alone (one plan).
            def cloud_cost(out: float, cost: Cost = cost) -> np.ndarray:
                return cost(out)[[best]]

            spend, success = plans(accuracy[[best]], cloud_cost)
            cloud_spend += share * float(spend[0])
            cloud_success += share * float(success[0])
        mix = cheapest_mix(hulls, shares, cloud_success)
        ratio = None if mix is None else mix / cloud_spend
        figures[name] = {"all_cloud_success": cloud_success, "cost_to_match_all_cloud": ratio}
        shown = "unreachable" if ratio is None else f"{ratio:.3f}"
        print(f"{name:<12} all-cloud success {cloud_success:.3f}  cluster known: cost to match all-cloud {shown}")
    if args.json:
        args.json.write_text(json.dumps({"all_cloud": models[best], "workflows": figures}, indent=2))


if __name__ == "__main__":
    main()
