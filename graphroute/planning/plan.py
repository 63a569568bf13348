"""The holistic plan: per node, which model its calls get, and the live decision rule.

A call in a slot whose success raises P(run ok) by ``value`` and saves ``saving`` dollars of
later calls (see ``structure.py``) goes to ``argmax_m worth·p_m − c_m`` with
``worth = value/λ + saving`` dollars. ``solver.py`` finds the plan (λ for a budget, and what
each slot is expected to achieve); ``Plan.decide`` applies the rule live, with ``value`` and
``saving`` recomputed from what the run knows — attempt number, the estimated success of
earlier calls, the kind of run they suggest — and, given a ``ContextCalibration``, each call's
estimates read in the light of that kind of run. A per-call router is this rule with worth = 1/λ
for every call. For display and for callers that only have a difficulty score, each slot's
choices are summarised as a *ladder*: models by rising difficulty, with thresholds between rungs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from graphroute.graph.identity import pin_for
from graphroute.planning.carryover import Carryover
from graphroute.planning.context import ContextCalibration, ContextModel
from graphroute.planning.failures import ANSWER, allowed_models
from graphroute.planning.pricing import PoolPrices
from graphroute.planning.structure import EMPTY, Expectation, RunState, Slot, Workflow

LAMBDA_RANGE = (1e-6, 1e12)
BINS = 10
# A call whose success is worth at least this many times its priciest model's price is routed
# on its question's own estimates, not on their recalibration by the run's context: there price
# hardly matters, which model is best on *this* question does, and a context read off a few
# calls blurs exactly that (on LLMRouter's chain the recalibrated choices top out 0.4–1.1 points
# of success lower; anywhere between ≈ 20× and 150× gave the same curves, benchmarks/RESULTS.md).
QUESTION_LEVEL_WORTH = 50.0


def choose(success: np.ndarray, cost: np.ndarray, worth: float | np.ndarray) -> np.ndarray:
    """Per row, the model maximising ``worth·success − cost`` (columns cheapest first, so ties go cheap)."""
    return np.argmax(success * np.asarray(worth, dtype=np.float64)[..., None] - cost, axis=-1)


def worth_of(value: float, saving: float, lam: float) -> float:
    """Dollars a call's success is worth: its share of a run's success at 1/λ, plus spend it saves.

    Never negative: when a success would cost more later than it is worth (a critic whose catch
    buys a hopeless retry), the call goes to the cheapest model, not to a deliberately bad one.
    """
    return max(value / max(lam, 1e-300) + saving, 0.0)


@dataclass(frozen=True)
class NodeDemand:
    """What the solver needs about one node's calls: sample calls with per-model success.

    ``estimates[k, m]``: estimated success of each model (pool order, see ``PoolPrices``) on
    ``k`` representative calls, e.g. cross-validated semantic-pillar estimates on training
    prompts; ``outcomes`` the true 0/1 results when known (used for expectations, never for
    decisions); ``difficulty`` the pillar's difficulty of each sample (for ladders);
    ``contexts`` the kind of task each sample comes from (see ``context.py``); ``pinned`` the
    one model (pool index) the node's calls may use, when a pin decides it: its other models
    are priced out of every choice, so the plan budgets the rest of the run around it.
    """

    node: str
    estimates: np.ndarray
    input_tokens: np.ndarray
    output_tokens: float
    outcomes: np.ndarray | None = None
    difficulty: np.ndarray | None = None
    contexts: np.ndarray | None = None
    pinned: int | None = None

    @classmethod
    def typical(cls, node: str, success: np.ndarray, *, input_tokens: float, output_tokens: float) -> NodeDemand:
        """A node known only by its mean per-model success and token counts (one sample call)."""
        return cls(node, np.asarray(success, dtype=np.float64)[None, :], np.array([input_tokens]), output_tokens)

    def truth(self) -> np.ndarray:
        """Per-model success of each sample call: the outcome where it was measured, else the estimate.

        Outcome files often miss a few (question, model) scores; a NaN there would poison every
        expectation the solver sums, so an unmeasured pair counts at what the plan believes.
        """
        if self.outcomes is None:
            return self.estimates
        outcomes = np.asarray(self.outcomes, dtype=np.float64)
        return np.where(np.isnan(outcomes), self.estimates, outcomes)

    def only(self, rows: np.ndarray) -> NodeDemand:
        """The same node, restricted to some sample calls."""
        pick = lambda a: None if a is None else np.asarray(a)[rows]  # noqa: E731
        return NodeDemand(
            self.node,
            self.estimates[rows],
            self.input_tokens[rows],
            self.output_tokens,
            pick(self.outcomes),
            pick(self.difficulty),
            pick(self.contexts),
            self.pinned,
        )

    def costs(self, prices: PoolPrices) -> np.ndarray:
        """Each sample call's cost per model; a pinned node's other models cost infinitely much."""
        costs = prices.cost(self.input_tokens, self.output_tokens)
        if self.pinned is not None:
            costs = np.where(np.arange(costs.shape[-1]) == self.pinned, costs, np.inf)
        return costs

    def difficulties(self) -> np.ndarray:
        if self.difficulty is not None:
            return np.asarray(self.difficulty, dtype=np.float64)
        return 1.0 - self.estimates[:, 0]  # how likely the cheapest model is to fail


@dataclass(frozen=True)
class Ladder:
    """Models by rising difficulty: rung ``i`` serves difficulty ≥ ``thresholds[i-1]``."""

    models: tuple[str, ...]
    thresholds: tuple[float, ...]

    def pick(self, difficulty: float) -> str:
        return self.models[int(np.searchsorted(self.thresholds, difficulty, side="right"))]

    def __str__(self) -> str:
        parts = [self.models[0]]
        for threshold, model in zip(self.thresholds, self.models[1:], strict=True):
            parts.append(f"≥{threshold:.2f} {model}")
        return " → ".join(parts)


@dataclass(frozen=True)
class SlotPlan:
    """The plan for one slot (a node, and the attempt number inside a retry loop)."""

    slot: Slot
    value: float
    saving: float
    worth_usd: float
    success: float
    cost_usd: float
    calls: float
    cloud_share: float
    ladder: Ladder


@dataclass(frozen=True)
class NodeBins:
    """A node's calls by difficulty bin: mean success per model, for difficulty-only routing."""

    edges: np.ndarray
    success: np.ndarray
    input_tokens: float
    output_tokens: float

    def row(self, difficulty: float) -> np.ndarray:
        return self.success[min(int(np.searchsorted(self.edges, difficulty, side="right")), len(self.success) - 1)]


