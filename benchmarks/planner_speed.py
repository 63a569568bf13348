"""Re-planning speed: the solver against its previous version, side by side on one 50-node plan.

    python benchmarks/planner_speed.py [--outcomes ../shared/data/llmrouter/train.json]
        [--models ../shared/data/llmrouter/models.json] [--repeats 15] [--old-commit 2f3a2c7]

The problem is the workflow benchmark's (``workflows.replan_problem``: 47 steps, a 6-wide
quorum, a 3-attempt retry loop, 100 sample calls per node from the training split, a per-run
budget). The previous solver is read from git at ``--old-commit`` (the last commit before the
vectorised curves and the secant search for λ) and run in alternation with the current one
(a cold ``solve``) and with a re-plan (a kept ``Planner`` solving for a budget moved ±10 %),
so all see the same machine load; the figures that matter are the ratios. The goal (issue 6):
≤ 100 ms for a 50-node re-plan.
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.workflows import Bench, replan_problem  # noqa: E402
from graphroute.planning.solver import Planner, solve  # noqa: E402

OLD_COMMIT = "2f3a2c7"


def old_solver(commit: str) -> ModuleType:
    """``graphroute/planning/solver.py`` as it was at ``commit``, imported beside the current one."""
    source = subprocess.run(
        ["git", "-C", str(ROOT), "show", f"{commit}:graphroute/planning/solver.py"],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    path = Path(tempfile.mkdtemp()) / "old_solver.py"
    path.write_text(source, encoding="utf-8")
    spec = importlib.util.spec_from_file_location("old_solver", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def timed(fn: Any) -> tuple[Any, float, float]:
    started, started_cpu = time.perf_counter(), time.process_time()
    result = fn()
    return result, (time.perf_counter() - started) * 1000, (time.process_time() - started_cpu) * 1000


def main(argv: list[str] | None = None) -> int:
    data = ROOT.parent / "shared" / "data" / "llmrouter"
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--outcomes", type=Path, default=data / "train.json")
    parser.add_argument("--models", type=Path, default=data / "models.json")
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--old-commit", default=OLD_COMMIT)
    args = parser.parse_args(argv)
    bench = Bench(args.outcomes, args.models, ["chain"])
    workflow, demands, budget = replan_problem(bench)
    old = old_solver(args.old_commit)
    planner = Planner(workflow, demands, bench.prices)
    planner.solve(budget_usd=budget)
    names = ("old", "new", "re-plan")
    figures: dict[str, dict[str, list[float]]] = {name: {"wall": [], "cpu": []} for name in names}
    plans: dict[str, Any] = {}
    for i in range(args.repeats):
        moved = budget * (0.9 if i % 2 else 1.1)  # a pacer moving the per-run budget between runs
        solvers = {
            "old": lambda: old.solve(workflow, demands, bench.prices, budget_usd=budget),
            "new": lambda: solve(workflow, demands, bench.prices, budget_usd=budget),
            "re-plan": lambda moved=moved: planner.solve(budget_usd=moved),
        }
        for name in names:
            plans[name], wall, cpu = timed(solvers[name])
            figures[name]["wall"].append(wall)
            figures[name]["cpu"].append(cpu)
    print(f"{len(workflow.nodes())}-node workflow ({len(workflow.slots())} slots), budget ${budget:.6f}/run, "
          f"{args.repeats} alternating solves each")  # fmt: skip
    print(f"{'solver':<8} {'wall median ms':>15} {'wall min ms':>12} {'CPU median ms':>14} {'λ':>10} "
          f"{'expected $/run':>15} {'success':>8}")  # fmt: skip
    for name in names:
        wall, cpu, plan = figures[name]["wall"], figures[name]["cpu"], plans[name]
        print(f"{name:<8} {np.median(wall):>15.1f} {np.min(wall):>12.1f} {np.median(cpu):>14.1f} {plan.lam:>10.4g} "
              f"{plan.expected_cost:>15.6f} {plan.expected_success:>8.4f}")  # fmt: skip
    ratio = np.median(figures["new"]["cpu"]) / np.median(figures["old"]["cpu"])
    wall_ratio = np.median(figures["new"]["wall"]) / np.median(figures["old"]["wall"])
    replan = np.median(figures["re-plan"]["wall"])
    print(
        f"new/old: CPU {ratio:.2f}, wall {wall_ratio:.2f}; re-plan (Planner kept, budget ±10 %) "
        f"{replan:.1f} ms wall, {np.median(figures['re-plan']['cpu']):.1f} ms CPU; goal ≤ 100 ms wall: "
        f"cold solve {'met' if np.median(figures['new']['wall']) <= 100 else 'NOT met'}, "
        f"re-plan {'met' if replan <= 100 else 'NOT met'}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
