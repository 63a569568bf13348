"""The bandit pillar: keeps learning which model serves a node's calls best, and heals itself.

Arms are the candidate models of one *context*: a node and a difficulty bucket
(``"plan|hard"``). After each call, ``update`` (or ``observe`` with an ``Outcome``) adds a
reward: quality − λ·cost, or a negative reward for an error, a timeout or a refusal.
Policies: epsilon-greedy (the default, ε ≥ 0.1) or Thompson sampling; rewards in [-1, 1]
enter a Beta posterior as the fractional success ``(r + 1) / 2``.

Why discounting: providers and prompts drift. Every update in a context multiplies the
context's older evidence by ``discount`` (0.95: roughly the last 20 calls count).

Why rests and probes on top of the policy: exploration alone would keep sending ε/k of the
traffic to a dead provider and, once it is back, take long to trust it again. An arm that
errors rests for a number of steps that doubles with each error in a row (4, 8, … 64), then
gets exactly one probe call. A provider that starts failing therefore loses its traffic
within a few calls, is probed at growing intervals, and — when a probe succeeds after an
outage — is judged afresh, so it regains its traffic at once.

State is kept by a ``BanditStore``: SQLite (its own small file, so it survives restarts and
is shared by processes; ``":memory:"`` for experiments) or Redis (``"redis://…"``, shared by
workers on many machines); the interface is four methods.

Usage::

    bandit = BanditPillar()                                  # state in <data dir>/bandit.sqlite
    signal = bandit.choose(["local", "cloud"], node="plan", difficulty=0.7)
    bandit.observe(signal, Outcome(cost_usd=0.0004))        # after the call
    bandit.observe(signal, Outcome(error="TimeoutError"))   # or when it failed

This module is the pillar and the public face of its parts: arm statistics and the policies in
``graphroute.pillars.bandit_arms``, the stores in ``graphroute.pillars.bandit_store``; every
name is importable from here as well.
"""

from __future__ import annotations

import random
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from graphroute.errors import ConfigError
from graphroute.pillars.bandit_arms import ArmState, ArmView, Decay, Evidence, Policy, pick
from graphroute.pillars.bandit_store import BanditStore, SQLiteBanditStore
from graphroute.pillars.base import Pillar, RouteRequest, Signal

__all__ = [
    "ArmState",
    "ArmView",
    "BanditPillar",
    "BanditSignal",
    "BanditStore",
    "Decay",
    "Evidence",
    "Outcome",
    "Policy",
    "SQLiteBanditStore",
    "looks_like_refusal",
]


_REFUSAL = re.compile(
    r"^\W*(?:i'?m sorry,? but |sorry,? |unfortunately,? )?(?:i|we)\s*(?:can(?:no|')t|cannot|am unable to|won'?t|"
    r"am not able to)\s+(?:help|assist|comply|provide|do that|answer|fulfil)",
    re.IGNORECASE,
)


def looks_like_refusal(text: str) -> bool:
    """A reply that opens by declining the task (checked on the first 200 characters)."""
    return bool(_REFUSAL.search(text[:200]))


@dataclass(frozen=True)
class Outcome:
    """What became of one routed call; ``BanditPillar.reward`` turns it into a number.

    ``error``: the exception's type name when the call failed (a name containing "Timeout"
    counts as a timeout). ``quality``: a [0, 1] judgement of the answer when one exists
    (feedback, an evaluation); a successful call without one counts as quality 1.
    """

    error: str | None = None
    refused: bool = False
    quality: float | None = None
    cost_usd: float = 0.0
    latency_ms: float | None = None

    @classmethod
    def from_reply(
        cls,
        text: str | None,
        *,
        error: BaseException | None = None,
        cost_usd: float = 0.0,
        latency_ms: float | None = None,
    ) -> Outcome:
        """An outcome from a call's reply text or exception (refusals detected from the text)."""
        if error is not None:
            return cls(error=type(error).__name__, cost_usd=cost_usd, latency_ms=latency_ms)
        return cls(refused=looks_like_refusal(text or ""), cost_usd=cost_usd, latency_ms=latency_ms)


