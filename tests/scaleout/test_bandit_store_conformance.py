"""Bandit state, one contract for every store: SQLite (local) and Redis (shared by workers).

Includes that Redis's server-side update computes exactly what ``ArmState.add`` computes. The
bandit pillar's own suite runs over both backends in ``test_bandit_pillar_on_backends.py``.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from graphroute.pillars.bandit import ArmState, BanditPillar, BanditStore, Decay, Evidence, SQLiteBanditStore
from graphroute.scaleout import open_bandit_store
from graphroute.scaleout.redis_bandit import RedisBanditStore

BACKENDS = ["sqlite", "redis"]


def open_backend(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> BanditStore:
    if kind == "sqlite":
        return SQLiteBanditStore(tmp_path / f"bandit-{random.random()}.sqlite")
    return open_bandit_store(request.getfixturevalue("redis_url"))


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BanditStore]:
    opened = open_backend(request.param, request, tmp_path)
    yield opened
    opened.close()


def test_an_update_advances_the_context_and_adds_to_one_arm(store: BanditStore) -> None:
    decay = Decay(discount=0.5)
    store.update("plan|hard", "cloud", Evidence(0.75, 0.25), decay)
    store.update("plan|hard", "local", Evidence(1.0, 0.0), decay)

    step, arms = store.load("plan|hard")

    assert step == 2
    assert arms["cloud"] == ArmState(0.75, 0.25, plays=1, step=1)
    assert arms["local"] == ArmState(1.0, 0.0, plays=1, step=2)
    assert store.load("write|easy") == (0, {})


def test_updates_compute_exactly_what_armstate_add_computes(store: BanditStore) -> None:
    """Decay, error streaks, rests and healing: a random history replayed in Python must match."""
    decay = Decay(discount=0.93, backoff=2, max_backoff=16, heal_after=2)
    draw = random.Random(7)
    expected: dict[str, ArmState] = {}
    for step in range(1, 301):
        model = draw.choice(["a", "b", "c"])
        error = draw.random() < 0.2
        success = 0.0 if error else draw.random()
        evidence = Evidence(success, 1.0 - success, error)
        store.update("ctx", model, evidence, decay)
        expected[model] = expected.get(model, ArmState()).add(step, evidence, decay)

    step, arms = store.load("ctx")

    assert step == 300
    assert arms == expected


def test_contexts_are_listed_and_cleared_one_by_one_or_all(store: BanditStore) -> None:
    for context in ("write|easy", "plan|hard", "plan|easy"):
        store.update(context, "m", Evidence(1.0, 0.0), Decay())

    assert store.contexts() == ["plan|easy", "plan|hard", "write|easy"]
    store.clear("plan|hard")
    assert store.contexts() == ["plan|easy", "write|easy"]
    assert store.load("plan|hard") == (0, {})
    store.clear()
    assert store.contexts() == []


def test_concurrent_updates_all_count(store: BanditStore) -> None:
    no_decay = Decay(discount=1.0)

    def worker(index: int) -> None:
        for _ in range(50):
            store.update("busy", f"m{index % 2}", Evidence(0.5, 0.5), no_decay)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    step, arms = store.load("busy")
    assert step == 300
    assert {model: arm.plays for model, arm in arms.items()} == {"m0": 150, "m1": 150}
    assert sum(arm.success + arm.failure for arm in arms.values()) == 300.0


def test_a_url_opens_the_shared_store_and_a_bad_scheme_names_itself(redis_url: str) -> None:
    from graphroute import ConfigError

    assert isinstance(BanditPillar(store=redis_url + "?prefix=app").store, RedisBanditStore)
    with pytest.raises(ConfigError, match=r"unknown URL scheme 'mongodb' in 'mongodb://u:\*\*\*@h/db'"):
        open_bandit_store("mongodb://u:hunter2@h/db")
    with pytest.raises(ConfigError, match="postgresql is not supported here"):
        open_bandit_store("postgresql://h/db")
