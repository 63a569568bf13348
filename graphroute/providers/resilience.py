"""Retries, circuit breakers and fallbacks: a flaky provider costs a retry, not a lost run.

* ``RetryPolicy`` — exponential backoff with jitter on 429 / 5xx / connection errors /
  timeouts, honouring ``Retry-After``; other errors (a bad request, a missing key) are not
  retried because repeating them cannot help.
* ``CircuitBreaker`` — per model: opens after ``failure_threshold`` consecutive failures, lets one
  probe through after ``cooldown_s`` (half-open), closes on its success. While open, calls skip
  the model at once instead of waiting for its timeout. The breakers live in a process-wide
  ``BreakerBoard`` so routing (the bandit) can read their state.
* ``run_with_fallbacks`` — tries an ordered list of models, each with retries, and raises one
  ``AllModelsFailedError`` naming every model tried and why it failed.

A request that must stay local (privacy, data residency) is given only local candidates by the
caller; this module never adds a model that was not in the list.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Literal, TypeVar

from graphroute.errors import GraphRouteError, ProviderError

T = TypeVar("T")
BreakerState = Literal["closed", "open", "half_open"]
RETRYABLE_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504})


class AllModelsFailedError(ProviderError):
    """Every candidate model failed; ``failures`` maps each model tried to why."""

    def __init__(self, failures: dict[str, str], *, node: str | None = None, run_id: str | None = None) -> None:
        listing = "; ".join(f"{model}: {why}" for model, why in failures.items())
        where = f" for node {node!r}" if node else ""
        super().__init__(f"no model could answer{where} — {listing}", node=node, run_id=run_id)
        self.failures = failures


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently one model is retried. ``RetryPolicy(0)`` never retries."""

    max_retries: int = 2
    base_delay_s: float = 0.5
    max_delay_s: float = 20.0
    jitter: float = 0.5  # each delay is scaled by a random factor in [1 - jitter, 1]

    def delay(self, retry: int, retry_after_s: float | None = None, rng: random.Random | None = None) -> float:
        """Seconds to wait before retry number ``retry`` (1-based)."""
        if retry_after_s is not None:
            return min(max(retry_after_s, 0.0), self.max_delay_s)
        backoff = min(self.base_delay_s * 2 ** (retry - 1), self.max_delay_s)
        return backoff * (1 - self.jitter * (rng or random).random())


def _status(error: BaseException) -> int | None:
    status = getattr(error, "status_code", None) or getattr(getattr(error, "response", None), "status_code", None)
    return int(status) if isinstance(status, int) else None


def retry_after_s(error: BaseException) -> float | None:
    """The ``Retry-After`` header of a failed HTTP call, in seconds (number or HTTP date)."""
    headers = getattr(getattr(error, "response", None), "headers", None)
    value = headers.get("retry-after") if headers is not None else None
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        try:
            return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
        except (TypeError, ValueError):
            return None


def is_retryable(error: BaseException) -> bool:
    """Transient failures: rate limits, server errors, connection problems, timeouts."""
    if isinstance(error, GraphRouteError) and not isinstance(error, ProviderError):
        return False  # configuration problems: retrying cannot help
    status = _status(error)
    if status is not None:
        return status in RETRYABLE_STATUS
    names = {cls.__name__ for cls in type(error).__mro__}
    transient = (
        "ConnectionError",
        "APIConnectionError",
        "APITimeoutError",
        "ConnectError",
        "ReadTimeout",
        "TimeoutException",
        "TimeoutError",
        "RemoteProtocolError",
        "EndpointUnreachableError",
    )
    return any(name in names for name in transient)


@dataclass
class CircuitBreaker:
    """Per-model breaker; thread-safe."""

    failure_threshold: int = 5
    cooldown_s: float = 30.0
    clock: Callable[[], float] = time.monotonic
    failures: int = 0
    opened_at: float | None = None
    _probing: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def state(self) -> BreakerState:
        if self.opened_at is None:
            return "closed"
        return "half_open" if self.clock() - self.opened_at >= self.cooldown_s else "open"

    def allow(self) -> bool:
        """May a call go to this model now? In half-open state only one probe at a time."""
        with self._lock:
            state = self.state
            if state == "closed":
                return True
            if state == "half_open" and not self._probing:
                self._probing = True
                return True
            return False

    def record_success(self) -> None:
        with self._lock:
            self.failures, self.opened_at, self._probing = 0, None, False

    def record_failure(self) -> None:
        with self._lock:
            self.failures += 1
            if self._probing or self.failures >= self.failure_threshold:
                self.opened_at = self.clock()  # (re)open: a failed probe restarts the cool-down
            self._probing = False