@dataclass(frozen=True)
class BanditSignal(Signal):
    """The bandit's pick; ``context`` names the arm set, so ``update`` can find the arm again."""

    context: str = ""
    latency_ms: float | None = None


class BanditPillar(Pillar):
    """Epsilon-greedy or Thompson sampling over candidate models per (node, difficulty bucket).

    ``cost_weight`` (λ) is reward per USD: with the default 100, a $0.001 call loses 0.1.
    ``latency_weight`` is reward per second (default 0). ``buckets`` splits difficulty [0, 1]
    into equal bins (``easy``/``medium``/``hard`` for 3). ``decay``: discount per step and
    the error backoff. ``store``: a ``BanditStore``, a SQLite path, ``":memory:"``, a
    ``redis://`` URL (state shared by many workers), or None for ``<data dir>/bandit.sqlite``.
    ``seed`` makes the draws reproducible.
    """

    name = "bandit"
    BUCKET_NAMES: ClassVar[dict[int, tuple[str, ...]]] = {2: ("easy", "hard"), 3: ("easy", "medium", "hard")}
    error_reward = -1.0
    refusal_reward = -0.5

    def __init__(
        self,
        models: Sequence[str] = (),
        *,
        policy: Policy = "epsilon",
        epsilon: float = 0.1,
        cost_weight: float = 100.0,
        latency_weight: float = 0.0,
        buckets: int = 3,
        decay: Decay | None = None,
        store: BanditStore | Path | str | None = None,
        seed: int | None = None,
    ) -> None:
        if policy not in ("thompson", "epsilon"):
            raise ConfigError(f"unknown bandit policy {policy!r}; use 'thompson' or 'epsilon'")
        if not 0.1 <= epsilon <= 1.0:
            raise ConfigError(f"epsilon must be in [0.1, 1] so failed models keep being retried; got {epsilon}")
        self.decay = decay or Decay()
        if not 0.0 < self.decay.discount <= 1.0:
            raise ConfigError(f"discount must be in (0, 1]; got {self.decay.discount}")
        if buckets < 1:
            raise ConfigError(f"buckets must be at least 1; got {buckets}")
        self.models = list(models)
        self.policy: Policy = policy
        self.epsilon = epsilon
        self.cost_weight = cost_weight
        self.latency_weight = latency_weight
        self.buckets = buckets
        self.store = _coerce_store(store)
        self._random = random.Random(seed)
        self._lock = threading.Lock()  # one Random shared by threads: draws stay reproducible

    # -- contexts ---------------------------------------------------------------------------
    def bucket(self, difficulty: float | None) -> str:
        """The difficulty bin's name; ``any`` when no pillar gave a difficulty."""
        if difficulty is None:
            return "any"
        index = min(self.buckets - 1, int(difficulty * self.buckets))
        names = self.BUCKET_NAMES.get(self.buckets)
        return names[index] if names else f"b{index}"

    def context(self, node: str | None, difficulty: float | None) -> str:
        return f"{node or '*'}|{self.bucket(difficulty)}"

    # -- choosing ---------------------------------------------------------------------------
    def arms(self, context: str, candidates: Sequence[str]) -> list[ArmView]:
        """The candidates' current (discounted) state in ``context``, in candidate order."""
        step, states = self.store.load(context)
        return [self._view(model, states.get(model), step) for model in candidates]

    def _view(self, model: str, state: ArmState | None, step: int) -> ArmView:
        if state is None:
            return ArmView(model, 0.0, 0.0, 0)
        success, failure = state.decayed(step, self.decay.discount)
        weight = success + failure
        mean = (success - failure) / weight if weight > 1e-9 else 0.0
        return ArmView(model, weight, mean, state.plays, state.streak, step < state.rest_until)

    def choose(
        self, candidates: Sequence[str], *, node: str | None = None, difficulty: float | None = None
    ) -> BanditSignal:
        """Pick one of ``candidates`` (the first is the default when nothing is known yet)."""
        if not candidates:
            raise ConfigError("the bandit needs at least one candidate model")
        context = self.context(node, difficulty)
        views = self.arms(context, candidates)
        with self._lock:  # one Random shared by threads: draws stay reproducible
            chosen, how = pick(views, self.policy, self.epsilon, self._random)
        failing = [view.model for view in views if view.streak and view is not chosen]
        note = f"; failing: {', '.join(failing)}" if failing else ""
        return BanditSignal(
            pillar=self.name,
            difficulty=difficulty,
            confidence=round(chosen.weight / (chosen.weight + 5.0), 4),
            model=chosen.model,
            context=context,
            reason=f"bandit {context}: {chosen.model} ({how}; mean reward {chosen.mean_reward:+.2f} "
            f"on {chosen.weight:.1f} calls of evidence{note})",
        )

    def score(self, request: RouteRequest) -> Signal:
        """Choose among ``models`` (given at construction) for the request's node.

        A difficulty may come in ``request.metadata["difficulty"]``; the cascade calls
        ``choose`` directly with its own candidates and difficulty instead.
        """
        if not self.models:
            raise ConfigError("BanditPillar.score needs candidate models: BanditPillar(models=[...])")
        return self.choose(self.models, node=request.node, difficulty=request.metadata.get("difficulty"))

    # -- learning ---------------------------------------------------------------------------
    def reward(self, outcome: Outcome) -> float:
        """quality − λ·cost − μ·latency in [-1, 1]; errors, timeouts and refusals are negative."""
        if outcome.error is not None:
            return self.error_reward
        if outcome.refused:
            return self.refusal_reward
        quality = 1.0 if outcome.quality is None else outcome.quality
        value = quality - self.cost_weight * outcome.cost_usd
        if outcome.latency_ms is not None:
            value -= self.latency_weight * outcome.latency_ms / 1000.0
        return max(-1.0, min(1.0, value))

    def update(self, arm: Any, reward: float, *, model: str | None = None, error: bool = False) -> None:
        """Add ``reward`` (in [-1, 1]) to an arm; ``error=True`` also starts or extends its rest.

        ``arm`` is what ``choose`` returned (a ``BanditSignal``), a ``RouteDecision`` holding
        one, or a context string (then ``model`` names the arm).
        """
        context, chosen = _arm_of(arm, self.name)
        chosen = model or chosen
        if not context or not chosen:
            raise ConfigError(f"no bandit arm in {type(arm).__name__}; pass the BanditSignal or the decision")
        success = (max(-1.0, min(1.0, float(reward))) + 1.0) / 2.0
        self.store.update(context, chosen, Evidence(success, 1.0 - success, error), self.decay)

    def observe(self, arm: Any, outcome: Outcome) -> float:
        """``update`` with the reward of ``outcome``; returns the reward."""
        value = self.reward(outcome)
        self.update(arm, value, error=outcome.error is not None)
        return value


def _arm_of(arm: Any, pillar: str) -> tuple[str | None, str | None]:
    if isinstance(arm, str):
        return arm, None
    if isinstance(arm, BanditSignal):
        return arm.context, arm.model
    for signal in getattr(arm, "signals", ()):  # a RouteDecision
        if isinstance(signal, BanditSignal) and signal.pillar == pillar:
            return signal.context, getattr(arm, "model", None) or signal.model
    return None, None


def _coerce_store(store: BanditStore | Path | str | None) -> BanditStore:
    if isinstance(store, BanditStore):
        return store
    if isinstance(store, str) and "://" in store:  # shared state for many workers: redis://...
        from graphroute.scaleout import open_bandit_store

        return open_bandit_store(store)
    if store is None:
        from graphroute.paths import data_dir

        return SQLiteBanditStore(data_dir() / "bandit.sqlite")
    return SQLiteBanditStore(Path(store))
