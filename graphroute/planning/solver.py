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
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Mapping, Sequence
from math import prod

import numpy as np

from graphroute.errors import ConfigError
from graphroute.planning.carryover import Carryover
from graphroute.planning.context import ContextModel
from graphroute.planning.plan import (
    BINS,
    LAMBDA_RANGE,
    Ladder,
    NodeBins,
    NodeDemand,
    Plan,
    SlotPlan,
    choose,
    worth_of,
)
from graphroute.planning.pricing import PoolPrices
from graphroute.planning.structure import EMPTY, Expectation, Slot, Step, Workflow

Expect = dict[Slot, Expectation]


class _Curve:
    """A node's mean success, cost and cloud share per call, as step functions of worth."""

    def __init__(self, base: tuple[float, float, float], worths: list[float], values: list[list[float]]) -> None:
        self.base, self.worths, self.values = base, worths, values

    def at(self, worth: float) -> tuple[float, float, float]:
        index = bisect_right(self.worths, worth)
        return self.base if index == 0 else tuple(self.values[index - 1])  # type: ignore[return-value]


def _curves(demands: Sequence[NodeDemand], prices: PoolPrices) -> list[_Curve]:
    """Every demand's curve, built in one vectorised pass over all their sample calls.

    Per sample call, the models it can switch between are found where two models' lines
    ``p·w − c`` cross (``w = Δc/Δp``); walking its crossings by rising worth, each one where
    the best model changes is a step of the node's curve. The steps of all nodes are sorted by
    (node, worth) together and summed per node.
    """
    estimates = np.concatenate([d.estimates for d in demands])
    truth = np.concatenate([d.truth() for d in demands])
    costs = np.concatenate([prices.cost(d.input_tokens, d.output_tokens) for d in demands])
    sizes = np.array([len(d.estimates) for d in demands])
    owner = np.repeat(np.arange(len(demands)), sizes)
    cloud = (~prices.local).astype(np.float64)
    base = choose(estimates, costs, 0.0)
    samples = np.arange(len(estimates))
    base_values = np.stack([truth[samples, base], costs[samples, base], cloud[base]], axis=1)
    base_mean = np.stack([np.bincount(owner, base_values[:, i], len(demands)) for i in range(3)], axis=1)
    base_mean = base_mean / sizes[:, None]

    # Walk each sample's upper envelope of the lines p·w − c from the cheapest model: the next
    # model is where the current one's line is first crossed by a better one.
    found: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
    current = base.copy()
    live = samples
    while len(live):
        p, c = estimates[live], costs[live]
        here = current[live]
        gain = p - p[np.arange(len(live)), here][:, None]
        extra = c - c[np.arange(len(live)), here][:, None]
        better = gain > 1e-12
        crossing = np.where(better & (extra > 0), extra / np.where(better, gain, 1.0), np.inf)
        worth = crossing.min(axis=1)
        moving = np.isfinite(worth)
        live, worth, here = live[moving], worth[moving], here[moving]
        if not len(live):
            break
        probe = worth * (1 + 1e-9) + 1e-300
        nxt = np.argmax(estimates[live] * probe[:, None] - costs[live], axis=1)
        stuck = nxt == here  # a crossing the probe cannot resolve: stop this sample here
        live, worth, here, nxt = live[~stuck], worth[~stuck], here[~stuck], nxt[~stuck]
        found.append((live, worth, nxt, here))
        current[live] = nxt
    if found:
        rows, worths, picks, previous = (np.concatenate(parts) for parts in zip(*found, strict=True))
    else:
        rows = picks = previous = np.zeros(0, dtype=np.int64)
        worths = np.zeros(0)
    steps = (
        np.stack(
            [
                truth[rows, picks] - truth[rows, previous],
                costs[rows, picks] - costs[rows, previous],
                cloud[picks] - cloud[previous],
            ],
            axis=1,
        )
        / sizes[owner[rows], None]
    )
    node = owner[rows]
    order = np.lexsort((worths, node))
    node, worths, steps = node[order], worths[order], steps[order]
    totals = np.cumsum(steps, axis=0)
    bounds = np.searchsorted(node, np.arange(len(demands) + 1))
    before = np.vstack([np.zeros((1, 3)), totals])[bounds[:-1]]  # the running sum where each node starts
    values = (base_mean[node] + totals - before[node]).tolist()
    all_worths, bases = worths.tolist(), base_mean.tolist()
    return [
        _Curve(tuple(bases[i]), all_worths[bounds[i] : bounds[i + 1]], values[bounds[i] : bounds[i + 1]])  # type: ignore[arg-type]
        for i in range(len(demands))
    ]


