"""Arm statistics and the policies that pick an arm: the bandit's arithmetic, with no storage.

``ArmState`` is what a store keeps per (context, model): discounted Beta evidence and the error
streak that rests a failing arm; ``ArmView`` is one arm as the pillar sees it at the context's
current step. ``pick`` is the choice itself: a probe for an arm whose rest is over, else
epsilon-greedy or a Thompson draw among the healthy arms. Stores (``bandit_store``, Redis) and
the pillar (``bandit``) share these definitions, so the Lua port of ``ArmState.add`` has one
Python original to follow.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

Policy = Literal["thompson", "epsilon"]


@dataclass(frozen=True)
class Evidence:
    """One observed reward as Beta evidence, and whether the call failed outright."""

    success: float
    failure: float
    error: bool = False


@dataclass(frozen=True)
class Decay:
    """How evidence fades, and how a failing arm is rested and probed (self-healing).

    ``discount`` per context step (0.95: roughly the last 20 calls count). After the n-th
    error in a row an arm rests ``backoff · 2^(n-1)`` steps (at most ``max_backoff``), then
    gets exactly one probe call. A success that ends a streak of ``heal_after`` or more errors
    (an outage, not a flaky call) clears the arm's evidence: it is judged afresh.
    """

    discount: float = 0.95
    backoff: int = 4
    max_backoff: int = 64
    heal_after: int = 3


@dataclass(frozen=True)
class ArmState:
    """Fractional successes/failures as of context step ``step``; plays; the error streak."""

    success: float = 0.0
    failure: float = 0.0
    plays: int = 0
    step: int = 0
    streak: int = 0
    rest_until: int = 0

    def decayed(self, now: int, discount: float) -> tuple[float, float]:
        """(success, failure) seen from context step ``now``: older evidence weighs less."""
        factor = discount ** max(0, now - self.step)
        return self.success * factor, self.failure * factor

    def add(self, now: int, evidence: Evidence, decay: Decay) -> ArmState:
        success, failure = self.decayed(now, decay.discount)
        if evidence.error:
            streak = self.streak + 1
            rest = min(decay.max_backoff, decay.backoff * 2 ** (streak - 1))
            return ArmState(success, failure + evidence.failure, self.plays + 1, now, streak, now + rest)
        if self.streak >= decay.heal_after:  # recovered from an outage: forget it
            success, failure = 0.0, 0.0
        return ArmState(success + evidence.success, failure + evidence.failure, self.plays + 1, now)


@dataclass(frozen=True)
class ArmView:
    """One arm as reported: discounted evidence, posterior mean reward, raw play count."""

    model: str
    weight: float
    mean_reward: float
    plays: int
    streak: int = 0
    resting: bool = False

    @property
    def due(self) -> bool:
        """Rested long enough after errors: the next call probes it."""
        return self.streak > 0 and not self.resting


def pick(views: Sequence[ArmView], policy: Policy, epsilon: float, rng: random.Random) -> tuple[ArmView, str]:
    """The arm to call and how it was chosen; ``rng`` draws in the same order on every run."""
    healthy = [view for view in views if view.streak == 0]
    due = [view for view in views if view.due]
    if due:  # one probe per rest period tells whether a failing provider is back
        return due[0], f"probing after {due[0].streak} error(s)"
    if not healthy:  # everything is failing: the arm whose rest ends first
        return min(views, key=lambda v: v.streak), "every candidate is failing"
    if policy == "epsilon":
        if len(healthy) > 1 and rng.random() < epsilon:
            return rng.choice(healthy), f"exploring, ε={epsilon:g}"
        return max(healthy, key=lambda v: v.mean_reward), "best mean reward"  # first wins ties
    draws = [rng.betavariate(1.0 + _s(v), 1.0 + _f(v)) for v in healthy]
    return healthy[max(range(len(healthy)), key=draws.__getitem__)], "Thompson draw"


def _s(view: ArmView) -> float:
    return view.weight * (1.0 + view.mean_reward) / 2.0


def _f(view: ArmView) -> float:
    return view.weight * (1.0 - view.mean_reward) / 2.0
