"""A collection window: calls for one model that arrive close together leave together.

The first call opens the window, which stays open for at most ``wait_s``; it closes early once
``size`` calls have joined. When it closes, every member is released at the same
moment, so the whole group reaches the provider together — as concurrent requests that a
llama.cpp server with parallel slots decodes in one batch, or that a cloud API serves side by
side. Bounded size and bounded wait keep a lone call from waiting long and a burst from
overloading the server.
"""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout


class Window:
    """One group of calls for ``model``; ``members`` is final once the window has closed."""

    def __init__(self, model: str, *, size: int, wait_s: float) -> None:
        self.model = model
        self.size = max(1, size)
        self.wait_s = max(0.0, wait_s)
        self.opened = time.monotonic()
        self.members = 0
        self.closed = False
        self._released: Future[None] = Future()
        self._lock = threading.Lock()

    @property
    def full(self) -> bool:
        return self.members >= self.size

    def join(self) -> bool | None:
        """Add a member: True for the one who opened it, None if the window has closed meanwhile."""
        with self._lock:
            if self.closed:
                return None
            self.members += 1
            if self.full:
                self._close_locked()
            return self.members == 1

    def close(self) -> None:
        """No more members; release everyone. Idempotent."""
        with self._lock:
            self._close_locked()

    def _close_locked(self) -> None:
        self.closed = True
        if not self._released.done():
            self._released.set_result(None)

    # -- waiting until the group leaves -------------------------------------------------------
    # Every member waits for the same deadline (opened + wait_s) and closes the window itself if
    # nobody did: no member depends on another one surviving to release it.
    def wait(self) -> None:
        """Block until the window closes: full, or its wait time is up."""
        try:
            self._released.result(timeout=self.remaining())
        except FutureTimeout:
            pass
        finally:
            self.close()

    async def await_close(self) -> None:
        released = asyncio.shield(asyncio.wrap_future(self._released))
        try:
            await asyncio.wait({released}, timeout=self.remaining())
        finally:
            self.close()

    def remaining(self) -> float:
        return max(0.0, self.wait_s - (time.monotonic() - self.opened))
