"""A per-model bound on requests in flight, shared by threads and coroutines.

A managed llama.cpp server decodes at most one request per parallel slot; anything beyond
waits in the server's queue while its HTTP timeout runs. Holding the surplus on our side
instead keeps the server exactly full and lets no request time out merely for being queued.
Slots are handed over first-come, first-served.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from concurrent.futures import Future


class Gate:
    """At most ``capacity`` holders at once; ``None`` means unbounded."""

    def __init__(self, capacity: int | None) -> None:
        self.capacity = capacity
        self.holders = 0
        self._waiting: deque[Future[None]] = deque()
        self._lock = threading.Lock()

    def _try_enter(self) -> Future[None] | None:
        """Enter now (None) or get the future that resolves when a slot is handed over."""
        with self._lock:
            if self.capacity is None or self.holders < self.capacity:
                self.holders += 1
                return None
            turn: Future[None] = Future()
            self._waiting.append(turn)
            return turn

    def enter(self) -> None:
        turn = self._try_enter()
        if turn is not None:
            turn.result()

    async def aenter(self) -> None:
        turn = self._try_enter()
        if turn is None:
            return
        try:
            await asyncio.shield(asyncio.wrap_future(turn))
        except asyncio.CancelledError:
            with self._lock:
                handed_over = turn.done()
                if not handed_over:
                    self._waiting.remove(turn)
            if handed_over:  # the slot arrived as we were cancelled: pass it on
                self.leave()
            raise

    def leave(self) -> None:
        with self._lock:
            if self._waiting:
                self._waiting.popleft().set_result(None)  # the slot goes straight to the next waiter
            else:
                self.holders -= 1
