"""The node-cache conformance suite (tests/cache) again, over the local and the shared backends.

The suite's tests are imported, not copied; only the ``cache`` fixture changes: diskcache,
graphroute's ``RedisNodeCache`` and, for comparison, LangGraph's own ``RedisCache``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from langgraph.cache.base import BaseCache

from graphroute.cache import DiskNodeCache
from graphroute.scaleout import open_node_cache
from graphroute.scaleout.redis_cache import RedisNodeCache
from tests.cache.test_node_cache_conformance import (  # noqa: F401  (collected here against each backend)
    NS,
    OTHER_NS,
    test_a_key_lives_in_its_namespace,
    test_a_langgraph_app_reuses_node_results_from_the_backend,
    test_an_async_run_reuses_node_results_too,
    test_async_twins_behave_like_the_sync_methods,
    test_clear_removes_only_the_given_namespaces,
    test_entries_expire_after_their_ttl,
    test_missing_keys_are_simply_absent,
    test_setting_again_overwrites,
    test_values_round_trip_through_the_serializer,
)


@pytest.fixture(params=["diskcache", "redis", "langgraph-redis"])
def cache(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BaseCache[Any]]:
    if request.param == "diskcache":
        with DiskNodeCache(tmp_path / "nodes") as disk:
            yield disk
        return
    url = request.getfixturevalue("redis_url")
    if request.param == "redis":
        backend = open_node_cache(url)
        assert isinstance(backend, RedisNodeCache)
        yield backend
        backend.close()
    else:
        import redis
        from langgraph.cache.redis import RedisCache

        client = redis.Redis.from_url(url)
        yield RedisCache(client, prefix="lg:")
        client.close()


def test_namespaces_that_differ_only_in_where_they_split_never_collide(redis_url: str) -> None:
    cache = RedisNodeCache(redis_url)
    cache.set({(("a:b",), "k"): (["joined"], None), (("a", "b"), "k"): (["split"], None)})

    assert cache.get([(("a:b",), "k")]) == {(("a:b",), "k"): ["joined"]}
    assert cache.get([(("a", "b"), "k")]) == {(("a", "b"), "k"): ["split"]}
    cache.clear([("a:b",)])
    assert cache.get([(("a:b",), "k"), (("a", "b"), "k")]) == {(("a", "b"), "k"): ["split"]}


def test_two_apps_sharing_one_redis_keep_apart_by_prefix(redis_url: str) -> None:
    mine = RedisNodeCache(redis_url + "?prefix=app-one")
    theirs = RedisNodeCache(redis_url, prefix="app-two")
    mine.set({(NS, "k"): (["mine"], None)})
    theirs.set({(NS, "k"): (["theirs"], None)})

    mine.clear()

    assert mine.get([(NS, "k")]) == {}
    assert theirs.get([(NS, "k")]) == {(NS, "k"): ["theirs"]}
    assert (len(mine), len(theirs)) == (0, 1)
    assert mine.prefix == "app-one:"
