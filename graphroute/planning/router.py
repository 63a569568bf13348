"""``PlannedRouter``: the plan applied live, one call at a time, with the run's state and the pacer.

For each call it finds the node's slot (attempt number inside a retry loop), asks the plan for
the model given everything the run knows so far, lets the pacer's budget guard downgrade it if
it would not fit, and remembers the call in the run's state for the calls that follow. Runs are
told apart by ``metadata["graphroute_run_id"]`` or, inside ``optimize``, by the active
``RoutingSession``'s run id.

Failures the run sees live steer its next calls (``failures.py``): a request carrying a failed
tool result marks the node's previous answer as failed, so the node escalates; a provider error
(``observe``, called by dispatch after every call) makes the run avoid that model.

Per-call success estimates come from an *estimate source* (e.g. the semantic pillar's
estimator, when it knows the pool's models); without one, the pillars' difficulty picks the
rung of the node's ladder — asked as the cascade asks them (``routing/asking.py``): in order,
stopping at the first sure one, so a judge model is consulted only when the cheaper pillars
are unsure.

Usage::

    plan = solve(workflow, demands, prices, budget_usd=0.002)
    router = PlannedRouter(plan, estimates=my_estimates, pacer=BudgetPacer(plan.lam, run_budget_usd=0.002))
    app = optimize(graph, pool=pool, router=router)
"""

from __future__ import annotations

import asyncio
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from graphroute.graph.identity import nearest
from graphroute.pillars.base import Pillar, RouteRequest, Signal
from graphroute.planning.failures import ANSWER, PROVIDER, RunFailure
from graphroute.planning.pacing import BudgetPacer
from graphroute.planning.plan import Plan, choose
from graphroute.planning.pricing import PoolPrices, TokenCounter
from graphroute.planning.refresh import PlanRefresher
from graphroute.planning.structure import RunState
from graphroute.routing.asking import EXIT_CONFIDENCE, Asked, aask, ask
from graphroute.routing.base import RouteDecision, Router
from graphroute.routing.session import current_session
from graphroute.traces.quality import failed_tool_results

if TYPE_CHECKING:
    from graphroute.pillars.bandit import Outcome

EstimateSource = Callable[[RouteRequest], "np.ndarray | Mapping[str, float] | None"]
RUN_ID_KEY = "graphroute_run_id"


def run_key(request: RouteRequest) -> str | None:
    """Which run a call belongs to: explicit metadata, else the active routing session."""
    key = request.metadata.get(RUN_ID_KEY)
    if key is not None:
        return str(key)
    session = current_session()
    return session.run_id if session is not None else None


def aligned(estimates: np.ndarray | Mapping[str, float] | None, prices: PoolPrices) -> np.ndarray | None:
    """Estimates in the plan's model order; ``None`` if some planned model has no estimate."""
    if estimates is None:
        return None
    if isinstance(estimates, Mapping):
        if any(model not in estimates for model in prices.models):
            return None
        return np.array([float(estimates[m]) for m in prices.models])
    array = np.asarray(estimates, dtype=np.float64)
    return array if array.shape == (len(prices),) else None


@dataclass(frozen=True)
class PlannedDecision(RouteDecision):
    """A planned call's decision, with where it sits in its run (so its outcome can be told back)."""

    run: str | None = None
    node: str = ""
    call: int = 0


