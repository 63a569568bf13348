"""``BudgetGuard``: any router, held to a rolling budget that many workers share.

The planner's ``PlannedRouter`` paces a budget it planned for; routers that learn per call
(the cascade, the bandit) have no budget of their own. ``BudgetGuard`` wraps one: before each
call it asks the pacer whether the chosen model's estimated cost still fits, and otherwise
sends the call to the cheapest model; after the call it charges what the provider really
billed (and when a run ends, what its calls cost beyond that, e.g. a fallback's answer after
the chosen model failed). With a shared ledger (``RedisSpendLedger``) the workers together overshoot the budget
by at most one call each: the calls that passed the guard before any of them was charged.

Usage::

    pacer = BudgetPacer(1.0, total_usd=50.0, period_s=86400, ledger=open_spend_ledger("redis://state:6379/0"))
    router = BudgetGuard(CascadeRouter(pool, bandit=BanditPillar(store="redis://state:6379/0")), pool, pacer)
    app = optimize(graph, pool=pool, router=router, traces="postgresql://graphroute@db/traces")
"""

from __future__ import annotations

import threading
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from graphroute.pillars.base import RouteRequest
from graphroute.planning.pacing import BudgetPacer
from graphroute.providers.pool import ModelPool
from graphroute.routing.base import RouteDecision, Router
from graphroute.routing.session import current_session
from graphroute.routing.windows import prompt_tokens

if TYPE_CHECKING:
    from graphroute.pillars.bandit import Outcome


class BudgetGuard(Router):
    """Downgrades a router's choice to the cheapest model when the budget cannot pay for it.

    ``expected_output_tokens`` sizes the estimate made before a call (input: the prompt's estimated
    tokens, the same script-aware count the context-window check uses).
    """

    def __init__(self, inner: Router, pool: ModelPool, pacer: BudgetPacer, *, expected_output_tokens: int = 256):
        self.inner = inner
        self.pool = pool
        self.pacer = pacer
        self.expected_output_tokens = expected_output_tokens
        self.cheapest = min(pool.names, key=lambda name: (self._estimate(name, 1000), pool.names.index(name)))
        self._charged: dict[str, float] = {}
        self._lock = threading.Lock()

    def _estimate(self, model: str, input_tokens: int) -> float:
        return self.pool[model].cost(input_tokens, self.expected_output_tokens)

    def route(self, request: RouteRequest) -> RouteDecision:
        return self._guard(request, self.inner.route(request))

    async def aroute(self, request: RouteRequest) -> RouteDecision:
        return self._guard(request, await self.inner.aroute(request))

    def _guard(self, request: RouteRequest, decision: RouteDecision) -> RouteDecision:
        estimate = self._estimate(decision.model, prompt_tokens(request))
        if decision.model == self.cheapest or self.pacer.allows(estimate, 0.0):
            return decision
        reason = f"{decision.reason}; budget guard: {decision.model} (~${estimate:.2g}) would not fit → {self.cheapest}"
        return replace(decision, model=self.cheapest, reason=reason, fallbacks=())

    def observe(self, decision: RouteDecision, outcome: Outcome) -> float | None:
        """Charge what the call really cost, then let the wrapped router learn from it."""
        self.pacer.charge(outcome.cost_usd)
        session = current_session()
        if session is not None and session.run_id is not None:
            with self._lock:
                self._charged[session.run_id] = self._charged.get(session.run_id, 0.0) + outcome.cost_usd
        return self.inner.observe(decision, outcome)

    def end_run(self, key: str | None, cost_usd: float | None = None) -> None:
        """A finished run's real spend moves λ; what its calls were not charged for is booked now."""
        with self._lock:
            charged = self._charged.pop(key, 0.0) if key is not None else 0.0
        self.pacer.end_run(charged if cost_usd is None else cost_usd, charged_usd=charged)
        end_run = getattr(self.inner, "end_run", None)
        if callable(end_run):
            end_run(key, cost_usd)

    def __getattr__(self, name: str) -> Any:
        if name == "inner":  # not set yet (a copy being built): no recursion
            raise AttributeError(name)
        return getattr(self.inner, name)  # explain(), fingerprint(), bandit, ... of the wrapped router
