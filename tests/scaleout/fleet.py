"""One worker of a fleet: an optimized app whose router state, budget and traces are shared.

Run in its own process (``multiprocessing`` spawn) by the fleet test; everything it shares
lives in the Redis and PostgreSQL the URLs name. It reports what it observed so the test can
check that the shared bandit holds exactly the sum of every worker's observations.
"""

from __future__ import annotations

import operator
import os
import time
from dataclasses import dataclass
from typing import Annotated, Any, TypedDict

from langchain_core.messages import HumanMessage
from langchain_openai import ChatOpenAI
from langgraph.graph import StateGraph

from graphroute import ModelPool, optimize
from graphroute.pillars.bandit import BanditPillar, Decay, Outcome
from graphroute.planning.pacing import BudgetPacer
from graphroute.routing.cascade import CascadeRouter
from graphroute.scaleout import open_spend_ledger
from graphroute.scaleout.budget import BudgetGuard
from tests.apps import one_node

CLOUD_PRICE = 1000.0  # USD per 1M tokens: a scripted call of 10 + 2 tokens costs $0.012
COST_WEIGHT = 10.0  # the bandit's λ: a cloud answer is worth 1 − 10 · 0.012 = 0.88


@dataclass(frozen=True)
class Fleet:
    redis_url: str
    postgres_url: str
    local_url: str
    cloud_url: str
    budget_usd: float
    calls_per_worker: int


class QA(TypedDict, total=False):
    question: str
    answers: Annotated[list[str], operator.add]


def answer(state: QA) -> QA:
    llm = ChatOpenAI(model="gpt-4o", temperature=0.0)  # intercepted: the router picks the model
    return {"answers": [str(llm.invoke([HumanMessage(state["question"])]).content)]}


def qa_graph() -> StateGraph:
    return one_node(QA, answer)


def pool(fleet: Fleet) -> ModelPool:
    entry = {"provider": "openai-compatible", "model": "scripted", "max_retries": 0}
    return ModelPool.from_dict(
        {
            "routing": {"default": "local"},
            "models": {
                "local": {**entry, "base_url": fleet.local_url, "locality": "local"},
                "cloud": {
                    **entry,
                    "base_url": fleet.cloud_url,
                    "locality": "cloud",
                    "input_price": CLOUD_PRICE,
                    "output_price": CLOUD_PRICE,
                },
            },
        }
    )


def router(fleet: Fleet, models: ModelPool, seed: int) -> BudgetGuard:
    """The cascade's bandit over [local, cloud] on shared state, under the fleet's shared budget."""
    bandit = BanditPillar(store=fleet.redis_url, cost_weight=COST_WEIGHT, decay=Decay(discount=1.0), seed=seed)
    cascade = CascadeRouter(models, pillars=[], bandit=bandit, ladder=["local", "cloud"])
    ledger = open_spend_ledger(fleet.redis_url, name="fleet")
    pacer = BudgetPacer(1.0, total_usd=fleet.budget_usd, period_s=86_400.0, ledger=ledger)
    return BudgetGuard(cascade, models, pacer, expected_output_tokens=2)


def work(fleet: Fleet, index: int, workers: int) -> dict[str, Any]:
    """Make ``calls_per_worker`` routed calls; returns what this worker observed and spent."""
    os.environ.setdefault("OPENAI_API_KEY", "sk-the-app-own-key")  # the app's ChatOpenAI needs one to be built
    models = pool(fleet)
    guard = router(fleet, models, seed=index)
    app = optimize(qa_graph(), pool=models, router=guard, traces=fleet.postgres_url)
    bandit = guard.inner.bandit
    start_together(fleet.redis_url, workers)
    started = time.perf_counter()
    observed: dict[str, list[float]] = {}
    spent = 0.0
    for call_number in range(fleet.calls_per_worker):
        result = app.invoke({"question": f"worker {index} question {call_number}"})
        [call] = app.last_run.calls
        reward = bandit.reward(Outcome.from_reply(result["answers"][0], cost_usd=call.cost_usd))
        observed.setdefault(call.model, []).append((reward + 1.0) / 2.0)  # the arm's success evidence
        spent += call.cost_usd
    app.store.close()
    return {"worker": index, "observed": observed, "spent": spent, "seconds": time.perf_counter() - started}


def start_together(redis_url: str, workers: int) -> None:
    """A barrier: every worker starts calling once all have started (spawning takes seconds)."""
    import redis

    client = redis.Redis.from_url(redis_url)
    client.incr("fleet-test:ready")
    deadline = time.monotonic() + 300
    while int(client.get("fleet-test:ready") or 0) < workers and time.monotonic() < deadline:
        time.sleep(0.01)
    client.close()
