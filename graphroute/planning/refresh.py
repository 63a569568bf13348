"""Re-planning as traces come in: the plan a long-running app routes by keeps learning.

``optimize(graph, budget_usd=...)`` plans once, from whatever traces exist (for a new app: the
priors). Runs then record what each node really costs and how hard its calls are, and feedback
measures the models; a plan that never looks again keeps routing by its first guesses. Every
``every`` finished runs, ``PlanRefresher`` makes a new plan from the traces (inspection,
profiles, measured skills, solve — the same ``plan_app``) on a background thread, so no run
waits for it, and swaps it into the ``PlannedRouter``. Runs in flight keep their state: the
workflow's shape comes from the same graph.

The pacer keeps what it learned: its λ stays the same multiple of the plan's λ (the
correction real spend taught it), and its per-run target becomes the new plan's expected cost.
A re-plan that fails (a trace store gone away, a bad pool change) is logged and the current
plan kept: nothing already routed or learned is lost.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from graphroute.errors import GraphRouteError
from graphroute.planning.plan import Plan

logger = logging.getLogger(__name__)

DEFAULT_REPLAN_EVERY = 100


class PlanRefresher:
    """Makes a new plan every ``every`` finished runs, off the caller's thread, and hands it on.

    Usage (what ``optimize`` wires)::

        refresher = PlanRefresher(lambda: plan_app(app, pool, budget_usd=0.01, traces=store), every=100)
        router = PlannedRouter(plan, pacer=pacer, refresher=refresher)
    """

    def __init__(self, make_plan: Callable[[], Plan], every: int = DEFAULT_REPLAN_EVERY) -> None:
        if every < 1:
            raise ValueError(f"re-plan every ≥ 1 runs, got {every}")
        self.make_plan = make_plan
        self.every = every
        self.replans = 0
        self.failures = 0
        self._finished = 0
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def run_finished(self, adopt: Callable[[Plan], None]) -> bool:
        """Count a finished run; when a re-plan is due (and none is running), start one.

        ``adopt`` receives the new plan on the background thread. Returns whether one started.
        """
        with self._lock:
            self._finished += 1
            busy = self._thread is not None and self._thread.is_alive()
            if self._finished % self.every or busy:
                return False
            self._thread = threading.Thread(target=self._refresh, args=(adopt,), name="graphroute-replan", daemon=True)
            self._thread.start()
            return True

    def _refresh(self, adopt: Callable[[Plan], None]) -> None:
        try:
            plan = self.make_plan()
        except (GraphRouteError, OSError, ValueError) as error:
            self.failures += 1
            logger.warning("graphroute: re-planning failed, the current plan stays in use: %s", error)
            return
        adopt(plan)
        self.replans += 1

    def wait(self, timeout: float | None = None) -> None:
        """Block until a running re-plan has finished (for tests and orderly shutdown)."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