class _Problem:
    """Per-context, per-node curves, so one λ evaluation is a few hundred binary searches."""

    def __init__(self, workflow: Workflow, demands: Mapping[str, NodeDemand], prices: PoolPrices) -> None:
        nodes = workflow.nodes()
        missing = [node for node in nodes if node not in demands]
        if missing:
            raise ConfigError(f"no demand (sample calls) for planned node(s): {', '.join(missing)}")
        for node in nodes:
            expected = (len(demands[node].input_tokens), len(prices))
            if demands[node].estimates.shape != expected:
                raise ConfigError(
                    f"node {node!r}: estimates have shape {demands[node].estimates.shape}, expected "
                    f"{expected} (one column per planned model, in price order)"
                )
        self.workflow, self.prices, self.slots = workflow, prices, workflow.slots()
        self.parts = list(workflow.parts)
        self.part_of = {node: i for i, part in enumerate(self.parts) for node in part.nodes()}
        self.steps = [(part.calls, part.criticality) if isinstance(part, Step) else None for part in self.parts]
        labelled = [demands[n] for n in nodes if demands[n].contexts is not None]
        self.contexts = (
            ContextModel.fit(
                np.concatenate([d.estimates for d in labelled]),
                [str(c) for d in labelled for c in np.asarray(d.contexts)],
            )
            if labelled
            else ContextModel.single()
        )
        self.demands: list[dict[str, NodeDemand]] = []
        for name in self.contexts.names:
            per_node = {}
            for node in nodes:
                demand = demands[node]
                rows = np.arange(len(demand.input_tokens))
                if demand.contexts is not None and len(self.contexts) > 1:
                    rows = np.flatnonzero(np.asarray(demand.contexts).astype(str) == name)
                per_node[node] = demand.only(rows) if len(rows) else demand
            self.demands.append(per_node)
        flat = [(c, n, d) for c, ctx in enumerate(self.demands) for n, d in ctx.items()]
        built = _curves([d for _, _, d in flat], prices)
        self.curves: list[dict[str, _Curve]] = [{} for _ in self.demands]
        for (c, n, _), curve in zip(flat, built, strict=True):
            self.curves[c][n] = curve

    def _worth(self, slot: Slot, expect: Expect, others: float, lam: float) -> float:
        value, saving = self.parts[self.part_of[slot[0]]].slot_marginal(slot, expect)
        return worth_of(value * others, saving, lam)

    def _marginals(self, expect: Expect) -> dict[Slot, tuple[float, float]]:
        """Every slot's (value, saving) before the run starts, with each part's success computed once."""
        success = [part.success(expect, EMPTY) for part in self.parts]
        out = {}
        for slot in self.slots:
            p = self.part_of[slot[0]]
            value, saving = self.parts[p].slot_marginal(slot, expect)
            out[slot] = (value * prod(success[:p]) * prod(success[p + 1 :]), saving)
        return out

    def evaluate(
        self, lam: float, start: list[Expect] | None = None, sweeps: int = 12, tolerance: float = 1e-4
    ) -> list[Expect]:
        """Per context, Gauss–Seidel sweeps of per-slot choices until expected successes settle."""
        out = []
        for c, curves in enumerate(self.curves):
            if start:
                expect = dict(start[c])
            else:
                first = {n: curve.at(worth_of(1.0, 0.0, lam)) for n, curve in curves.items()}
                expect = {s: Expectation(first[s[0]][0], first[s[0]][1]) for s in self.slots}
            success = [part.success(expect, EMPTY) for part in self.parts]
            for _ in range(sweeps):
                change = 0.0
                total = prod(success)
                for slot in self.slots:
                    p = self.part_of[slot[0]]
                    own = success[p]
                    others = total / own if own > 1e-9 else prod(success[:p]) * prod(success[p + 1 :])
                    step = self.steps[p]
                    if step is not None:  # the common part, in closed form (same numbers as Step's methods)
                        calls, criticality = step
                        factor = 1.0 - criticality * (1.0 - expect[slot].success)
                        worth = worth_of(criticality * factor ** max(calls - 1.0, 0.0) * others, 0.0, lam)
                    else:
                        worth = self._worth(slot, expect, others, lam)
                    new_success, new_cost, _ = curves[slot[0]].at(worth)
                    change = max(change, abs(new_success - expect[slot].success))
                    expect[slot] = Expectation(new_success, new_cost)
                    if step is not None:
                        success[p] = (1.0 - step[1] * (1.0 - new_success)) ** step[0]
                    else:
                        success[p] = self.parts[p].success(expect, EMPTY)
                    total = others * success[p]
                if change < tolerance:
                    break
            out.append(expect)
        return out

    def measure(
        self, lam: float, start: list[Expect] | None = None, *, rough: bool = False, share: bool = True
    ) -> tuple[list[Expect], float, float, float]:
        """The fixed points, and expected cost per run, success and cloud share over the context prior.

        ``rough``: a looser fixed point, enough to steer the search for λ (the final plan is exact);
        ``share=False`` skips the cloud share (reported as 0) when only spend is targeted.
        """
        expects = self.evaluate(lam, start, sweeps=4, tolerance=1e-3) if rough else self.evaluate(lam, start)
        cost = success = cloud = 0.0
        for c, (weight, expect) in enumerate(zip(self.contexts.prior, expects, strict=True)):
            if share:
                reach = self.workflow.reach(expect)
                calls = 0.0
                for slot, (value, saving) in self._marginals(expect).items():
                    calls += reach[slot] * self.curves[c][slot[0]].at(worth_of(value, saving, lam))[2]
                cloud += weight * calls / (sum(reach.values()) or 1.0)
            cost += weight * self.workflow.cost(expect)
            success += weight * self.workflow.success(expect)
        return expects, cost, success, cloud

    def slot_plans(self, lam: float, expects: list[Expect]) -> dict[Slot, SlotPlan]:
        """Each slot's plan over the context prior; its ladder from every context's choices."""
        out = {}
        prior = self.contexts.prior
        marginals = [self._marginals(expect) for expect in expects]
        reaches = [self.workflow.reach(expect) for expect in expects]
        for slot in self.slots:
            node = slot[0]
            numbers = np.zeros(7)
            picks, difficulty = [], []
            for c in range(len(expects)):
                value, saving = marginals[c][slot]
                worth = worth_of(value, saving, lam)
                demand = self.demands[c][node]
                success, cost, share = self.curves[c][node].at(worth)
                reach = reaches[c][slot]
                numbers += prior[c] * np.array([value, saving, worth, success, cost, reach, share])
                picks.append(
                    choose(demand.estimates, self.prices.cost(demand.input_tokens, demand.output_tokens), worth)
                )
                difficulty.append(demand.difficulties())
            ladder = _ladder(np.concatenate(picks), np.concatenate(difficulty), self.prices.models)
            value, saving, worth, success, cost, reach, share = (float(x) for x in numbers)
            out[slot] = SlotPlan(slot, value, saving, worth, success, cost, reach, share, ladder)
        return out


