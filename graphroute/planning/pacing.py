"""The budget pacer: moves λ from real spend so budgets hold, and guards each run's budget.

Two mechanisms, because they answer different risks:

- **Soft (λ).** After each run the pacer compares what runs actually cost with what it can
  afford per run and scales λ by ``(spend / affordable) ** gain`` (bounded per step). Spend above
  the target raises λ, so later calls prefer cheaper models; spend below lowers it. What a run
  can afford: the per-run budget; with a rolling budget (``total_usd`` over ``runs`` runs or
  over ``period_s`` seconds, e.g. a monthly budget) what is left divided by what is left to
  run, so a run that overspent early makes later ones cheaper.
- **Hard (guard).** Before each call, a model other than the cheapest is allowed only if the
  call's estimated cost still fits the run's budget and the rolling budget. The cheapest model
  is always allowed, so spend can exceed a budget by at most one call's cost — and not at all
  when the cheapest model is a free local one.

Usage::

    pacer = BudgetPacer(plan.lam, run_budget_usd=0.002, total_usd=50.0, period_s=30 * 86400)
    router = PlannedRouter(plan, pacer=pacer)
"""

from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from graphroute.errors import ConfigError

LAMBDA_BOUNDS = (1e-6, 1e12)


class SpendLedger(ABC):
    """Where a rolling budget's spend and finished runs are counted; updates must be atomic."""

    @abstractmethod
    def start(self, now: float) -> float:
        """The budget period's start: the first caller's ``now``, kept for every later caller."""

    @abstractmethod
    def spent(self) -> float:
        """USD spent so far."""

    @abstractmethod
    def runs(self) -> int:
        """Runs finished so far."""

    @abstractmethod
    def charge(self, usd: float) -> float:
        """Add spend; returns the new total."""

    @abstractmethod
    def finish_run(self, usd: float) -> tuple[float, int]:
        """Add a run's not yet charged spend (may be negative) and count the run; returns (spent, runs)."""


