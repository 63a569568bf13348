"""The batcher on its own: single flight, bounded windows, errors shared with the waiters."""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from graphroute import ConfigError
from graphroute.batching import BatchConfig, Batcher, Gate, Outcome, SingleFlight


class Provider:
    """Counts what is actually sent; each send takes a moment so callers overlap."""

    def __init__(self, seconds: float = 0.2, fail: bool = False) -> None:
        self.sent: list[str] = []
        self.seconds = seconds
        self.fail = fail
        self._lock = threading.Lock()

    def send(self, prompt: str) -> dict[str, str]:
        with self._lock:
            self.sent.append(prompt)
        time.sleep(self.seconds)
        if self.fail:
            raise RuntimeError(f"provider rejected {prompt!r}")
        return {"answer": prompt.upper()}

    async def asend(self, prompt: str) -> dict[str, str]:
        with self._lock:
            self.sent.append(prompt)
        await asyncio.sleep(self.seconds)
        return {"answer": prompt.upper()}


def copy(value: dict[str, str]) -> dict[str, str]:
    return dict(value)


def call_together(
    batcher: Batcher, provider: Provider, prompts: list[str], *, dedupe: bool = True
) -> list[Outcome[Any]]:
    def one(prompt: str) -> Outcome[Any]:
        key = prompt if dedupe else None
        return batcher.run("local", key, lambda batched: provider.send(prompt), share=copy)

    with ThreadPoolExecutor(len(prompts)) as pool:
        return list(pool.map(one, prompts))


def test_identical_requests_in_flight_are_sent_once() -> None:
    provider, batcher = Provider(), Batcher(BatchConfig(window_ms=20))

    outcomes = call_together(batcher, provider, ["capital of peru?"] * 8)

    assert provider.sent == ["capital of peru?"]
    assert sum(outcome.deduped for outcome in outcomes) == 7
    assert all(outcome.value == {"answer": "CAPITAL OF PERU?"} for outcome in outcomes)
    values = [outcome.value for outcome in outcomes]
    assert len({id(value) for value in values}) == 8  # every waiter gets its own copy
    assert batcher.in_flight == 0


def test_similar_requests_leave_together_in_bounded_batches() -> None:
    provider = Provider(seconds=0.05)
    batcher = Batcher(BatchConfig(window_ms=1000, max_batch=3))

    outcomes = call_together(batcher, provider, [f"question {n}" for n in range(7)])

    assert sorted(provider.sent) == sorted(f"question {n}" for n in range(7))
    # Two full windows of 3 leave as soon as they fill; the 7th waits out its window alone.
    assert sorted(outcome.batched for outcome in outcomes) == [False] + [True] * 6


class Server(Provider):
    """Also records how many requests it is serving at once."""

    def __init__(self) -> None:
        super().__init__(seconds=0.1)
        self.serving = self.most_at_once = 0

    def send(self, prompt: str) -> dict[str, str]:
        with self._lock:
            self.serving += 1
            self.most_at_once = max(self.most_at_once, self.serving)
        try:
            return super().send(prompt)
        finally:
            with self._lock:
                self.serving -= 1


def test_batches_and_requests_in_flight_are_capped_by_what_the_model_serves_at_once() -> None:
    server = Server()
    batcher = Batcher(BatchConfig(window_ms=1000, max_batch=8), capacity_for=lambda model: 2)

    outcomes = call_together(batcher, server, [f"q{n}" for n in range(5)])

    assert sorted(outcome.batched for outcome in outcomes) == [False] + [True] * 4
    assert server.most_at_once == 2 and len(server.sent) == 5


async def test_coroutines_respect_the_in_flight_bound_too() -> None:
    provider, batcher = Provider(seconds=0.05), Batcher(BatchConfig(window_ms=5, max_in_flight=3))
    serving, most = 0, 0

    async def one(prompt: str) -> Outcome[Any]:
        async def work(batched: bool) -> dict[str, str]:
            nonlocal serving, most
            serving += 1
            most = max(most, serving)
            try:
                return await provider.asend(prompt)
            finally:
                serving -= 1

        return await batcher.arun("cloud", prompt, work, share=copy)

    await asyncio.gather(*(one(f"q{n}") for n in range(10)))

    assert most == 3 and len(provider.sent) == 10


