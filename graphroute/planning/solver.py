"""Solving the plan: maximise P(run ok) − λ·E[spend per run], λ set by the budget.

The solver is a Lagrangian relaxation with one multiple-choice knapsack per call slot:

1. For a fixed λ the objective separates by call: a call in slot ``s`` goes to
   ``argmax_m worth_s·p_m − c_m`` (``worth_s = value_s/λ + saving_s``), the knapsack's
   Lagrangian choice, made per sample call of the node.
2. ``value_s`` depends on how well the *other* slots do, so step 1 is repeated slot by slot
   (Gauss–Seidel) until every slot's expected success settles — a few sweeps.
3. λ is found on log λ so the expected spend per run meets ``budget_usd`` (or the expected
   share of calls on cloud models meets ``cloud_share``): regula falsi with the Illinois
   correction on log(spend / budget), falling back to bisection where the curve is flat,
   warm-starting each evaluation from the last accepted one; the exact fixed point at the
   chosen λ is checked against the limit and λ nudged up if it lands over.

Speed: a slot's expected success, cost and cloud share are step functions of ``worth`` — a
sample call switches model only where two models' lines ``p·w − c`` cross — so every node's
curve is built once, all nodes in one vectorised pass (each sample's upper envelope walked
from the cheapest model), and a choice costs a binary search; ``Step`` parts, the common
case, are evaluated in closed form. A 50-node workflow with 100 sample calls per node is
planned for a budget in ~35–50 ms of CPU (``benchmarks/planner_speed.py``: 0.47× the previous
version's CPU time).

The parts live beside this module: ``_step_curves`` (the curves), ``_problem`` (the prepared
problem, its fixed points and per-slot plans), ``_lambda_search`` (the secant search on
log λ). This module is their public face, ``Planner`` and ``solve``; the parts stay
importable from here under their former names.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np

from graphroute.errors import ConfigError

# The parts keep their former names here, so code that imported them from this module still can.
from graphroute.planning._lambda_search import search as _search
from graphroute.planning._problem import Expect
from graphroute.planning._problem import Problem as _Problem
from graphroute.planning._problem import difficulty_bins as _bins
from graphroute.planning._problem import make_ladder as _ladder  # noqa: F401
from graphroute.planning._step_curves import StepCurve as _Curve  # noqa: F401
from graphroute.planning._step_curves import step_curves as _curves  # noqa: F401
from graphroute.planning.carryover import Carryover
from graphroute.planning.context import ContextCalibration
from graphroute.planning.plan import LAMBDA_RANGE, NodeDemand, Plan
from graphroute.planning.pricing import PoolPrices
from graphroute.planning.structure import Workflow


class Planner:
    """One workflow's planning problem, prepared once and solved again as budgets move.

    Building the problem (every node's curve per run context, the difficulty bins) is about
    half the work of a cold ``solve``; a re-plan between runs reuses it and starts the search
    for λ next to the last one it found.

    Usage::

        planner = Planner(workflow, demands, prices)
        plan = planner.solve(budget_usd=0.002)
        plan = planner.solve(budget_usd=0.0018)   # a re-plan: tens of milliseconds
    """

    def __init__(self, workflow: Workflow, demands: Mapping[str, NodeDemand], prices: PoolPrices) -> None:
        self.workflow, self.prices = workflow, prices
        self.problem = _Problem(workflow, demands, prices)
        self.bins = {node: _bins(demands[node]) for node in workflow.nodes()}
        self.pins = {
            node: prices.models[demands[node].pinned]  # type: ignore[index]
            for node in workflow.nodes()
            if demands[node].pinned is not None
        }
        self._last: tuple[float, list[Expect]] | None = None

    def solve(
        self,
        *,
        budget_usd: float | None = None,
        cloud_share: float | None = None,
        lam: float | None = None,
        iterations: int = 30,
        tolerance: float = 0.01,
        carryover: Carryover | None = None,
        recalibration: ContextCalibration | None = None,
    ) -> Plan:
        """See ``solve``."""
        if sum(x is not None for x in (budget_usd, cloud_share, lam)) != 1:
            raise ConfigError("solve() needs exactly one of budget_usd, cloud_share or lam")
        problem = self.problem
        if recalibration is not None and (
            recalibration.names != problem.contexts.names or recalibration.slope.shape[1] != len(self.prices)
        ):
            raise ConfigError(
                f"solve(): recalibration is for contexts {list(recalibration.names)} and "
                f"{recalibration.slope.shape[1]} models, the demands have contexts "
                f"{list(problem.contexts.names)} and the pool {len(self.prices)} models: fit it on the "
                "same training calls, labels and pool"
            )
        feasible = True
        warm: list[Expect] | None = None
        limit: float | None = None
        within: list[tuple[float, float, list[Expect]]] = []  # (success, log λ, fixed point) that fit
        if lam is None:
            limit = float(budget_usd if budget_usd is not None else cloud_share)  # type: ignore[arg-type]
            position = 1 if budget_usd is not None else 3

            def gap(log_lam: float, start: list[Expect] | None) -> tuple[float, list[Expect]]:
                """log(measured / limit): positive while λ is too small (spends too much)."""
                result = problem.measure(float(np.exp(log_lam)), start, rough=True, share=position == 3)
                measured = float(result[position])  # type: ignore[arg-type]
                if measured <= limit * (1 + 1e-9):
                    within.append((float(result[2]), log_lam, result[0]))  # type: ignore[arg-type]
                    return min(np.log(max(measured, 1e-300) / max(limit, 1e-300)), 0.0), result[0]  # type: ignore[return-value]
                return max(np.log(measured / max(limit, 1e-300)), 1e-12), result[0]  # type: ignore[return-value]

            log_lam, warm, feasible = self._find(gap, iterations, tolerance)
            lam = float(np.exp(log_lam))
        # Start from the expectations the search accepted: the fixed point it measured.
        expects, cost, success, share = problem.measure(lam, warm)
        if limit is not None and feasible:
            # The search steers on rough fixed points; if the exact one lands over the limit, give
            # up a little more success until it fits (a few small steps up in λ at most).
            step = tolerance
            for _ in range(12):
                if (cost if budget_usd is not None else share) <= limit * (1 + 1e-9):
                    break
                lam *= float(np.exp(step))
                step *= 2
                expects, cost, success, share = problem.measure(lam, expects)
            # A long chain of critical steps can have two self-consistent plans at one λ (every
            # step strong because the run can succeed, or every step cheap because it cannot),
            # and which one a warm start lands on moves with the search's path. The search saw
            # every plan that fit the limit: keep the most successful of them.
            best = max(within, key=lambda item: item[0], default=None)
            if best is not None and best[0] > success + 1e-3:
                other = problem.measure(float(np.exp(best[1])), best[2])
                measured = other[1] if budget_usd is not None else other[3]
                if measured <= limit * (1 + 1e-9) and other[2] > success:
                    lam = float(np.exp(best[1]))
                    expects, cost, success, share = other
        self._last = (float(np.log(lam)), expects)
        return Plan(
            workflow=self.workflow,
            prices=self.prices,
            lam=lam,
            slots=problem.slot_plans(lam, expects),
            bins=self.bins,
            expected_cost=cost,
            expected_success=success,
            cloud_share=share,
            contexts=problem.contexts,
            expectations=tuple(expects),
            budget_usd=budget_usd,
            target_cloud_share=cloud_share,
            feasible=feasible,
            carryover=carryover,
            pins=dict(self.pins),
            recalibration=recalibration,
        )

    def _find(
        self, gap: Callable[[float, list[Expect] | None], tuple[float, list[Expect]]], iterations: int, tolerance: float
    ) -> tuple[float, list[Expect] | None, bool]:
        """(log λ, its fixed point, feasible): near the last plan's λ when that brackets the limit."""
        if self._last is not None:
            centre, start = self._last
            lo, hi = max(centre - 1.0, np.log(LAMBDA_RANGE[0])), min(centre + 1.0, np.log(LAMBDA_RANGE[1]))
            g_lo, over = gap(lo, start)
            g_hi, warm = gap(hi, start)
            if g_lo > 0 >= g_hi:
                _, (found, warm) = _search(gap, lo, hi, g_lo, g_hi, warm, iterations, tolerance, over)
                return found, warm, True
        lo, hi = np.log(LAMBDA_RANGE[0]), np.log(LAMBDA_RANGE[1])
        g_lo, over = gap(lo, None)
        if g_lo <= 0:
            return lo, over, True  # even the best models fit
        g_hi, warm = gap(hi, None)
        if g_hi > 0:
            return hi, warm, False  # not even the cheapest plan fits: show it
        _, (found, warm) = _search(gap, lo, hi, g_lo, g_hi, warm, iterations, tolerance, over)
        return found, warm, True


def solve(
    workflow: Workflow,
    demands: Mapping[str, NodeDemand],
    prices: PoolPrices,
    *,
    budget_usd: float | None = None,
    cloud_share: float | None = None,
    lam: float | None = None,
    iterations: int = 30,
    tolerance: float = 0.01,
    carryover: Carryover | None = None,
    recalibration: ContextCalibration | None = None,
) -> Plan:
    """The plan maximising P(run ok) − λ·E[spend], with λ set by the budget or cloud share.

    Give exactly one of ``budget_usd`` (expected USD per run), ``cloud_share`` (expected
    fraction of calls on cloud models) or ``lam`` (fixed trade-off: success per dollar).
    ``tolerance``: how close (in log λ) the search for λ gets to the budget's boundary.
    ``carryover``: how revealed results (a critic's rejection) change the run's next estimates,
    applied by the plan's live decisions (``Plan.decide``). ``recalibration``: per run context, how
    to read a call's estimates (``ContextCalibration``, fitted on the demands' labelled training
    calls), applied live to calls whose choice is a matter of price. To re-plan the same workflow
    often, keep a ``Planner``.
    """
    if sum(x is not None for x in (budget_usd, cloud_share, lam)) != 1:
        raise ConfigError("solve() needs exactly one of budget_usd, cloud_share or lam")
    return Planner(workflow, demands, prices).solve(
        budget_usd=budget_usd,
        cloud_share=cloud_share,
        lam=lam,
        iterations=iterations,
        tolerance=tolerance,
        carryover=carryover,
        recalibration=recalibration,
    )
