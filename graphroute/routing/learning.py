"""Closing the loop: each answered call's outcome goes back to the router that chose its model.

Why here and not in the router: only dispatch knows how a call ended — which model failed,
which fallback answered, what it cost, whether the answer came from a cache. A bandit that
never hears about failures keeps sending traffic to a dead provider.

What is fed back, and what is not:

* the outcome is charged to the model the router *chose*: a 500 from it counts as its
  failure even when a fallback then answered (the user got an answer; the bandit must still
  learn the chosen model failed);
* cache hits and shared (deduplicated) flights are skipped: no model was asked, so there is
  nothing to learn and counting them would reward a model for the cache's work;
* calls the chosen model never saw (refused by routing, or moved to a model with a larger
  context window) teach nothing about it;
* feedback never fails the user's call: a router that raises is logged at debug level.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from langchain_core.messages import BaseMessage

from graphroute.errors import RoutingError
from graphroute.pillars.bandit import Outcome
from graphroute.traces.quality import text_of

if TYPE_CHECKING:
    from graphroute.routing.prepared import PreparedCall

log = logging.getLogger("graphroute.routing")


def outcome_of(
    call: PreparedCall,
    message: BaseMessage | None,
    error: BaseException | None,
    *,
    latency_ms: float,
    cost_usd: float,
) -> Outcome | None:
    """The chosen model's outcome for one call; ``None`` when the chosen model was not asked.

    Not asked: a cache hit or a shared flight, a call refused before sending (``RoutingError``:
    private with no local model, a prompt too long for every window), or a chosen model
    dropped from the candidates (too small a window) so that another one answered.
    """
    if call.cache_hit or call.deduped or isinstance(error, RoutingError):
        return None
    chosen = call.decision.model
    if chosen in call.attempts.failures and (error is not None or call.model != chosen):
        failed = call.attempts.errors.get(chosen)
        if failed is None:  # skipped with its circuit open: still a failure of the chosen model
            return Outcome(error="CircuitOpenError", latency_ms=latency_ms)
        return Outcome.from_reply(None, error=failed, latency_ms=latency_ms)
    if call.model != chosen:
        return None
    text = None if message is None else text_of(message)
    return Outcome.from_reply(text, error=error, cost_usd=cost_usd, latency_ms=latency_ms)


def feed_back(call: PreparedCall, outcome: Outcome | None) -> None:
    """Give ``outcome`` to ``call``'s router; never raises into the user's call."""
    if outcome is None:
        return
    observe = getattr(call.session.router, "observe", None)
    if observe is None:
        return
    try:
        observe(call.decision, outcome)
    except Exception as error:  # learning is best effort; the answer already exists
        log.debug(
            "router %s could not learn from a call to %r: %s",
            type(call.session.router).__name__,
            call.decision.model,
            type(error).__name__,
        )
