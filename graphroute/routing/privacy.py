"""The privacy guard: personal data stays on local models whatever router made the decision.

The rules pillar already turns personal data into ``Signal(local_only=True)`` inside a
``CascadeRouter``. But a pool routed by node pins (``StaticRouter``), a planned router, the
server's pass-through or a user's own ``Router`` never runs that pillar, and the promise is
about the request, not about the router. So every decision passes through here: when no
signal already says local-only, the pool's ``[rules]`` (privacy patterns, node ``local_only``
flags, a call's ``local_only`` metadata) are checked once more — microseconds — and a private
request chosen for a cloud model is moved to a local one. When the pool has no local model at
all the decision keeps the constraint and dispatch refuses the call with a clear error rather
than send it (``PreparedCall.candidates``).
"""

from __future__ import annotations

import threading
from dataclasses import replace
from weakref import WeakKeyDictionary

from graphroute.pillars.base import RouteRequest, Signal
from graphroute.pillars.rules import RulesPillar
from graphroute.providers.pool import ModelPool
from graphroute.routing.base import RouteDecision

_pillars: WeakKeyDictionary[ModelPool, RulesPillar] = WeakKeyDictionary()
_lock = threading.Lock()


def _rules_for(pool: ModelPool) -> RulesPillar:
    """One compiled rules pillar per pool (compiling the regexes is what costs)."""
    with _lock:
        pillar = _pillars.get(pool)
        if pillar is None:
            pillar = _pillars[pool] = RulesPillar(pool.config.rules)
        return pillar


def privacy_signal(pool: ModelPool, request: RouteRequest) -> Signal | None:
    """A local-only signal when the pool's rules say this request is private, else None."""
    signal = _rules_for(pool).score(request)
    if not signal.local_only:
        return None
    return Signal("privacy", local_only=True, reason=signal.reason)


def guard(pool: ModelPool, request: RouteRequest, decision: RouteDecision) -> RouteDecision:
    """``decision``, moved to a local model (and marked local-only) if the request is private."""
    if any(signal.local_only for signal in decision.signals):
        return decision  # the router already knows; dispatch filters its candidates
    signal = privacy_signal(pool, request)
    if signal is None:
        return decision
    signals = (*decision.signals, signal)
    if pool[decision.model].is_local:
        return replace(decision, signals=signals)
    route = [*decision.fallbacks, *pool[decision.model].fallbacks]
    local = [name for name in dict.fromkeys(route) if pool[name].is_local]
    local = local or [spec.name for spec in pool.local()]
    if not local:
        return replace(decision, signals=signals)
    return replace(
        decision,
        model=local[0],
        fallbacks=tuple(local[1:]),
        signals=signals,
        reason=f"{decision.reason}; private ({signal.reason}): {decision.model} → {local[0]}",
    )
