"""Eight worker processes, one Redis, one PostgreSQL: the router learns and spends as one.

Each worker runs an optimized app whose cascade bandit (state in Redis) picks between a free
local model that refuses and a priced cloud model, under a budget every worker shares (spend
counted in Redis); every call is traced to one PostgreSQL database. Both models are scripted
OpenAI-compatible servers in this process.
"""

from __future__ import annotations

import math
import multiprocessing
from collections.abc import Iterator

import pytest

from graphroute.scaleout import open_bandit_store, open_spend_ledger, open_trace_store
from graphroute.testing import Reply, ScriptedProvider
from tests.scaleout.fleet import CLOUD_PRICE, Fleet, work

WORKERS = 8
CALL_COST = (10 + 2) * CLOUD_PRICE / 1_000_000  # what one scripted cloud call costs


@pytest.fixture
def providers() -> Iterator[tuple[ScriptedProvider, ScriptedProvider]]:
    with (
        ScriptedProvider(lambda request: Reply("I'm sorry, but I can't help with that.")) as local,
        ScriptedProvider(lambda request: Reply("Here is the answer.")) as cloud,
    ):
        yield local, cloud


def run_fleet(fleet: Fleet) -> list[dict]:
    # fork: the workers start with graphroute already imported (spawning 8 fresh interpreters
    # costs ~40 s on 2 cores); each opens its own connections, nothing open is shared.
    context = multiprocessing.get_context("fork")
    with context.Pool(WORKERS) as pool:
        return pool.starmap(work, [(fleet, index, WORKERS) for index in range(WORKERS)])


def test_eight_workers_share_one_budget_one_bandit_and_one_trace_database(
    providers: tuple[ScriptedProvider, ScriptedProvider], redis_url: str, postgres_url: str
) -> None:
    local, cloud = providers
    total_calls = 2000  # ~25 s on 2 cores
    budget = CALL_COST * total_calls / 8  # affordable: an eighth of the calls on the cloud
    fleet = Fleet(redis_url, postgres_url, local.base_url, cloud.base_url, budget, total_calls // WORKERS)

    reports = run_fleet(fleet)
    print(f"{total_calls} calls by {WORKERS} workers in {max(r['seconds'] for r in reports):.1f} s")

    # The shared budget holds within one call per worker, though each worker alone saw only its own calls.
    spent = math.fsum(report["spent"] for report in reports)
    assert spent <= budget + WORKERS * CALL_COST
    assert spent >= budget - CALL_COST  # and the cloud was used up to it: the guard, not the bandit, stopped it
    assert open_spend_ledger(redis_url, name="fleet").spent() == pytest.approx(spent)
    assert len(cloud.requests) + len(local.requests) == total_calls

    # No trace row lost: every call and run of every worker is in the one database.
    store = open_trace_store(postgres_url)
    calls = store.calls()
    assert len(calls) == total_calls == len({call.call_id for call in calls}) == store.count("runs")
    assert math.fsum(call.cost_usd for call in calls) == pytest.approx(spent)
    assert store.integrity_check() == "ok"

    # The bandit's statistics are the sum of all workers' observations.
    step, arms = open_bandit_store(redis_url).load("answer|any")
    assert step == total_calls
    for model in ("local", "cloud"):
        seen = [value for report in reports for value in report["observed"].get(model, [])]
        assert arms[model].plays == len(seen)
        assert arms[model].success == pytest.approx(math.fsum(seen), rel=1e-12)
        assert arms[model].success + arms[model].failure == pytest.approx(len(seen), rel=1e-12)
