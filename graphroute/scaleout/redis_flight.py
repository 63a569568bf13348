"""Single flight across processes: identical requests in flight on any worker are sent once.

The in-process ``SingleFlight`` (``batching/single_flight.py``) cannot see other workers. Here the
first worker to ``SET <prefix>flight:<key> <token> NX PX <lease>`` leads: it does the work and
publishes the encoded answer under ``<prefix>flight-result:<key>`` for a few seconds, then
releases its lock (only if it still holds it); a caller arriving while that result is fresh
shares it too (it was checking the cache while the flight landed). Every other worker polls the result key; it
takes over when the lock is gone without a result (the leader failed or its lease ran out),
so a crashed leader delays its followers by at most one lease, never fails them.

The key is the request's digest (model, parameters, messages): no prompt or secret in Redis keys.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from graphroute.scaleout.urls import redact, redis_client, split_prefix

T = TypeVar("T")

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


@dataclass(frozen=True)
class Landing(Generic[T]):
    """How a flight ended for one caller: its own ``value`` (leader) or the leader's ``shared`` text."""

    value: T | None = None
    shared: str | None = None

    @property
    def led(self) -> bool:
        return self.shared is None


class RedisSingleFlight:
    """Usage::

    flights = RedisSingleFlight("redis://state:6379/0")
    landing = flights.run(request.digest, send, encode=json.dumps)
    answer = landing.value if landing.led else json.loads(landing.shared)
    """

    def __init__(
        self, url: str, *, prefix: str | None = None, lease_ms: int = 30_000, result_ttl_ms: int = 10_000
    ) -> None:
        plain, self.prefix = split_prefix(url, prefix)
        self.url = redact(plain)  # the client holds the credentials; nothing else keeps them
        self.lease_ms = lease_ms
        self.result_ttl_ms = result_ttl_ms
        self._client = redis_client(plain)
        self._release = self._client.register_script(_RELEASE)

    def _keys(self, key: str) -> tuple[str, str]:
        return f"{self.prefix}flight:{key}", f"{self.prefix}flight-result:{key}"

    def _try_lead(self, lock: str, token: str) -> bool:
        return bool(self._client.set(lock, token, nx=True, px=self.lease_ms))

    def _publish(self, lock: str, result: str, token: str, blob: str) -> None:
        self._client.set(result, blob, px=self.result_ttl_ms)  # before the lock goes: no gap for a duplicate
        self._release(keys=[lock], args=[token])

    def _poll(self, lock: str, result: str) -> tuple[str | None, bool]:
        """(shared result, whether the lock was free) in one round trip.

        The lock is read first: a leader publishes before it unlocks, so "unlocked, then no
        result" means no flight landed with an answer and the caller may lead.
        """
        pipe = self._client.pipeline(transaction=False)
        pipe.exists(lock)
        pipe.get(result)
        held, blob = pipe.execute()
        return (blob.decode() if blob is not None else None), not held

    def _landed(self, lock: str, result: str, token: str) -> str | None:
        """After taking the lock: a flight that landed just before (its result still fresh)."""
        blob = self._client.get(result)
        if blob is None:
            return None
        self._release(keys=[lock], args=[token])
        return str(blob.decode())

    def run(self, key: str, work: Callable[[], T], *, encode: Callable[[T], str]) -> Landing[T]:
        """Lead the flight for ``key`` (run ``work``, publish ``encode(value)``) or share the leader's."""
        lock, result = self._keys(key)
        token = uuid.uuid4().hex
        delay = 0.002
        while True:
            if self._try_lead(lock, token):
                if (landed := self._landed(lock, result, token)) is not None:
                    return Landing(shared=landed)
                try:
                    value = work()
                except BaseException:
                    self._release(keys=[lock], args=[token])  # let a follower take over
                    raise
                self._publish(lock, result, token, encode(value))
                return Landing(value=value)
            shared, free = self._poll(lock, result)
            if shared is not None:
                return Landing(shared=shared)
            if not free:
                time.sleep(delay)
                delay = min(delay * 1.5, 0.05)

    async def arun(self, key: str, work: Callable[[], Awaitable[T]], *, encode: Callable[[T], str]) -> Landing[T]:
        """``run`` for a coroutine; waiting never blocks the event loop."""
        lock, result = self._keys(key)
        token = uuid.uuid4().hex
        delay = 0.002
        while True:
            if await asyncio.to_thread(self._try_lead, lock, token):
                if (landed := await asyncio.to_thread(self._landed, lock, result, token)) is not None:
                    return Landing(shared=landed)
                try:
                    value = await work()
                except BaseException:
                    await asyncio.to_thread(self._release, keys=[lock], args=[token])
                    raise
                await asyncio.to_thread(self._publish, lock, result, token, encode(value))
                return Landing(value=value)
            shared, free = await asyncio.to_thread(self._poll, lock, result)
            if shared is not None:
                return Landing(shared=shared)
            if not free:
                await asyncio.sleep(delay)
                delay = min(delay * 1.5, 0.05)

    def close(self) -> None:
        self._client.close()

    def __repr__(self) -> str:
        return f"RedisSingleFlight({self.url!r}, prefix={self.prefix!r})"