class BreakerBoard:
    """The process's breakers, one per model name, created on first use."""

    def __init__(
        self, failure_threshold: int = 5, cooldown_s: float = 30.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.failure_threshold = failure_threshold
        self.cooldown_s = cooldown_s
        self.clock = clock
        self._breakers: dict[str, CircuitBreaker] = {}
        self._lock = threading.Lock()

    def __getitem__(self, model: str) -> CircuitBreaker:
        with self._lock:
            breaker = self._breakers.get(model)
            if breaker is None:
                breaker = CircuitBreaker(self.failure_threshold, self.cooldown_s, self.clock)
                self._breakers[model] = breaker
            return breaker

    def state(self, model: str) -> BreakerState:
        return self[model].state

    def configure(
        self,
        *,
        failure_threshold: int | None = None,
        cooldown_s: float | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        """Change the thresholds (or the clock); applies to every breaker, existing ones included.

        A clock other than ``time.monotonic`` makes cool-downs independent of wall time, so a
        test can say "the circuit stays open for the next N calls" on any machine.
        """
        with self._lock:
            self.failure_threshold = failure_threshold or self.failure_threshold
            self.cooldown_s = self.cooldown_s if cooldown_s is None else cooldown_s
            self.clock = self.clock if clock is None else clock
            for breaker in self._breakers.values():
                breaker.failure_threshold, breaker.cooldown_s = self.failure_threshold, self.cooldown_s
                breaker.clock = self.clock

    def reset(self) -> None:
        with self._lock:
            self._breakers.clear()


BREAKERS = BreakerBoard()


def _describe(model: str, error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"[:300]


@dataclass
class Attempts:
    """What happened on the way to an answer: failures per model and the number of retries.

    ``describe`` turns a failure into the text kept for the final error (callers use it to
    translate provider errors into actionable, secret-free messages).
    """

    failures: dict[str, str] = field(default_factory=dict)
    errors: dict[str, BaseException] = field(default_factory=dict)
    retries: int = 0
    describe: Callable[[str, BaseException], str] = _describe


def _on_failure(
    error: BaseException, model: str, retry: int, policy: RetryPolicy, breaker: CircuitBreaker, attempts: Attempts
) -> float | None:
    """Record a failed attempt; return the delay before retrying, or None to move on."""
    breaker.record_failure()
    attempts.failures[model] = attempts.describe(model, error)
    attempts.errors[model] = error
    if not is_retryable(error) or retry == policy.max_retries or not breaker.allow():
        return None
    attempts.retries += 1
    return policy.delay(retry + 1, retry_after_s(error))


def _on_success(model: str, breaker: CircuitBreaker, attempts: Attempts) -> None:
    breaker.record_success()
    attempts.failures.pop(model, None)
    attempts.errors.pop(model, None)


_SKIPPED = "circuit open (recent consecutive failures); skipped"


def run_with_fallbacks(
    models: Sequence[str],
    attempt: Callable[[str], T],
    *,
    policy: Callable[[str], RetryPolicy],
    board: BreakerBoard = BREAKERS,
    sleep: Callable[[float], None] = time.sleep,
    attempts: Attempts | None = None,
) -> tuple[str, T]:
    """Call ``attempt(model)`` for each model in order until one answers; return (model, result)."""
    attempts = attempts if attempts is not None else Attempts()
    for model in models:
        breaker = board[model]
        if not breaker.allow():
            attempts.failures[model] = _SKIPPED
            continue
        retry_policy = policy(model)
        for retry in range(retry_policy.max_retries + 1):
            try:
                result = attempt(model)
            except Exception as error:
                delay = _on_failure(error, model, retry, retry_policy, breaker, attempts)
                if delay is None:
                    break
                sleep(delay)
                continue
            _on_success(model, breaker, attempts)
            return model, result
    raise AllModelsFailedError(dict(attempts.failures))


async def arun_with_fallbacks(
    models: Sequence[str],
    attempt: Callable[[str], Awaitable[T]],
    *,
    policy: Callable[[str], RetryPolicy],
    board: BreakerBoard = BREAKERS,
    attempts: Attempts | None = None,
) -> tuple[str, T]:
    """Async twin of ``run_with_fallbacks``."""
    attempts = attempts if attempts is not None else Attempts()
    for model in models:
        breaker = board[model]
        if not breaker.allow():
            attempts.failures[model] = _SKIPPED
            continue
        retry_policy = policy(model)
        for retry in range(retry_policy.max_retries + 1):
            try:
                result = await attempt(model)
            except Exception as error:
                delay = _on_failure(error, model, retry, retry_policy, breaker, attempts)
                if delay is None:
                    break
                await asyncio.sleep(delay)
                continue
            _on_success(model, breaker, attempts)
            return model, result
    raise AllModelsFailedError(dict(attempts.failures))
