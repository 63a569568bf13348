"""Single flight: identical requests in flight at the same time are sent once.

The first caller with a key becomes the flight's leader and does the work; every caller that
arrives with the same key before the leader lands waits for the leader's result (or error)
instead of sending its own copy. A flight lands as soon as its result is published, so a
later identical request is a new flight — or a cache hit, when a response cache is on.
"""

from __future__ import annotations

import threading
from collections.abc import Hashable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Flight:
    """One request in flight; ``result`` resolves to what the leader shares (or its error)."""

    key: Hashable
    result: Future[Any] = field(default_factory=Future)
    followers: int = 0

    def publish(self, value: Any) -> None:
        if not self.result.done():
            self.result.set_result(value)

    def fail(self, error: BaseException) -> None:
        if not self.result.done():
            self.result.set_exception(error)


class SingleFlight:
    """The registry of flights in the air, safe to use from threads and event loops alike.

    Usage::

        flight, leader = flights.join(key)
        if leader:
            try:
                flight.publish(do_the_work())
            finally:
                flights.land(flight)
        else:
            value = flight.result.result()
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._flights: dict[Hashable, Flight] = {}

    def join(self, key: Hashable) -> tuple[Flight, bool]:
        """The flight for ``key`` and whether the caller leads it (True) or follows it."""
        with self._lock:
            flight = self._flights.get(key)
            if flight is not None:
                flight.followers += 1
                return flight, False
            flight = self._flights[key] = Flight(key)
            return flight, True

    def land(self, flight: Flight) -> None:
        """Take a finished flight off the registry (after publishing its result)."""
        with self._lock:
            if self._flights.get(flight.key) is flight:
                del self._flights[flight.key]

    def __len__(self) -> int:
        with self._lock:
            return len(self._flights)
