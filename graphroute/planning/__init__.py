"""Holistic planning: choose models for the whole run at once, under a budget.

- ``structure``: how a run's success depends on its calls (``Workflow`` of ``Step``,
  ``Quorum``, ``Retry``) — the value of each call given what the run knows; ``shape``: that
  workflow read from an inspected app (solver/critic loops become ``Retry``);
- ``solver``: ``solve(...)`` → ``Plan`` (Lagrangian relaxation, a secant search on λ for the budget);
  ``Planner`` keeps the prepared problem for re-plans; ``carryover``: what revealed results say;
  ``context``: what kind of run this is, and (``ContextCalibration``) how that reads its estimates;
  ``latent``: run contexts learnt from traced runs' outcomes where calls carry no task labels;
- ``router``: ``PlannedRouter``, the plan applied live; ``pacing``: ``BudgetPacer``;
  ``failures``: what a failed tool call, a refusal or a provider error changes for the run's next
  calls; ``estimates``: per-model success from a semantic pillar trained on the pool's models;
- ``baselines``: the strategies the plan is measured against; ``curves``: how they compare.
"""

from __future__ import annotations

from graphroute.planning.context import ContextCalibration
from graphroute.planning.estimates import PillarEstimates
from graphroute.planning.failures import RunFailure
from graphroute.planning.latent import LatentContexts
from graphroute.planning.pacing import BudgetPacer
from graphroute.planning.plan import Ladder, NodeDemand, Plan
from graphroute.planning.pricing import CallCoster, PoolPrices, TokenCounter
from graphroute.planning.router import PlannedRouter
from graphroute.planning.solver import Planner, solve
from graphroute.planning.structure import Quorum, Retry, RunState, Step, Workflow

__all__ = [
    "BudgetPacer",
    "CallCoster",
    "ContextCalibration",
    "Ladder",
    "LatentContexts",
    "NodeDemand",
    "PillarEstimates",
    "Plan",
    "PlannedRouter",
    "Planner",
    "PoolPrices",
    "Quorum",
    "Retry",
    "RunFailure",
    "RunState",
    "Step",
    "TokenCounter",
    "Workflow",
    "solve",
]
