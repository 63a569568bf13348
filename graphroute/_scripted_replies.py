"""What the scripted provider answers: ``Reply``, the scripts that hand them out, and what was asked.

A script is any callable from a ``ReceivedRequest`` to a ``Reply``; ``Script`` (replies in
order) and ``Faults`` (random fault injection) are the two ready-made ones. None of this knows
HTTP, so the chat endpoint and the Batch API stand-in answer from the same script.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Reply:
    """One scripted answer: a status, a text (or tool calls), token counts, an optional delay."""

    content: str = "ok"
    status: int = 200
    prompt_tokens: int = 10
    completion_tokens: int = 2
    delay_s: float = 0.0
    retry_after: str | None = "0"
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    drop: bool = False  # close the connection without answering


HANG = Reply(delay_s=30.0)  # longer than any sensible client timeout in a test
DROP = Reply(drop=True)


@dataclass
class ReceivedRequest:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


class Script:
    """Replies in order; the last one repeats once the list is used up."""

    def __init__(self, replies: Iterable[Reply]) -> None:
        self._replies = list(replies)
        self._index = itertools.count()
        self._lock = threading.Lock()

    def __call__(self, request: ReceivedRequest) -> Reply:
        with self._lock:
            index = next(self._index)
        return self._replies[min(index, len(self._replies) - 1)]


class Faults:
    """A fault-injecting script: with probability ``rate`` a fault (picked in turn), else ``healthy``.

    ``Faults(0.3)`` alternates 500, 429 with Retry-After, a hang and a dropped connection on
    30 % of calls. ``set_rate`` changes the rate while the server runs (an outage, a recovery).
    """

    def __init__(
        self, rate: float, faults: Iterable[Reply] | None = None, healthy: Reply | None = None, seed: int = 0
    ) -> None:
        import random

        self.rate = rate
        self.faults = list(faults or [Reply(status=500), Reply(status=429, retry_after="0"), HANG, DROP])
        self.healthy = healthy or Reply()
        self._rng = random.Random(seed)
        self._turn = itertools.count()
        self._lock = threading.Lock()
        self.injected = 0

    def set_rate(self, rate: float) -> None:
        self.rate = rate

    def __call__(self, request: ReceivedRequest) -> Reply:
        with self._lock:
            if self._rng.random() >= self.rate:
                return self.healthy
            self.injected += 1
            return self.faults[next(self._turn) % len(self.faults)]
