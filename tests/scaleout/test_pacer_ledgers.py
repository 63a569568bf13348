"""The budget pacer on each spend ledger: in-process (default) and Redis (shared by workers).

The pacer's own suite (tests/planning/test_pacing.py, imported) runs with every
``BudgetPacer`` given a fresh ledger of the backend under test; then the ledger contract.
"""

from __future__ import annotations

import functools
import threading
import uuid
from collections.abc import Callable

import pytest

import tests.planning.test_pacing as pacing_suite
from graphroute.planning.pacing import BudgetPacer, LocalLedger, SpendLedger
from graphroute.scaleout import open_spend_ledger
from graphroute.scaleout.redis_ledger import RedisSpendLedger
from tests.planning.test_pacing import (  # noqa: F401  (collected here against each ledger)
    router_and_pacer,
    test_a_hundred_runs_stay_within_budget_and_lambda_follows_spend,
    test_a_monthly_budget_paces_by_elapsed_time,
    test_a_rolling_budget_needs_a_horizon,
    test_an_early_overspend_makes_later_runs_cheaper,
)


@pytest.fixture(params=["local", "redis"])
def new_ledger(request: pytest.FixtureRequest) -> Callable[[], SpendLedger]:
    if request.param == "local":
        return LocalLedger
    url = request.getfixturevalue("redis_url")
    return lambda: open_spend_ledger(url, name=uuid.uuid4().hex)


@pytest.fixture(autouse=True)
def pacers_use(new_ledger: Callable[[], SpendLedger], monkeypatch: pytest.MonkeyPatch) -> type:
    """Every ``BudgetPacer`` the imported suite builds counts its spend in the ledger under test."""

    def pacer(*args: object, **kwargs: object) -> BudgetPacer:
        return BudgetPacer(*args, ledger=new_ledger(), **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(pacing_suite, "BudgetPacer", functools.wraps(BudgetPacer)(pacer))
    return type(new_ledger())


def test_the_suite_really_runs_on_the_ledger_under_test(pacers_use: type) -> None:
    assert type(pacing_suite.BudgetPacer(1.0, total_usd=1.0, runs=2).ledger) is pacers_use


def test_charges_from_many_threads_all_count(new_ledger: Callable[[], SpendLedger]) -> None:
    ledger = new_ledger()

    def spend() -> None:
        for _ in range(100):
            ledger.charge(0.25)

    threads = [threading.Thread(target=spend) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert ledger.spent() == 150.0
    assert ledger.finish_run(-0.5) == (149.5, 1)
    assert ledger.runs() == 1


def test_the_period_starts_when_the_first_pacer_starts(new_ledger: Callable[[], SpendLedger]) -> None:
    ledger = new_ledger()
    assert ledger.start(100.0) == 100.0
    assert ledger.start(250.0) == 100.0  # a worker starting later keeps the period's start


def test_two_workers_pacers_guard_one_budget(redis_url: str) -> None:
    first = BudgetPacer(1.0, total_usd=1.0, runs=10, ledger=RedisSpendLedger(redis_url, name="team"))
    second = BudgetPacer(1.0, total_usd=1.0, runs=10, ledger=RedisSpendLedger(redis_url, name="team"))
    other_budget = BudgetPacer(1.0, total_usd=1.0, runs=10, ledger=RedisSpendLedger(redis_url, name="other"))

    first.charge(0.75)

    assert second.spent_usd == 0.75
    assert not second.allows(0.5, run_spent_usd=0.0) and second.allows(0.25, run_spent_usd=0.0)
    assert other_budget.allows(0.5, run_spent_usd=0.0)  # budgets are kept apart by name
    second.end_run(0.75, charged_usd=0.0)
    assert (first.spent_usd, first.finished_runs) == (1.5, 1)


def test_a_ledger_needs_a_redis_url(tmp_path: object) -> None:
    from graphroute import ConfigError

    with pytest.raises(ConfigError, match="budget ledger: postgresql is not supported here"):
        open_spend_ledger("postgresql://db/x")
    assert isinstance(open_spend_ledger(None), LocalLedger)
