"""One worker of the compose recipe: takes questions from a Redis list, answers them with the app.

Every worker builds the same router on shared state: the cascade's bandit learns in Redis, a
``BudgetGuard`` holds all workers to one daily budget counted in Redis, and ``optimize`` traces
to PostgreSQL and caches in Redis as the pool file's ``[storage]`` says.
"""

from __future__ import annotations

import os

import redis

from examples.research_assistant import build_graph
from graphroute import ModelPool, optimize
from graphroute.pillars.bandit import BanditPillar
from graphroute.planning.pacing import BudgetPacer
from graphroute.routing.cascade import CascadeRouter
from graphroute.scaleout import open_spend_ledger
from graphroute.scaleout.budget import BudgetGuard

REDIS = os.environ.get("GRAPHROUTE_REDIS", "redis://redis:6379/0")
QUEUE = "graphroute:questions"


def main() -> None:
    pool = ModelPool.from_toml(os.environ.get("GRAPHROUTE_POOL", "deploy/graphroute.toml"))
    bandit = BanditPillar(store=REDIS + "?prefix=graphroute")
    pacer = BudgetPacer(
        1.0,
        total_usd=float(os.environ.get("GRAPHROUTE_BUDGET_USD", "5.0")),
        period_s=86_400.0,
        ledger=open_spend_ledger(REDIS, name="daily", prefix="graphroute"),
    )
    router = BudgetGuard(CascadeRouter(pool, ["rules"], bandit=bandit), pool, pacer)
    app = optimize(build_graph(), pool=pool, router=router, cache=True)
    queue = redis.Redis.from_url(REDIS)
    while True:
        _, question = queue.blpop([QUEUE])
        result = app.invoke({"question": question.decode()})
        print(f"{app.last_run.run_id}: {result.get('title', '')} (${app.last_run.cost_usd:.4f})", flush=True)


if __name__ == "__main__":
    main()