def test_a_failure_reaches_every_waiter_and_the_next_call_tries_again() -> None:
    provider, batcher = Provider(fail=True), Batcher(BatchConfig(window_ms=5))

    def one(_: int) -> Outcome[Any] | BaseException:
        try:
            return batcher.run("local", "same", lambda batched: provider.send("same"), share=copy)
        except RuntimeError as error:
            return error

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(one, range(4)))

    raised = [result for result in results if isinstance(result, RuntimeError)]
    shared = [result for result in results if isinstance(result, Outcome)]
    assert len(raised) == 1 and len(shared) == 3  # the leader raises; waiters get the error to record
    assert all(outcome.deduped and isinstance(outcome.error, RuntimeError) for outcome in shared)
    assert provider.sent == ["same"]

    provider.fail = False
    assert batcher.run("local", "same", lambda batched: provider.send("same"), share=copy).value == {"answer": "SAME"}
    assert provider.sent == ["same", "same"]


def test_requests_without_a_key_are_never_merged() -> None:
    provider, batcher = Provider(), Batcher(BatchConfig(window_ms=20))

    outcomes = call_together(batcher, provider, ["write a poem"] * 4, dedupe=False)

    assert provider.sent == ["write a poem"] * 4
    assert not any(outcome.deduped for outcome in outcomes)


def test_a_lone_call_goes_out_unbatched() -> None:
    provider, batcher = Provider(seconds=0), Batcher(BatchConfig(window_ms=5))

    outcome = batcher.run("local", "k", lambda batched: provider.send("k"), share=copy)

    assert outcome == Outcome({"answer": "K"}, deduped=False, batched=False)


async def test_coroutines_are_grouped_and_deduplicated_too() -> None:
    provider, batcher = Provider(), Batcher(BatchConfig(window_ms=20))
    prompts = ["a", "b", "a", "c", "a", "b"]

    async def one(prompt: str) -> Outcome[Any]:
        async def work(batched: bool) -> dict[str, str]:
            return await provider.asend(prompt)

        return await batcher.arun("local", prompt, work, share=copy)

    outcomes = await asyncio.gather(*(one(prompt) for prompt in prompts))

    assert sorted(provider.sent) == ["a", "b", "c"]
    assert [outcome.value["answer"] for outcome in outcomes if outcome.value] == [p.upper() for p in prompts]
    assert sum(outcome.deduped for outcome in outcomes) == 3
    assert all(outcome.batched for outcome in outcomes if not outcome.deduped)


def test_single_flight_registry_hands_out_leader_and_followers() -> None:
    flights = SingleFlight()
    flight, leader = flights.join("k")
    same, follower_leads = flights.join("k")

    assert leader and not follower_leads and same is flight and flight.followers == 1
    flight.publish("done")
    flights.land(flight)
    assert same.result.result() == "done" and len(flights) == 0
    assert flights.join("k")[1]  # a new flight once the old one landed


def test_bad_settings_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="max_batch"):
        BatchConfig(max_batch=0)
    with pytest.raises(ConfigError, match="window_ms"):
        BatchConfig(window_ms=-1)
    with pytest.raises(ConfigError, match="batching="):
        BatchConfig.coerce("fast")


def test_followers_are_released_even_when_the_leader_fails_before_sending() -> None:
    def broken_limit(model: str) -> int:
        raise LookupError(f"no capacity known for {model}")

    provider, batcher = Provider(), Batcher(BatchConfig(window_ms=50), capacity_for=broken_limit)

    def one(_: int) -> Outcome[Any] | BaseException:
        try:
            return batcher.run("local", "same", lambda batched: provider.send("same"), share=copy)
        except LookupError as error:
            return error

    with ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(one, n) for n in range(4)]
        results = [future.result(timeout=30) for future in futures]  # a hang would fail here

    assert sum(isinstance(result, LookupError) for result in results) >= 1
    assert all(isinstance(r, LookupError) or isinstance(r.error, LookupError) for r in results)
    assert provider.sent == [] and batcher.in_flight == 0


async def test_a_cancelled_waiter_does_not_keep_a_slot() -> None:
    gate = Gate(1)
    gate.enter()
    waiter = asyncio.create_task(gate.aenter())
    await asyncio.sleep(0.01)

    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    gate.leave()

    await asyncio.wait_for(gate.aenter(), timeout=5)  # the slot is free again
    assert gate.holders == 1