@dataclass(frozen=True)
class Decision:
    """One live choice and the numbers behind it (they go into the trace's reason).

    ``costs`` and ``estimates`` are per model (pool order); ``evidence`` is what this call says
    about the run's context, kept in the run's state for later calls.
    """

    model: str
    index: int
    slot: Slot
    value: float
    saving: float
    worth_usd: float
    success: float
    cost_usd: float
    costs: np.ndarray
    estimates: np.ndarray
    evidence: np.ndarray
    allowed: np.ndarray | None = None  # models the run's failures left this call (None: any)
    pinned: bool = False  # a pin chose the model: kept whatever the budget or the run's failures


@dataclass
class Plan:
    """Per node, the ladder of models and the numbers the live decisions use.

    Usage::

        plan = solve(workflow, demands, prices, budget_usd=0.002)
        print(plan)                                   # ladders, thresholds, calls, cost, success
        plan.decide("solve", estimates=p, input_tokens=420, state=run_state).model
    """

    workflow: Workflow
    prices: PoolPrices
    lam: float
    slots: dict[Slot, SlotPlan]
    bins: dict[str, NodeBins]
    expected_cost: float
    expected_success: float
    cloud_share: float
    contexts: ContextModel = field(default_factory=ContextModel.single)
    expectations: tuple[dict[Slot, Expectation], ...] = ()
    budget_usd: float | None = None
    target_cloud_share: float | None = None
    feasible: bool = True
    notes: list[str] = field(default_factory=list)
    carryover: Carryover | None = None
    pins: dict[str, str] = field(default_factory=dict)
    recalibration: ContextCalibration | None = None

    def nodes(self) -> list[str]:
        return list(self.bins)

    def pin_for(self, node: str | None) -> str | None:
        """The model a pin gives calls of ``node`` (its own, else its nearest pinned parent's)."""
        return pin_for(self.pins, node)

    def marginal(self, node: str, state: RunState, posterior: np.ndarray) -> tuple[float, float]:
        """``(value, saving)`` of the next call of ``node``, mixed over the run's likely contexts."""
        if node not in self.bins:
            return 1.0, 0.0
        value = saving = 0.0
        for weight, expect in zip(posterior, self.expectations, strict=True):
            if weight > 1e-6:
                v, s = self.workflow.marginal(node, expect, state)
                value, saving = value + weight * v, saving + weight * s
        return value, saving

    def decide(
        self,
        node: str,
        *,
        state: RunState = EMPTY,
        estimates: np.ndarray | None = None,
        difficulty: float | None = None,
        input_tokens: float | None = None,
        lam: float | None = None,
        call_node: str | None = None,
    ) -> Decision:
        """The model for the next call of ``node`` given what the run knows.

        ``call_node``: the node that makes the call when it sits inside the planned ``node``
        (``"report:draft"`` in ``"report"``), so a pin on it holds; default ``node``.
        """
        lam = self.lam if lam is None else lam
        part = self.workflow.part(node)
        slot = part.slot_for(node, state) if part is not None else (node, 0)
        bins = self.bins.get(node)
        if estimates is not None:
            success = np.asarray(estimates, dtype=np.float64)
        elif bins is not None:
            success = bins.row(difficulty if difficulty is not None else 0.5)
        else:  # nothing known about this call: the cheapest model
            success = np.zeros(len(self.prices))
        likelihood = self.contexts.likelihood(success)  # the context evidence reads the estimates as given
        path = [np.array([self.workflow.evidence(state, e, node) for e in self.expectations])] if state.calls else []
        posterior = self.contexts.posterior([*state.evidence, likelihood, *path])
        value, saving = self.marginal(node, state, posterior)
        tokens_in = input_tokens if input_tokens is not None else (bins.input_tokens if bins else 0.0)
        costs = self.prices.cost(tokens_in, bins.output_tokens if bins else 0.0)
        worth = worth_of(value, saving, lam)
        if self.carryover is not None and (known := self.known_results(state, node)):
            success = self.carryover.adjust(success, known)  # measured against the estimates as given
        elif (
            self.recalibration is not None
            and not (part is not None and part.reveals_results)
            and self.priced(worth, costs)
        ):
            success = self.recalibration.apply(success, posterior)
        allowed = allowed_models(node, state.failures, costs)
        pinned = self.pin_for(call_node or node)
        if pinned is not None:  # kept whatever the run saw: the plan spent around it
            index, allowed = self.prices.index(pinned), None
        elif allowed is None:
            index = int(choose(success, costs, worth))
        else:  # escalate past (or avoid) what failed earlier in the run
            index = int(np.argmax(np.where(allowed, success * worth - costs, -np.inf)))
        return Decision(
            self.prices.models[index],
            index,
            slot,
            value,
            saving,
            worth,
            float(success[index]),
            float(costs[index]),
            costs,
            success,
            likelihood,
            allowed,
            pinned is not None,
        )

    @staticmethod
    def priced(worth: float, costs: np.ndarray) -> bool:
        """Is the call's choice a matter of price (worth under ``QUESTION_LEVEL_WORTH`` × its
        priciest model), so the run's context may recalibrate its estimates?"""
        finite = costs[np.isfinite(costs)]
        return finite.size > 0 and worth < QUESTION_LEVEL_WORTH * float(finite.max())

    def known_results(self, state: RunState, upcoming: str | None = None) -> list[tuple[int, bool]]:
        """``(model index, right)`` of the run's calls whose result its path (and the call about to
        be made on ``upcoming``) revealed, and of the answers the run saw fail (``failures.py``)."""
        out = []
        for node, number, right in self.workflow.verdicts(state, upcoming):
            models = state.models.get(node, [])
            if number < len(models):
                out.append((models[number], right))
        out += [(failure.model, False) for failure in state.failures if failure.kind == ANSWER]
        return out

    def observe(self, state: RunState, node: str, decision: Decision, index: int | None = None) -> None:
        """Record a made call in the run's state (``index``: the model actually used, if changed)."""
        index = decision.index if index is None else index
        state.record(
            node, float(decision.estimates[index]), float(decision.costs[index]), decision.evidence, model=index
        )

    # -- display -------------------------------------------------------------------------------
    def rows(self) -> list[dict[str, object]]:
        """One row per slot: what ``app.plan`` and ``graphroute plan`` print."""
        rows = []
        for (node, attempt), s in self.slots.items():
            rows.append(
                {
                    "node": node if not attempt else f"{node} #{attempt}",
                    "ladder": f"{s.ladder} (pinned)" if self.pin_for(node) else str(s.ladder),
                    "calls": s.calls,
                    "cost_usd": s.calls * s.cost_usd,
                    "success": s.success,
                    "value": s.value,
                    "cloud_share": s.cloud_share,
                }
            )
        return rows

    def __str__(self) -> str:
        header = f"{'node':<22} {'calls':>6} {'cost/run $':>11} {'success':>8} {'value':>6}  ladder (by difficulty)"
        lines = [header, "-" * len(header)]
        for row in self.rows():
            lines.append(
                f"{row['node']!s:<22} {row['calls']:>6.2f} {row['cost_usd']:>11.6f} "
                f"{row['success']:>8.3f} {row['value']:>6.3f}  {row['ladder']}"
            )
        target = f"budget ${self.budget_usd:.6f}/run" if self.budget_usd is not None else "no budget"
        if self.target_cloud_share is not None:
            target = f"cloud share ≤ {self.target_cloud_share:.0%}"
        lines.append(
            f"expected per run: ${self.expected_cost:.6f}, success {self.expected_success:.3f}, "
            f"cloud share {self.cloud_share:.0%}; λ = {self.lam:.4g} ({target}"
            f"{'' if self.feasible else ', NOT reachable: cheapest plan shown'})"
        )
        if len(self.contexts) > 1:
            lines.append(f"run contexts: {', '.join(self.contexts.names)} (inferred live from each run's calls)")
        lines.extend(self.notes)
        return "\n".join(lines)
