"""The batcher between the router and the providers: group, deduplicate, send together.

LangGraph runs each ``Send`` worker as its own task and never batches their model calls. The
batcher sits where a routed call is about to be sent (after routing, before the provider):

1. **single flight** — an identical request already in flight is not sent again; the caller
   waits for that flight's answer (``deduped``);
2. **grouping** — calls for the same pool model that arrive within ``window_ms`` of each other
   join one window of at most ``max_batch`` calls;
3. **dispatch together** — when the window closes, its calls are released at once and go out
   concurrently: the local llama.cpp server decodes them in one continuous batch across its
   parallel slots, and a cloud client serves them side by side exactly as its own
   ``batch``/``abatch`` would (both are thread pools / ``asyncio.gather`` in LangChain). Each
   call keeps its own callbacks, retries and fallbacks; a call that shared its window is
   ``batched``;
4. **bounded in flight** — no more calls are sent to a model at once than it can serve (a
   llama.cpp server's slots; ``max_in_flight`` for others): the surplus waits here rather than in
   the server's queue, where its HTTP timeout would keep running.

Provider batch APIs (OpenAI's asynchronous Batch endpoint, hours of latency for half the price)
are not used here: they suit offline jobs, and are opted into per pool model (``batch_api = true``,
``providers/batch_api.py``), below this batcher.

Only deterministic requests are deduplicated unless ``dedupe_nondeterministic`` is set: two
identical requests at temperature 0.8 are meant to give two different samples.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

from graphroute.batching.gate import Gate
from graphroute.batching.single_flight import Flight, SingleFlight
from graphroute.batching.window import Window
from graphroute.errors import ConfigError

T = TypeVar("T")


@dataclass(frozen=True)
class BatchConfig:
    """How calls are grouped: ``BatchConfig(window_ms=5, max_batch=8)``.

    ``max_batch`` is also capped per model by what the model can take at once (a managed
    llama.cpp server's parallel slots), which also bounds its calls in flight; ``max_in_flight``
    bounds models whose capacity is unknown (None: no bound).
    """

    window_ms: float = 5.0
    max_batch: int = 8
    dedupe: bool = True
    dedupe_nondeterministic: bool = False
    max_in_flight: int | None = None

    def __post_init__(self) -> None:
        if self.window_ms < 0 or self.window_ms > 10_000:
            raise ConfigError(f"batching window_ms must be within 0..10000 ms, got {self.window_ms}")
        if self.max_batch < 1:
            raise ConfigError(f"batching max_batch must be at least 1, got {self.max_batch}")
        if self.max_in_flight is not None and self.max_in_flight < 1:
            raise ConfigError(f"batching max_in_flight must be at least 1 (or None), got {self.max_in_flight}")

    @classmethod
    def coerce(cls, value: object) -> BatchConfig | None:
        if value is None or value is False:
            return None
        if value is True:
            return cls()
        if isinstance(value, cls):
            return value
        raise ConfigError(f"batching= takes True, False or a BatchConfig; got {type(value).__name__}")


@dataclass(frozen=True)
class Outcome(Generic[T]):
    """A call's answer and how it was obtained.

    A follower of a failed flight gets the leader's ``error`` here rather than raised, so it
    can record its own (deduplicated) failure before raising it.
    """

    value: T | None
    deduped: bool = False
    batched: bool = False
    error: BaseException | None = None


class Batcher:
    """Groups and deduplicates calls per model; one per optimized app, shared by its runs.

    ``work(batched)`` sends the call (``batched`` says whether it shares its window) and
    returns its answer. ``share`` makes copies for the callers that waited on it: it is applied
    once to the answer (a snapshot, published before the leader's caller can change it) and
    then to that snapshot for each follower, so it must accept its own output.
    """

    def __init__(
        self, config: BatchConfig | None = None, *, capacity_for: Callable[[str], int | None] | None = None
    ) -> None:
        self.config = config or BatchConfig()
        self._capacity_for = capacity_for
        self._flights = SingleFlight()
        self._windows: dict[str, Window] = {}
        self._gates: dict[str, Gate] = {}
        self._lock = threading.Lock()

    def _capacity(self, model: str) -> int | None:
        capacity = self._capacity_for(model) if self._capacity_for else None
        return capacity if capacity is not None else self.config.max_in_flight

    def _size(self, model: str) -> int:
        capacity = self._capacity(model)
        return max(1, min(self.config.max_batch, capacity or self.config.max_batch))

    def _gate(self, model: str) -> Gate:
        with self._lock:
            gate = self._gates.get(model)
            if gate is None:
                gate = self._gates[model] = Gate(self._capacity(model))
            return gate

    def _window(self, model: str) -> Window:
        with self._lock:
            while True:
                window = self._windows.get(model)
                if window is None or window.closed:
                    window = Window(model, size=self._size(model), wait_s=self.config.window_ms / 1000)
                    self._windows[model] = window
                if window.join() is not None:
                    return window

    def _flight(self, model: str, key: Hashable | None) -> tuple[Flight | None, bool]:
        if key is None or not self.config.dedupe:
            return None, True
        return self._flights.join((model, key))

    def run(self, model: str, key: Hashable | None, work: Callable[[bool], T], share: Callable[[T], T]) -> Outcome[T]:
        """Send (or wait for) one call from a thread."""
        flight, leader = self._flight(model, key)
        if flight is not None and not leader:
            try:
                value = flight.result.result()
            except BaseException as error:
                return Outcome(None, deduped=True, error=error)
            return Outcome(share(value), deduped=True)
        try:  # from here on, whatever happens, the flight's followers must hear of it
            window = self._window(model)
            window.wait()
            batched = window.members > 1
            gate = self._gate(model)
            gate.enter()
            try:
                value = work(batched)
            finally:
                gate.leave()
        except BaseException as error:
            if flight is not None:
                flight.fail(error)
                self._flights.land(flight)
            raise
        self._complete(flight, value, share)
        return Outcome(value, batched=batched)

    async def arun(
        self, model: str, key: Hashable | None, work: Callable[[bool], Awaitable[T]], share: Callable[[T], T]
    ) -> Outcome[T]:
        """Send (or wait for) one call from a coroutine."""
        flight, leader = self._flight(model, key)
        if flight is not None and not leader:
            try:
                value = await asyncio.shield(asyncio.wrap_future(flight.result))
            except asyncio.CancelledError:
                raise
            except BaseException as error:
                return Outcome(None, deduped=True, error=error)
            return Outcome(share(value), deduped=True)
        try:
            window = self._window(model)
            await window.await_close()
            batched = window.members > 1
            gate = self._gate(model)
            await gate.aenter()
            try:
                value = await work(batched)
            finally:
                gate.leave()
        except BaseException as error:
            if flight is not None:
                flight.fail(error)
                self._flights.land(flight)
            raise
        self._complete(flight, value, share)
        return Outcome(value, batched=batched)

    def _complete(self, flight: Flight | None, value: T, share: Callable[[T], T]) -> None:
        """Publish, then land: a follower that joined in between still finds the answer, and a
        caller arriving after landing starts a fresh flight (or hits the response cache)."""
        if flight is None:
            return
        try:
            flight.publish(share(value))
        except BaseException as error:
            flight.fail(error)
            raise
        finally:
            self._flights.land(flight)

    @property
    def in_flight(self) -> int:
        return len(self._flights)
