"""The bandit pillar's suite (tests/pillars/test_bandit.py, imported) on SQLite and on Redis.

Those tests build ``BanditPillar(store=":memory:")``; here ``":memory:"`` opens a fresh store of
the backend under test instead, so the same learning, healing and context tests run on both.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import graphroute.pillars.bandit as bandit_module
from graphroute.pillars.bandit import BanditPillar, BanditStore, SQLiteBanditStore
from graphroute.scaleout.redis_bandit import RedisBanditStore
from tests.pillars.test_bandit import (  # noqa: F401  (collected here against each backend)
    test_a_provider_that_errors_rests_then_gets_one_probe_and_heals,
    test_both_policies_settle_on_the_best_arm,
    test_contexts_are_learned_separately_per_node_and_difficulty_bucket,
    test_update_accepts_what_choose_returned_or_a_context_and_model,
)
from tests.scaleout.test_bandit_store_conformance import BACKENDS, open_backend


@pytest.fixture(params=BACKENDS, autouse=True)
def memory_store_is(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """The imported pillar tests ask for ``store=":memory:"``: give them this backend instead."""
    coerce = bandit_module._coerce_store

    def backend(store: object) -> BanditStore:
        return open_backend(request.param, request, tmp_path) if store == ":memory:" else coerce(store)  # type: ignore[arg-type]

    monkeypatch.setattr(bandit_module, "_coerce_store", backend)
    return str(request.param)


def test_the_pillar_really_runs_on_the_backend_under_test(memory_store_is: str) -> None:
    kind = type(BanditPillar(store=":memory:").store)
    assert kind is {"sqlite": SQLiteBanditStore, "redis": RedisBanditStore}[memory_store_is]
