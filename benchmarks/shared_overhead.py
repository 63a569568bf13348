"""Shared-state overhead: one routing decision with local state vs Redis/PostgreSQL state.

Run: ``python benchmarks/shared_overhead.py --json shared_overhead.json``
(starts throwaway Redis and PostgreSQL servers from Debian's packages on 127.0.0.1, or use
``--redis URL --postgres URL``).

What one call costs graphroute besides the model call, timed per call in two configurations
that alternate call by call (same machine load):

- ``local``: bandit state in SQLite (WAL file), spend in the process, traces in SQLite;
- ``shared``: bandit state and spend in Redis, traces in PostgreSQL — what 8 workers share.

Per call: ``decision`` = route (rules pillar → bandit choice → budget guard reading the spend)
+ observe (bandit update, spend charge); ``trace`` = writing the call's trace row;
``total`` = both. Reported: p50/p99 in ms and shared/local ratios.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from langchain_core.messages import HumanMessage  # noqa: E402

from graphroute.pillars.bandit import BanditPillar, Outcome  # noqa: E402
from graphroute.pillars.base import RouteRequest  # noqa: E402
from graphroute.planning.pacing import BudgetPacer  # noqa: E402
from graphroute.providers.pool import ModelPool  # noqa: E402
from graphroute.routing.cascade import CascadeRouter  # noqa: E402
from graphroute.scaleout import open_bandit_store, open_spend_ledger, open_trace_store  # noqa: E402
from graphroute.scaleout.budget import BudgetGuard  # noqa: E402
from graphroute.traces.records import CallRecord  # noqa: E402

POOL = {
    "routing": {"default": "local"},
    "models": {
        "local": {
            "provider": "openai-compatible",
            "model": "m",
            "base_url": "http://127.0.0.1:9/v1",
            "locality": "local",
        },
        "cloud": {
            "provider": "openai-compatible",
            "model": "m",
            "base_url": "http://127.0.0.1:9/v1",
            "locality": "cloud",
            "input_price": 2.5,
            "output_price": 10.0,
        },
    },
}
PROMPTS = [
    "What is the capital of France?",
    "Prove that there are infinitely many primes, step by step.",
    "Summarise the meeting notes above in three bullet points.",
    "Write a Python function that merges two sorted lists.",
    "Translate 'see you tomorrow' into French.",
]


class Setup:
    """One configuration: a budget-guarded cascade with a bandit, and a trace store."""

    def __init__(self, name: str, bandit_store: Any, ledger: Any, traces: Any) -> None:
        pool = ModelPool.from_dict(POOL)
        self.name = name
        self.bandit = BanditPillar(store=bandit_store, seed=0)
        pacer = BudgetPacer(1.0, total_usd=1e6, period_s=86_400.0, ledger=ledger)
        self.router = BudgetGuard(CascadeRouter(pool, ["rules"], bandit=self.bandit), pool, pacer)
        self.store = traces
        self.store.start_run(f"bench-{name}", "benchmark")
        self.times: dict[str, list[float]] = {"decision": [], "trace": [], "total": []}

    def call(self, prompt: str, draw: random.Random) -> None:
        request = RouteRequest([HumanMessage(prompt)], node="answer")
        began = time.perf_counter()
        decision = self.router.route(request)
        cost = 0.0 if decision.model == "local" else 0.0004
        self.router.observe(decision, Outcome(cost_usd=cost, quality=draw.random()))
        decided = time.perf_counter()
        self.store.record_call(
            CallRecord(f"bench-{self.name}", "answer", None, decision.model, reason=decision.reason, cost_usd=cost)
        )
        ended = time.perf_counter()
        self.times["decision"].append((decided - began) * 1000)
        self.times["trace"].append((ended - decided) * 1000)
        self.times["total"].append((ended - began) * 1000)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def summary(values: list[float]) -> dict[str, float]:
    return {
        "p50_ms": statistics.median(values),
        "p99_ms": percentile(values, 0.99),
        "mean_ms": statistics.fmean(values),
    }


def servers(args: argparse.Namespace) -> tuple[str, str, Callable[[], None]]:
    if args.redis and args.postgres:
        return args.redis, args.postgres, lambda: None
    from tests.scaleout.servers import fresh_database, start_postgres, start_redis

    redis_server, postgres_server = start_redis(), start_postgres()
    database = fresh_database(postgres_server.url, "bench")

    def stop() -> None:
        redis_server.stop()
        postgres_server.stop()

    return redis_server.url, database, stop


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000, help="calls per configuration")
    parser.add_argument("--redis", help="redis:// URL (default: start a throwaway server)")
    parser.add_argument("--postgres", help="postgresql:// URL (default: start a throwaway server)")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args()

    redis_url, postgres_url, stop = servers(args)
    scratch = Path(tempfile.mkdtemp(prefix="graphroute-bench-"))
    try:
        local = Setup("local", scratch / "bandit.sqlite", open_spend_ledger(None), open_trace_store(scratch / "t.db"))
        shared = Setup(
            "shared",
            open_bandit_store(redis_url + "?prefix=bench"),
            open_spend_ledger(redis_url, name="bench", prefix="bench"),
            open_trace_store(postgres_url),
        )
        draw = random.Random(7)
        for warmup in range(50):
            for setup in (local, shared):
                setup.call(PROMPTS[warmup % len(PROMPTS)], draw)
        for setup in (local, shared):
            setup.times = {key: [] for key in setup.times}
        for index in range(args.calls):  # alternate call by call: both see the same machine load
            for setup in (local, shared) if index % 2 == 0 else (shared, local):
                setup.call(PROMPTS[index % len(PROMPTS)], draw)
        for setup in (local, shared):
            setup.store.close()
    finally:
        stop()
        shutil.rmtree(scratch, ignore_errors=True)

    results: dict[str, Any] = {"calls": args.calls}
    for part in ("decision", "trace", "total"):
        mine, theirs = summary(local.times[part]), summary(shared.times[part])
        results[part] = {
            "local": mine,
            "shared": theirs,
            "ratio_p50": theirs["p50_ms"] / mine["p50_ms"],
            "ratio_p99": theirs["p99_ms"] / mine["p99_ms"],
        }
    print(f"{args.calls} calls per configuration, alternating (local: SQLite + in-process; shared: Redis + PostgreSQL)")
    print(
        f"{'part':10} {'local p50':>10} {'local p99':>10} {'shared p50':>11} {'shared p99':>11} {'×p50':>6} {'×p99':>6}"
    )
    for part in ("decision", "trace", "total"):
        row = results[part]
        print(
            f"{part:10} {row['local']['p50_ms']:10.3f} {row['local']['p99_ms']:10.3f} "
            f"{row['shared']['p50_ms']:11.3f} {row['shared']['p99_ms']:11.3f} "
            f"{row['ratio_p50']:6.2f} {row['ratio_p99']:6.2f}"
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