def _search(
    gap: Callable[[float, list[Expect] | None], tuple[float, list[Expect]]],
    lo: float,
    hi: float,
    g_lo: float,
    g_hi: float,
    warm: list[Expect],
    iterations: int,
    tolerance: float,
) -> tuple[float, tuple[float, list[Expect]]]:
    """Narrow ``[lo, hi]`` (log λ; over budget at ``lo``, within at ``hi``) to ``tolerance``.

    Regula falsi with the Illinois correction on log(spend / budget), which is close to linear
    in log λ over wide ranges, so a handful of evaluations replaces ~22 bisection steps; every
    step is clamped to the middle 90 % of the bracket and falls back to bisection when the
    secant stalls, so it never does worse than bisection by more than a constant.
    """
    side = 0
    for _ in range(iterations):
        if hi - lo <= tolerance:
            break
        x = hi - g_hi * (hi - lo) / (g_hi - g_lo) if g_hi != g_lo else (lo + hi) / 2
        width = hi - lo
        x = min(max(x, lo + 0.05 * width), hi - 0.05 * width)
        if abs(side) >= 2 or not (g_lo < 8 and g_hi > -8):  # stalled, or still on the flat ends
            x, side = (lo + hi) / 2, 0
        g, expects = gap(x, warm)
        if g == (g_lo if g > 0 else g_hi) and g != 0:  # a flat stretch: the secant learns nothing there
            side = 2
        if g > 0:
            lo, g_lo = x, g
            side = side + 1 if side >= 0 else 1
            g_hi /= 2  # Illinois: the end that stays is given half its weight
        else:
            hi, g_hi, warm = x, g, expects
            side = side - 1 if side <= 0 else -1
            g_lo /= 2
    return lo, (hi, warm)


