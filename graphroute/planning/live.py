"""Planning a user's app: inspect it, profile it, solve its plan, and route it live.

This is what ``optimize(graph, budget_usd=..., pool=...)`` and ``graphroute plan`` use::

    plan = plan_app(app, pool, budget_usd=0.01)          # or cloud_share=0.2
    print(plan)
    router = planned_router(plan, budget_usd=0.01)       # PlannedRouter + BudgetPacer
    app = optimize(app, pool=pool, router=router)

The run budget is a hard cap per run (a model other than the cheapest is used only while its
estimated cost fits what is left of the run's budget), and the plan's expected spend per run
is also the pacer's target, so λ follows real spend from run to run.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from graphroute.errors import ConfigError, UnknownModelError
from graphroute.graph.identity import nearest, pin_for
from graphroute.pillars.base import Pillar
from graphroute.planning.carryover import Carryover
from graphroute.planning.pacing import BudgetPacer, RollingBudget
from graphroute.planning.plan import NodeBins, NodeDemand, Plan
from graphroute.planning.pricing import PoolPrices
from graphroute.planning.profiles import plan_inputs, prior_skills
from graphroute.planning.refresh import PlanRefresher
from graphroute.planning.router import EstimateSource, PlannedRouter
from graphroute.planning.solver import solve
from graphroute.planning.structure import Retry

MIN_CARRYOVER_RUNS = 30  # runs with two or more call-level outcomes before the plan trusts a fit

if TYPE_CHECKING:
    from graphroute.graph.inspect import WorkflowGraph


def plan_app(
    app: Any,
    pool: Any,
    *,
    budget_usd: float | None = None,
    cloud_share: float | None = None,
    lam: float | None = None,
    traces: Any = None,
    skills: Mapping[str, float] | None = None,
    quorums: Mapping[str, float] | None = None,
    pins: Mapping[str, str] | None = None,
) -> Plan:
    """Inspect and profile ``app`` (learning from ``traces`` when given) and solve its plan.

    ``quorums``: fan-out nodes whose run needs only some copies to succeed (``shape.py``).
    ``pins``: node → model that must serve that node's calls (a subgraph's name covers the
    nodes inside it); default: the pool file's ``[routing.nodes]`` for the nodes this app has
    (``graph.identity.pins_within``).
    A pin is kept whatever the budget: the plan counts its calls' cost and spends what is
    left on the other nodes.
    """
    from graphroute.graph import annotate, inspect
    from graphroute.graph.identity import node_ids, pin_targets, pins_within

    if budget_usd is None and cloud_share is None and lam is None:
        raise ConfigError("planning needs a target: budget_usd=... (USD per run) or cloud_share=...")
    graph = inspect(app)
    if pins is None:
        pins = pins_within(pool.routing.nodes, pin_targets(node_ids(app)))
    store = traces
    if isinstance(traces, str | Path):
        from graphroute.traces.store import TraceStore

        store = TraceStore(traces)
    profiles = annotate(graph, traces=store, pool=pool)
    prices = PoolPrices.from_pool(pool)
    skill_source = "given" if skills else "price-rank prior"
    if not skills and store is not None:
        measured, scored = measured_skills(store, prices, graph=graph.identity, nodes=app_nodes(graph))
        if measured:
            skills, skill_source = measured, f"measured on {scored} scored calls (feedback, outcomes, failures)"
    workflow, demands = plan_inputs(profiles, prices, skills=skills, graph=graph, quorums=quorums)
    demands = pinned_demands(demands, pins, prices)
    plan = solve(workflow, demands, prices, budget_usd=budget_usd, cloud_share=cloud_share, lam=lam)
    plan.pins = {**plan.pins, **pins}  # a pin inside a planned node is kept live too
    known = 0
    if store is not None:  # read live only (the solver does not use it): fitted on the plan's own bins
        plan.carryover, known = traced_carryover(store, plan.bins, prices, graph=graph.identity)
    observed = sum(profile.observed_calls for profile in profiles.values())
    source = f"traces ({observed} calls observed)" if observed else "priors (no traces of this app yet)"
    plan.notes.append(f"profiles from {source}; model skills: {skill_source}")
    if plan.carryover is not None:
        plan.notes.append(
            f"carryover: a known wrong or right answer rescales the run's later estimates, "
            f"as {known} call-level outcomes in traced runs measured"
        )
    if pins:
        plan.notes.append(
            "pinned (kept whatever the budget; the plan spends the rest around them): "
            + ", ".join(f"{node} = {model}" for node, model in sorted(pins.items()))
        )
        pinned_cost = sum(s.calls * s.cost_usd for (node, _), s in plan.slots.items() if plan.pin_for(node))
        if not plan.feasible and budget_usd is not None and pinned_cost > 0:
            plan.notes.append(
                f"the pinned nodes alone expect ${pinned_cost:.6f} per run: with these pins no plan keeps "
                f"${budget_usd:.6f} per run (raise the budget or pin those nodes to cheaper models)"
            )
    for part in workflow:
        if isinstance(part, Retry):
            plan.notes.append(
                f"retry loop {part.solver} ⇄ {part.critic}: planned for up to {part.attempts} answers "
                "(assumed, or the most a traced run made: the loop's bound lives in its routing function)"
            )
    return plan


def pinned_demands(
    demands: Mapping[str, NodeDemand], pins: Mapping[str, str], prices: PoolPrices
) -> dict[str, NodeDemand]:
    """The demands with each pinned node restricted to its model (its own pin, else a parent's).

    A pin inside a planned node (``"report:draft"`` under ``"report"``) does not restrict the
    whole node: the plan cannot tell that node's calls apart, and the router keeps the pin live.
    """
    out = dict(demands)
    for node, model in pins.items():
        if model not in prices.models:
            raise UnknownModelError(model, list(prices.models), entry=f"pin for node {node!r}")
    for node, demand in demands.items():
        pinned = pin_for(pins, node)
        if pinned is not None:
            out[node] = replace(demand, pinned=prices.index(pinned))
    return out


def traced_carryover(
    store: Any, bins: Mapping[str, NodeBins], prices: PoolPrices, *, graph: str, min_runs: int = MIN_CARRYOVER_RUNS
) -> tuple[Carryover | None, int]:
    """``Carryover`` fitted on the app's traced runs, when they hold enough call-level outcomes.

    Only a known result aimed at one call (its id, or its request and model) counts: a score
    given to a whole run or node is shared by all its calls, so any two of them would agree by
    construction and the fit would see a run's calls as far more alike than they are. Each
    scored call's estimates are what the plan reads for it live: its node's bin at the
    difficulty its pillars recorded. Returns the carryover (None: too few runs with two or more
    such calls) and how many scored calls it rests on.
    """
    from graphroute.graph.profile import recorded_difficulty
    from graphroute.traces.outcomes import score_calls

    aimed = [item for item in store.feedback(graph=graph, source="outcome") if item.call_id or item.request_hash]
    if not aimed:
        return None, 0
    estimates, outcomes, runs = [], [], []
    for outcome in score_calls(store.calls(graph=graph), aimed):
        call, node = outcome.call, nearest(bins, outcome.call.node) or ""
        if outcome.basis != "outcome" or outcome.score is None or not node or call.model not in prices.models:
            continue
        difficulty = recorded_difficulty(call)
        estimates.append(bins[node].row(0.5 if difficulty is None else difficulty))
        result = np.full(len(prices), np.nan)
        result[prices.index(call.model)] = 1.0 if outcome.score >= 1.0 else 0.0  # a run counts a full score
        outcomes.append(result)
        runs.append(call.run_id or "")
    per_run = Counter(runs)
    if sum(1 for count in per_run.values() if count >= 2) < min_runs:
        return None, len(runs)
    return Carryover.fit(np.array(estimates), np.array(outcomes), runs), len(runs)


def app_nodes(graph: WorkflowGraph) -> list[str]:
    """The app's top-level nodes: the names its calls are traced under (a subgraph's inner
    calls as ``parent:inner``, which ``TraceStore.calls(nodes=...)`` counts under ``parent``)."""
    return [node for node in graph.work_nodes() if not graph.level_of(node)]


def measured_skills(
    store: Any,
    prices: PoolPrices,
    *,
    graph: str | None = None,
    nodes: Collection[str] | None = None,
    since: float | None = None,
    prior_weight: float = 5.0,
) -> tuple[dict[str, float], int]:
    """Per model, its mean score over scored calls, shrunk towards the price-rank prior.

    Scores come from feedback, known outcomes and hard failures (``traces/outcomes.py``); a
    call nobody scored says nothing. The default trace store is shared by every app, and
    another app's calls must not move this app's plan: ``graph`` (an app's graph identity,
    as its runs are recorded under) keeps that app's runs only — two apps with a node of the
    same name stay apart — and ``nodes`` keeps only calls of those nodes (and of the nodes
    inside them, for a subgraph). ``since`` keeps calls started at or after that Unix time.
    ``prior_weight`` calls' worth of the prior keeps a model seen twice from swinging the
    plan. Returns the skills and how many scored calls they rest on.
    """
    from graphroute.traces.outcomes import score_calls

    # One pass over the chosen calls, scored together: hindsight signals (a failure later in
    # the run) need every call of a run, and each of this app's runs holds only its nodes.
    calls = store.calls(nodes=nodes, graph=graph, since=since)
    run_ids = {call.run_id for call in calls}
    runs = [run for run in store.runs(graph) if run.run_id in run_ids]
    feedback = [item for item in store.feedback(graph=graph) if item.run_id in run_ids or item.run_id is None]
    prior = prior_skills(prices)
    totals: dict[str, list[float]] = {}
    for outcome in score_calls(calls, feedback, runs):
        model = outcome.call.model
        if outcome.score is not None and model in prior:
            count, total = totals.setdefault(model, [0.0, 0.0])
            totals[model] = [count + 1, total + outcome.score]
    skills = {
        model: (total + prior_weight * prior[model]) / (count + prior_weight)
        for model, (count, total) in totals.items()
    }
    return skills, int(sum(count for count, _ in totals.values()))


def planned_router(
    plan: Plan,
    *,
    budget_usd: float | None = None,
    rolling: RollingBudget | None = None,
    estimates: EstimateSource | None = None,
    pillars: Sequence[Pillar] = (),
    refresher: PlanRefresher | None = None,
) -> PlannedRouter:
    """A ``PlannedRouter`` whose pacer holds the per-run budget (and a rolling one, if given).

    ``pillars``: asked in order for each call's difficulty (its rung of the node's ladder).
    ``refresher``: re-plans from the traces every so many runs (``refresh.PlanRefresher``).
    """
    from graphroute.scaleout.factory import open_spend_ledger

    pacer = BudgetPacer(
        plan.lam,
        run_budget_usd=budget_usd if budget_usd is not None else plan.budget_usd,
        total_usd=rolling.total_usd if rolling else None,
        runs=rolling.runs if rolling else None,
        period_s=rolling.period_s if rolling else None,
        target_usd=plan.expected_cost if plan.expected_cost > 0 else None,
        ledger=open_spend_ledger(rolling.ledger if rolling else None),
    )
    return PlannedRouter(plan, estimates=estimates, pillars=pillars, pacer=pacer, refresher=refresher)