class PlannedRouter(Router):
    """Routes each call by the plan, the run's state so far and the budget pacer."""

    def __init__(
        self,
        plan: Plan,
        *,
        estimates: EstimateSource | None = None,
        pillars: Sequence[Pillar] = (),
        exit_confidence: float = EXIT_CONFIDENCE,
        pacer: BudgetPacer | None = None,
        tokens: Callable[[str], int] | None = None,
        max_runs: int = 4096,
        refresher: PlanRefresher | None = None,
    ) -> None:
        self.plan = plan
        self.refresher = refresher
        self.estimates = estimates
        self.pillars = list(pillars)
        self.exit_confidence = exit_confidence
        self.pacer = pacer
        self.tokens = tokens or TokenCounter()
        self.max_runs = max_runs
        self._states: OrderedDict[str, RunState] = OrderedDict()
        self._lock = threading.Lock()

    def node_for(self, node: str | None) -> str:
        """The planned node a call belongs to: itself, else its nearest planned parent."""
        return nearest(self.plan.bins, node) or (node or "")

    def state(self, key: str | None) -> RunState:
        if key is None:
            return RunState()
        with self._lock:
            state = self._states.get(key)
            if state is None:
                state = self._states[key] = RunState()
                while len(self._states) > self.max_runs:
                    self._states.popitem(last=False)
            return state

    @staticmethod
    def _real_spend(key: str | None) -> float:
        """What the run's calls really cost so far, when traced by the active routing session."""
        session = current_session()
        if session is None or key is None or session.run_id != key:
            return 0.0
        return sum(call.cost_usd for call in list(session.calls))

    def route(self, request: RouteRequest) -> RouteDecision:
        estimates = self._estimates(request)
        asked = ask(self.pillars, request, self.exit_confidence) if estimates is None and self.pillars else None
        return self._route(request, estimates, asked)

    async def aroute(self, request: RouteRequest) -> RouteDecision:
        # An estimate source may embed the prompt (milliseconds of CPU): off the event loop.
        estimates = await asyncio.to_thread(self._estimates, request) if self.estimates else None
        asked = await aask(self.pillars, request, self.exit_confidence) if estimates is None and self.pillars else None
        return self._route(request, estimates, asked)

    def _estimates(self, request: RouteRequest) -> np.ndarray | None:
        return aligned(self.estimates(request), self.plan.prices) if self.estimates else None

    def _route(self, request: RouteRequest, estimates: np.ndarray | None, asked: Asked | None) -> RouteDecision:
        node = self.node_for(request.node)
        key = run_key(request)
        state = self.state(key)
        if failed_tool_results(request.messages):
            self._answer_failed(state, node)
        real_spend = self._real_spend(key)
        signals: tuple[Signal, ...] = asked.signals if asked is not None else ()
        if estimates is not None:
            signals = (self._estimate_signal(estimates),)
        difficulty = asked.difficulty if asked is not None else None
        lam = self.pacer.lam if self.pacer is not None else self.plan.lam
        with self._lock:  # Send workers of one run route concurrently
            decision = self.plan.decide(
                node,
                state=state,
                estimates=estimates,
                difficulty=difficulty,
                input_tokens=self.tokens(request.text),
                lam=lam,
                call_node=request.node,
            )
            index = decision.index
            if decision.pinned:  # a pin is kept whatever the budget: the plan spent around it
                if self.pacer is not None:
                    self.pacer.charge(float(decision.costs[index]))
            elif self.pacer is not None:
                scores = decision.estimates * decision.worth_usd - decision.costs
                if decision.allowed is not None:  # what the run saw fail comes last
                    scores = np.where(decision.allowed, scores, -np.inf)
                spent = max(state.spent_usd, real_spend)  # estimates, or what the provider billed
                index = self.pacer.fit(decision.costs, scores, index, spent)
                self.pacer.charge(float(decision.costs[index]))
            self.plan.observe(state, node, decision, index)
            call = len(state.models.get(node, [])) - 1
        model = self.plan.prices.models[index]
        slot = f"{node} #{decision.slot[1]}" if decision.slot[1] else node
        reason = (
            f"plan: {slot} value {decision.value:.2f}, worth ${decision.worth_usd:.3g}, "
            f"est. success {decision.estimates[index]:.2f} at ${decision.costs[index]:.2g}"
        )
        if decision.pinned:
            reason = f"pinned to {model} (kept under the budget); " + reason
        elif decision.allowed is not None:
            avoided = [name for name, ok in zip(self.plan.prices.models, decision.allowed, strict=True) if not ok]
            reason += f" (after failures in this run: not {', '.join(avoided)})"
        if index != decision.index:
            reason += f" (budget guard: {decision.model} would not fit)"
        return PlannedDecision(model=model, reason=reason, signals=signals, run=key, node=node, call=call)

    def _estimate_signal(self, estimates: np.ndarray) -> Signal:
        """What the trace keeps of per-model estimates: each model's, and as the call's difficulty
        how likely the cheapest planned model is to fail (what node complexity is learned from)."""
        listed = ", ".join(f"{m} {p:.2f}" for m, p in zip(self.plan.prices.models, estimates, strict=True))
        difficulty = float(np.clip(1.0 - estimates[0], 0.0, 1.0))
        return Signal("estimates", difficulty=difficulty, confidence=0.5, reason=f"per-model success: {listed}")

    def _answer_failed(self, state: RunState, node: str) -> None:
        """The request carries a failed tool result: the node's previous answer failed."""
        with self._lock:
            models = state.models.get(node, [])
            if models:
                state.fail(RunFailure(node, len(models) - 1, models[-1], ANSWER))

    def observe(self, decision: RouteDecision, outcome: Outcome) -> float | None:
        """A provider error or a refusal of a planned call is remembered for the rest of its run."""
        if not isinstance(decision, PlannedDecision) or decision.run is None:
            return None
        kind = PROVIDER if outcome.error else ANSWER if outcome.refused else None
        models = self.plan.prices.models
        if kind is None or decision.model not in models:
            return None
        # The model the call went to: a guard after the plan (privacy) may have moved it.
        index = models.index(decision.model)
        with self._lock:
            state = self._states.get(decision.run)
            if state is not None:  # a finished run has nothing left to steer
                state.fail(RunFailure(decision.node, decision.call, index, kind))
        return None

    def end_run(self, key: str | None, cost_usd: float | None = None) -> None:
        """Forget a finished run and give its real spend to the pacer."""
        if key is None:
            return
        with self._lock:
            state = self._states.pop(key, None)
        charged = state.spent_usd if state is not None else 0.0
        if self.pacer is not None:
            self.pacer.end_run(charged if cost_usd is None else cost_usd, charged_usd=charged)
        if self.refresher is not None:
            self.refresher.run_finished(self.adopt)

    def adopt(self, plan: Plan) -> None:
        """Route by ``plan`` from now on (a re-plan); the pacer keeps its correction of λ."""
        with self._lock:
            if self.pacer is not None:
                self.pacer.rebase(self.plan.lam, plan.lam, plan.expected_cost)
            self.plan = plan

    def explain(self) -> str:
        return str(self.plan)


def per_call_choice(estimates: np.ndarray, costs: np.ndarray, lam: float) -> int:
    """The per-call rule: every call's success is worth 1/λ dollars, whatever the run."""
    return int(choose(estimates, costs, 1.0 / max(lam, 1e-300)))
