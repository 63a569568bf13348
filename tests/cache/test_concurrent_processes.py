"""Eight processes writing and reading one node-cache directory at once: no error, no bad entry."""

from __future__ import annotations

import multiprocessing
import random
import traceback
from pathlib import Path
from typing import Any

from graphroute.cache import DiskNodeCache

PROCESSES = 8
ROUNDS = 60
SHARED_KEYS = 24


def expected(namespace: tuple[str, ...], key: str) -> list[Any]:
    """Every writer of a key writes the same value, so any value read can be checked exactly."""
    return [["node", namespace[-1]], ["key", key], ["payload", key * 50]]


def worker(directory: str, number: int, barrier: Any, results: Any) -> None:
    try:
        rng = random.Random(number)
        own = ("__pregel_ns_writes", "tests.worker", f"worker{number}")
        shared = ("__pregel_ns_writes", "tests.shared", "shared")
        cache = DiskNodeCache(directory)
        barrier.wait()  # everyone starts together
        checked = 0
        for round_ in range(ROUNDS):
            key = f"k{rng.randrange(SHARED_KEYS)}"
            cache.set(
                {(own, f"r{round_}"): (expected(own, f"r{round_}"), None), (shared, key): (expected(shared, key), None)}
            )
            wanted = [(shared, f"k{rng.randrange(SHARED_KEYS)}"), (own, f"r{rng.randrange(round_ + 1)}")]
            for (namespace, read_key), value in cache.get(wanted).items():
                assert value == expected(namespace, read_key), f"corrupt entry {read_key}: {value!r}"
                checked += 1
        cache.close()
        results.put((number, "ok", checked))
    except BaseException:
        results.put((number, traceback.format_exc(), 0))


def test_eight_processes_share_one_directory(tmp_path: Path) -> None:
    context = multiprocessing.get_context("fork")
    barrier, results = context.Barrier(PROCESSES), context.Queue()
    processes = [context.Process(target=worker, args=(str(tmp_path), n, barrier, results)) for n in range(PROCESSES)]
    for process in processes:
        process.start()
    outcomes = [results.get(timeout=120) for _ in processes]
    for process in processes:
        process.join(timeout=30)

    assert [status for _, status, _ in sorted(outcomes)] == ["ok"] * PROCESSES
    assert all(process.exitcode == 0 for process in processes)
    assert sum(checked for _, _, checked in outcomes) > PROCESSES * ROUNDS  # plenty of reads verified

    with DiskNodeCache(tmp_path) as cache:
        assert cache.check() == []  # diskcache's own consistency check of the files
        for number in range(PROCESSES):
            own = ("__pregel_ns_writes", "tests.worker", f"worker{number}")
            keys = [(own, f"r{round_}") for round_ in range(ROUNDS)]
            found = cache.get(keys)
            assert len(found) == ROUNDS
            assert all(value == expected(ns, key) for (ns, key), value in found.items())
