"""The planning problem prepared once: per run context and node, the curves a λ is tried on.

``Problem`` turns a workflow, its nodes' sample calls and the pool's prices into what one
evaluation of λ needs — the step curves of ``_step_curves`` per context — and holds the
Gauss–Seidel sweeps that find, for a λ, every slot's expected success and cost, the measures
the search for λ steers on, and the per-slot plans of the answer. ``make_ladder`` and
``difficulty_bins`` summarise a node's sample calls by difficulty for the plan.
"""

from __future__ import annotations

from collections.abc import Mapping
from math import prod

import numpy as np

from graphroute.errors import ConfigError
from graphroute.planning._step_curves import StepCurve, step_curves
from graphroute.planning.context import ContextModel
from graphroute.planning.plan import BINS, Ladder, NodeBins, NodeDemand, SlotPlan, choose, worth_of
from graphroute.planning.pricing import PoolPrices
from graphroute.planning.structure import EMPTY, Expectation, Slot, Step, Workflow

Expect = dict[Slot, Expectation]


class Problem:
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
        labelled = _distinct([demands[n] for n in nodes if demands[n].contexts is not None])
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
        built = step_curves([d for _, _, d in flat], prices)
        self.curves: list[dict[str, StepCurve]] = [{} for _ in self.demands]
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
                picks.append(choose(demand.estimates, demand.costs(self.prices), worth))
                difficulty.append(demand.difficulties())
            ladder = make_ladder(np.concatenate(picks), np.concatenate(difficulty), self.prices.models)
            value, saving, worth, success, cost, reach, share = (float(x) for x in numbers)
            out[slot] = SlotPlan(slot, value, saving, worth, success, cost, reach, share, ladder)
        return out


def _distinct(demands: list[NodeDemand]) -> list[NodeDemand]:
    """The demands whose sample calls no earlier one already gave.

    The same training prompts often stand in for every node of a workflow; fitting the context
    model on each node's copy would count a call's nearest neighbours several times over and leave
    fewer distinct calls in its reference sample — a noisier, overconfident posterior (on
    the workflow benchmark's chain it halved what recalibrating by the run's context saved).
    """
    out: list[NodeDemand] = []
    for demand in demands:
        if not any(_same_calls(demand, kept) for kept in out):
            out.append(demand)
    return out


def _same_calls(a: NodeDemand, b: NodeDemand) -> bool:
    return np.array_equal(a.estimates, b.estimates) and np.array_equal(
        np.asarray(a.contexts).astype(str), np.asarray(b.contexts).astype(str)
    )


def make_ladder(picks: np.ndarray, difficulty: np.ndarray, models: tuple[str, ...]) -> Ladder:
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


def difficulty_bins(demand: NodeDemand) -> NodeBins:
    """Mean per-model success per difficulty decile, with the deciles' lower edges."""
    difficulty = demand.difficulties()
    order = np.argsort(difficulty, kind="stable")
    chunks = [c for c in np.array_split(order, min(BINS, len(order))) if len(c)]
    edges = np.array([difficulty[c].min() for c in chunks[1:]])
    success = np.stack([demand.estimates[c].mean(axis=0) for c in chunks])
    return NodeBins(edges, success, float(demand.input_tokens.mean()), float(demand.output_tokens))