class LocalLedger(SpendLedger):
    """Spend counted in this process (the default)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._started: float | None = None
        self._spent = 0.0
        self._runs = 0

    def start(self, now: float) -> float:
        with self._lock:
            if self._started is None:
                self._started = now
            return self._started

    def spent(self) -> float:
        return self._spent

    def runs(self) -> int:
        return self._runs

    def charge(self, usd: float) -> float:
        with self._lock:
            self._spent += usd
            return self._spent

    def finish_run(self, usd: float) -> tuple[float, int]:
        with self._lock:
            self._spent += usd
            self._runs += 1
            return self._spent, self._runs


@dataclass(frozen=True, repr=False)
class RollingBudget:
    """A budget over many runs — ``total_usd`` per ``period_s`` seconds (e.g. a month) or per
    ``runs`` runs — kept on top of a plan's per-run target: ``optimize(..., rolling_budget=...)``.

    ``ledger``: where its spend is counted — this process (None) or ``redis://...``, shared by
    every worker of the app (``scaleout``), so the fleet together keeps one budget.
    """

    total_usd: float
    period_s: float | None = None
    runs: int | None = None
    ledger: str | None = None

    def __post_init__(self) -> None:
        if not self.total_usd > 0:
            raise ConfigError(f"rolling_budget total_usd must be > 0 (USD), got {self.total_usd}")
        if (self.period_s is None) == (self.runs is None):
            raise ConfigError("a rolling budget needs one horizon: period_s=... (seconds) or runs=...")
        if self.period_s is not None and not self.period_s > 0:
            raise ConfigError(f"rolling_budget period_s must be > 0 seconds, got {self.period_s}")
        if self.runs is not None and (isinstance(self.runs, bool) or not isinstance(self.runs, int) or self.runs < 1):
            raise ConfigError(f"rolling_budget runs must be a whole number ≥ 1, got {self.runs!r}")

    def __repr__(self) -> str:  # a ledger URL's password never reaches a log
        from graphroute.scaleout.urls import redact

        horizon = f"period_s={self.period_s!r}" if self.period_s is not None else f"runs={self.runs!r}"
        ledger = f", ledger={redact(self.ledger)!r}" if self.ledger else ""
        return f"RollingBudget(total_usd={self.total_usd!r}, {horizon}{ledger})"


@dataclass
class BudgetPacer:
    """Paces spend against a per-run budget and/or a rolling budget by moving λ.

    ``ledger``: where the rolling budget's spend is counted (default: this process).
    """

    lam: float
    run_budget_usd: float | None = None
    total_usd: float | None = None
    runs: int | None = None
    period_s: float | None = None
    target_usd: float | None = None
    gain: float = 0.5
    max_step: float = 4.0
    smoothing: float = 0.3
    clock: Callable[[], float] = time.time
    ledger: SpendLedger = field(default_factory=LocalLedger)
    history: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.lam <= 0:
            raise ConfigError(f"λ must be positive, got {self.lam}")
        if self.total_usd is not None and self.runs is None and self.period_s is None:
            raise ConfigError("a rolling budget (total_usd) needs a horizon: runs=... or period_s=...")
        self.started = self.ledger.start(self.clock())
        self._recent: float | None = None
        self._lock = threading.Lock()
        self.history.append(self.lam)

    @property
    def spent_usd(self) -> float:
        """What the rolling budget has spent so far (every worker's, with a shared ledger)."""
        return self.ledger.spent()

    @property
    def finished_runs(self) -> int:
        return self.ledger.runs()

    # -- hard guard ----------------------------------------------------------------------------
    def allows(self, cost_usd: float, run_spent_usd: float) -> bool:
        """Whether a call costing ``cost_usd`` fits the run's and the rolling budget."""
        if self.run_budget_usd is not None and run_spent_usd + cost_usd > self.run_budget_usd:
            return False
        return self.total_usd is None or self.spent_usd + cost_usd <= self.total_usd

    def fit(self, costs: np.ndarray, scores: np.ndarray, preferred: int, run_spent_usd: float) -> int:
        """``preferred`` if it fits, else the best-scoring model that fits, else the cheapest (0)."""
        if self.allows(float(costs[preferred]), run_spent_usd):
            return preferred
        for index in np.argsort(-scores, kind="stable"):
            if self.allows(float(costs[index]), run_spent_usd):
                return int(index)
        return 0

    def charge(self, cost_usd: float) -> None:
        """Count a call's spend as soon as it is made (the guard reads it)."""
        self.ledger.charge(cost_usd)

    # -- soft control --------------------------------------------------------------------------
    def affordable(self) -> float | None:
        """What the next run may spend to stay on track (``None``: no target known)."""
        spent, finished = self.spent_usd, self.finished_runs
        return self._affordable(spent, finished)

    def _affordable(self, spent: float, finished: int) -> float | None:
        candidates = []
        if self.total_usd is not None:
            left = self.total_usd - spent
            if self.runs is not None:
                candidates.append(left / max(self.runs - finished, 1))
            else:
                elapsed = max(self.clock() - self.started, 1e-9)
                rate = finished / elapsed  # runs per second so far
                remaining = max(self.period_s - elapsed, 0.0) * rate  # type: ignore[operator]
                candidates.append(left / max(remaining, 1.0))
        if self.run_budget_usd is not None:
            candidates.append(self.target_usd if self.target_usd is not None else self.run_budget_usd)
        elif self.target_usd is not None:
            candidates.append(self.target_usd)
        return min(candidates) if candidates else None

    def rebase(self, old_plan_lam: float, new_plan_lam: float, target_usd: float | None) -> None:
        """A new plan: keep λ the same multiple of the plan's λ (what real spend taught the
        pacer) and aim at the new plan's expected cost per run."""
        with self._lock:
            ratio = self.lam / old_plan_lam if old_plan_lam > 0 else 1.0
            self.lam = float(np.clip(new_plan_lam * ratio, *LAMBDA_BOUNDS))
            if target_usd is not None and target_usd > 0:
                self.target_usd = target_usd
        self.history.append(self.lam)

    def end_run(self, cost_usd: float, charged_usd: float = 0.0) -> float:
        """Fold one finished run's real spend into λ; returns the new λ.

        ``charged_usd`` is what was already counted for the run through ``charge`` (estimates
        made before each call): the difference to the real cost is booked now.
        """
        spent, finished = self.ledger.finish_run(cost_usd - charged_usd)
        with self._lock:
            previous = self._recent
            self._recent = cost_usd if previous is None else (1 - self.smoothing) * previous + self.smoothing * cost_usd
        target = self._affordable(spent, finished)
        if target is not None:
            recent = self._recent or 0.0
            if target <= 0:
                factor = self.max_step
            else:
                factor = float(np.clip(((recent + 1e-12) / target) ** self.gain, 1 / self.max_step, self.max_step))
            with self._lock:
                self.lam = float(np.clip(self.lam * factor, *LAMBDA_BOUNDS))
        self.history.append(self.lam)
        return self.lam
