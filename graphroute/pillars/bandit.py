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
"""

from __future__ import annotations

import random
import re
import sqlite3
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import astuple, dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

from graphroute.errors import ConfigError
from graphroute.pillars.base import Pillar, RouteRequest, Signal

Policy = Literal["thompson", "epsilon"]

__all__ = [
    "ArmState",
    "BanditPillar",
    "BanditSignal",
    "BanditStore",
    "Outcome",
    "SQLiteBanditStore",
    "looks_like_refusal",
]


# -- storage --------------------------------------------------------------------------------
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


class BanditStore(ABC):
    """Where arm state lives. ``update`` must be atomic: concurrent updates all count.

    ``graphroute.scaleout.RedisBanditStore`` keeps a hash per context and runs ``update`` as a
    server-side script (``ArmState.add`` in Lua).
    """

    @abstractmethod
    def load(self, context: str) -> tuple[int, dict[str, ArmState]]:
        """The context's current step and its arms."""

    @abstractmethod
    def update(self, context: str, model: str, evidence: Evidence, decay: Decay) -> None:
        """Advance the context one step and add evidence to one arm."""

    @abstractmethod
    def contexts(self) -> list[str]:
        """Every context with state."""

    @abstractmethod
    def clear(self, context: str | None = None) -> None:
        """Forget one context, or everything."""

    def close(self) -> None:  # noqa: B027  (optional hook: most stores hold nothing to release)
        """Release connections (default: nothing to release)."""


class SQLiteBanditStore(BanditStore):
    """State in its own SQLite file (WAL): survives restarts, shared safely between processes.

    ``":memory:"`` keeps it in this process only (experiments, policy studies).
    """

    SCHEMA = """
    CREATE TABLE IF NOT EXISTS bandit_contexts (context TEXT PRIMARY KEY, step INTEGER NOT NULL);
    CREATE TABLE IF NOT EXISTS bandit_arms (
        context TEXT NOT NULL, model TEXT NOT NULL, success REAL NOT NULL, failure REAL NOT NULL,
        plays INTEGER NOT NULL, step INTEGER NOT NULL, streak INTEGER NOT NULL, rest_until INTEGER NOT NULL,
        updated_at REAL NOT NULL, PRIMARY KEY (context, model));
    """
    _COLUMNS = "success, failure, plays, step, streak, rest_until"

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        if str(path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path), timeout=30.0, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        # As the trace store: WAL + NORMAL survives a crashed process; FULL's fsync per update
        # cost ~5 ms of every routed call (benchmarks/shared_overhead.py).
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(self.SCHEMA)
        self._lock = threading.Lock()

    def load(self, context: str) -> tuple[int, dict[str, ArmState]]:
        with self._lock:
            row = self._db.execute("SELECT step FROM bandit_contexts WHERE context = ?", (context,)).fetchone()
            arms = self._db.execute(
                f"SELECT model, {self._COLUMNS} FROM bandit_arms WHERE context = ?", (context,)
            ).fetchall()
        return (row[0] if row else 0), {model: ArmState(*values) for model, *values in arms}

    def update(self, context: str, model: str, evidence: Evidence, decay: Decay) -> None:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")  # read-modify-write, atomic across processes
            try:
                row = self._db.execute("SELECT step FROM bandit_contexts WHERE context = ?", (context,)).fetchone()
                step = (row[0] if row else 0) + 1
                arm = self._db.execute(
                    f"SELECT {self._COLUMNS} FROM bandit_arms WHERE context = ? AND model = ?", (context, model)
                ).fetchone()
                state = (ArmState(*arm) if arm else ArmState()).add(step, evidence, decay)
                self._db.execute("INSERT OR REPLACE INTO bandit_contexts VALUES (?, ?)", (context, step))
                self._db.execute(
                    "INSERT OR REPLACE INTO bandit_arms VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (context, model, *astuple(state), time.time()),
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def contexts(self) -> list[str]:
        with self._lock:
            return [row[0] for row in self._db.execute("SELECT context FROM bandit_contexts ORDER BY context")]

    def clear(self, context: str | None = None) -> None:
        with self._lock:
            for table in ("bandit_contexts", "bandit_arms"):
                if context is None:
                    self._db.execute(f"DELETE FROM {table}")
                else:
                    self._db.execute(f"DELETE FROM {table} WHERE context = ?", (context,))

    def close(self) -> None:
        with self._lock:
            self._db.close()


# -- the pillar -----------------------------------------------------------------------------

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
        healthy = [view for view in views if view.streak == 0]
        due = [view for view in views if view.due]
        with self._lock:
            if due:  # one probe per rest period tells whether a failing provider is back
                chosen, how = due[0], f"probing after {due[0].streak} error(s)"
            elif not healthy:  # everything is failing: the arm whose rest ends first
                chosen, how = min(views, key=lambda v: v.streak), "every candidate is failing"
            elif self.policy == "epsilon":
                if len(healthy) > 1 and self._random.random() < self.epsilon:
                    chosen, how = self._random.choice(healthy), f"exploring, ε={self.epsilon:g}"
                else:
                    chosen, how = max(healthy, key=lambda v: v.mean_reward), "best mean reward"  # first wins ties
            else:
                draws = [self._random.betavariate(1.0 + _s(v), 1.0 + _f(v)) for v in healthy]
                chosen, how = healthy[max(range(len(healthy)), key=draws.__getitem__)], "Thompson draw"
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


def _s(view: ArmView) -> float:
    return view.weight * (1.0 + view.mean_reward) / 2.0


def _f(view: ArmView) -> float:
    return view.weight * (1.0 - view.mean_reward) / 2.0


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
