"""A router wrapper that never sends a call to a model lacking a capability it needs."""

from __future__ import annotations

from graphroute.errors import RoutingError
from graphroute.pillars.bandit import Outcome
from graphroute.pillars.base import RouteRequest
from graphroute.providers.pool import ModelPool
from graphroute.routing.base import RouteDecision, Router


class CapabilityGuard(Router):
    """Wraps a router so a call is never sent to a model lacking a capability it needs.

    A call with tools needs ``"tools"``. With ``reroute`` the first capable model among the
    decision's fallbacks, the pool default and then the cheapest is chosen instead (the reason
    says so); without it the call fails with ``RoutingError`` (used for explicit pass-through).
    """

    def __init__(self, inner: Router, pool: ModelPool, *, reroute: bool = True) -> None:
        self.inner = inner
        self.pool = pool
        self.reroute = reroute

    def route(self, request: RouteRequest) -> RouteDecision:
        return self.check(request, self.inner.route(request))

    async def aroute(self, request: RouteRequest) -> RouteDecision:
        return self.check(request, await self.inner.aroute(request))

    def observe(self, decision: RouteDecision, outcome: Outcome) -> float | None:
        """The wrapped router learns (a guard has nothing to learn itself)."""
        return self.inner.observe(decision, outcome)

    def check(self, request: RouteRequest, decision: RouteDecision) -> RouteDecision:
        needed = {"tools"} if request.tools else set()
        missing = needed - set(self.pool[decision.model].capabilities)
        if not missing:
            return decision
        wanted = ", ".join(sorted(missing))
        if not self.reroute:
            raise RoutingError(
                f"model {decision.model!r} lacks the {wanted!r} capability this call needs; add it to the "
                f"model's capabilities in the pool file if it supports it, or use a router",
                model=decision.model,
                node=request.node,
            )
        by_price = sorted(self.pool, key=lambda spec: spec.input_price + spec.output_price)
        for name in (*decision.fallbacks, self.pool.default_model(), *(spec.name for spec in by_price)):
            if needed <= set(self.pool[name].capabilities):
                capable = [f for f in decision.fallbacks if needed <= set(self.pool[f].capabilities)]
                fallbacks = tuple(f for f in capable if f != name)
                reason = f"{decision.reason}; {decision.model!r} lacks {wanted!r}, so {name!r}"
                return RouteDecision(model=name, reason=reason, signals=decision.signals, fallbacks=fallbacks)
        raise RoutingError(
            f"no pool model has the {wanted!r} capability this call needs; add {wanted!r} to the capabilities "
            "of a model that supports it in the pool file",
            node=request.node,
        )