def _ladder(picks: np.ndarray, difficulty: np.ndarray, models: tuple[str, ...]) -> Ladder:
    """Most frequent model per difficulty decile, merged into rungs."""
    order = np.argsort(difficulty, kind="stable")
    rungs: list[str] = []
    thresholds: list[float] = []
    for chunk in np.array_split(order, min(BINS, len(order))):
        if not len(chunk):
            continue
        model = models[int(np.bincount(picks[chunk], minlength=len(models)).argmax())]
        if not rungs or rungs[-1] != model:
            if rungs:
                thresholds.append(float(difficulty[chunk].min()))
            rungs.append(model)
    return Ladder(tuple(rungs), tuple(thresholds))


def _bins(demand: NodeDemand) -> NodeBins:
    difficulty = demand.difficulties()
    order = np.argsort(difficulty, kind="stable")
    chunks = [c for c in np.array_split(order, min(BINS, len(order))) if len(c)]
    edges = np.array([difficulty[c].min() for c in chunks[1:]])
    success = np.stack([demand.estimates[c].mean(axis=0) for c in chunks])
    return NodeBins(edges, success, float(demand.input_tokens.mean()), float(demand.output_tokens))


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
    ) -> Plan:
        """See ``solve``."""
        if sum(x is not None for x in (budget_usd, cloud_share, lam)) != 1:
            raise ConfigError("solve() needs exactly one of budget_usd, cloud_share or lam")
        problem = self.problem
        feasible = True
        warm: list[Expect] | None = None
        limit: float | None = None
        if lam is None:
            limit = float(budget_usd if budget_usd is not None else cloud_share)  # type: ignore[arg-type]
            position = 1 if budget_usd is not None else 3

            def gap(log_lam: float, start: list[Expect] | None) -> tuple[float, list[Expect]]:
                """log(measured / limit): positive while λ is too small (spends too much)."""
                result = problem.measure(float(np.exp(log_lam)), start, rough=True, share=position == 3)
                measured = float(result[position])  # type: ignore[arg-type]
                if measured <= limit * (1 + 1e-9):
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
        )

    def _find(
        self, gap: Callable[[float, list[Expect] | None], tuple[float, list[Expect]]], iterations: int, tolerance: float
    ) -> tuple[float, list[Expect] | None, bool]:
        """(log λ, its fixed point, feasible): near the last plan's λ when that brackets the limit."""
        if self._last is not None:
            centre, start = self._last
            lo, hi = max(centre - 1.0, np.log(LAMBDA_RANGE[0])), min(centre + 1.0, np.log(LAMBDA_RANGE[1]))
            g_lo, _ = gap(lo, start)
            g_hi, warm = gap(hi, start)
            if g_lo > 0 >= g_hi:
                _, (found, warm) = _search(gap, lo, hi, g_lo, g_hi, warm, iterations, tolerance)
                return found, warm, True
        lo, hi = np.log(LAMBDA_RANGE[0]), np.log(LAMBDA_RANGE[1])
        g_lo, warm = gap(lo, None)
        if g_lo <= 0:
            return lo, warm, True  # even the best models fit
        g_hi, warm = gap(hi, None)
        if g_hi > 0:
            return hi, warm, False  # not even the cheapest plan fits: show it
        _, (found, warm) = _search(gap, lo, hi, g_lo, g_hi, warm, iterations, tolerance)
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
) -> Plan:
    """The plan maximising P(run ok) − λ·E[spend], with λ set by the budget or cloud share.

    Give exactly one of ``budget_usd`` (expected USD per run), ``cloud_share`` (expected
    fraction of calls on cloud models) or ``lam`` (fixed trade-off: success per dollar).
    ``tolerance``: how close (in log λ) the search for λ gets to the budget's boundary.
    ``carryover``: how revealed results (a critic's rejection) change the run's next estimates,
    applied by the plan's live decisions (``Plan.decide``). To re-plan the same workflow often,
    keep a ``Planner``.
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
    )
