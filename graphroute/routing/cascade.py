"""``CascadeRouter``: rules → semantic → judge → bandit, stopping as soon as a pillar is sure.

Why a cascade: the pillars cost microseconds (rules), milliseconds (embeddings) and hundreds
of milliseconds (a judge model). Asking them in that order and stopping at the first signal
whose confidence reaches ``exit_confidence`` keeps the typical decision cheap while hard,
unfamiliar requests still get the careful look.

How a decision is made:

1. every pillar's signal is kept, with its latency; ``local_only`` from any pillar (privacy,
   data residency) is a hard constraint — no cloud model, whatever comes after. Pillars
   after an early exit are not asked, so constraint pillars go first (rules do);
2. difficulty = the exiting signal's, else the confidence-weighted mean of the signals seen;
3. the node's *ladder* (models from cheapest to strongest, with difficulty thresholds; by
   default the pool's models ordered by price, local first on ties, equal thresholds) turns
   the difficulty into a model; pins from the pool file still win;
4. with a bandit, the target and the next stronger rung(s) are its arms, so outcomes fed
   back through ``observe`` move traffic away from a failing or poor model.

Usage::

    router = CascadeRouter(pool, pillars=["rules", "semantic"], bandit=BanditPillar())
    app = optimize(graph, pool=pool, router=router)
    app.invoke(...)
    app.last_run.calls[0].reason     # the one-line explanation, also in the trace
"""

from __future__ import annotations

import importlib.util
import inspect
import time
from bisect import bisect_right
from collections.abc import Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from graphroute.errors import ConfigError, RoutingError
from graphroute.graph.identity import nearest, pin_for
from graphroute.pillars.bandit import BanditPillar, Outcome
from graphroute.pillars.base import Pillar, RouteRequest, Signal
from graphroute.providers.pool import ModelPool
from graphroute.routing.asking import EXIT_CONFIDENCE, Asked, TimedSignal, aask, ask, stamp
from graphroute.routing.base import RouteDecision, Router

__all__ = ["CascadeDecision", "CascadeRouter", "Ladder", "TimedSignal", "price_ladder", "stamp"]


@dataclass(frozen=True)
class Ladder:
    """Models from cheapest to strongest; ``thresholds[i]`` is where rung ``i + 1`` starts.

    Usage: ``Ladder(("local", "cloud-mini", "cloud"), (0.4, 0.75))``; without thresholds the
    difficulty range is split equally.
    """

    models: tuple[str, ...]
    thresholds: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "models", tuple(self.models))
        if not self.models:
            raise ConfigError("a ladder needs at least one model")
        if self.thresholds is None:
            count = len(self.models)
            object.__setattr__(self, "thresholds", tuple(i / count for i in range(1, count)))
        cuts = tuple(self.thresholds or ())
        object.__setattr__(self, "thresholds", cuts)
        if len(cuts) != len(self.models) - 1 or list(cuts) != sorted(cuts):
            raise ConfigError(f"ladder {self.models}: need {len(self.models) - 1} ascending thresholds, got {cuts}")

    def rung(self, difficulty: float) -> int:
        """Index of the model for ``difficulty``: how many thresholds it reaches."""
        return bisect_right(self.thresholds or (), difficulty)

    def fallbacks(self, model: str) -> tuple[str, ...]:
        """If ``model`` fails: the stronger rungs first (nearest first), then the weaker ones."""
        return self._fallbacks.get(model, self.models)

    @cached_property
    def _fallbacks(self) -> dict[str, tuple[str, ...]]:
        return {m: self.models[i + 1 :] + self.models[:i][::-1] for i, m in enumerate(self.models)}

    def restricted(self, allowed: AbstractSet[str]) -> Ladder | None:
        """The rungs in ``allowed`` (e.g. local models only), equal thresholds; None if empty."""
        kept = tuple(model for model in self.models if model in allowed)
        if kept == self.models:
            return self
        return Ladder(kept) if kept else None

    @cached_property
    def describe(self) -> str:
        """``local<0.33≤mini<0.67≤big``: the ladder as the explanation prints it."""
        cuts = self.thresholds or ()
        parts = [self.models[0]]
        for cut, model in zip(cuts, self.models[1:], strict=True):
            parts.append(f"<{cut:.2f}≤{model}")
        return "".join(parts)


def price_ladder(pool: ModelPool) -> Ladder:
    """The pool's models from cheapest to dearest (local first on equal prices)."""
    specs = sorted(pool, key=lambda spec: (spec.input_price + spec.output_price, not spec.is_local))
    return Ladder(tuple(spec.name for spec in specs))


@dataclass(frozen=True)
class CascadeDecision(RouteDecision):
    """A decision with the combined difficulty and the routing time; ``explain()`` is one line."""

    difficulty: float | None = None
    latency_ms: float = 0.0

    def explain(self) -> str:
        return self.reason


class CascadeRouter(Router):
    """Per-call routing through the pillars; see the module docstring.

    ``pillars``: instances or registry names (a name's factory gets ``pool=`` if it takes
    one), asked in order. ``ladder``: the default ladder (a ``Ladder`` or model names,
    cheapest first); ``ladders``: per node (``"report"`` covers ``"report:draft"``).
    ``pins``: node → model, default the pool file's ``[routing.nodes]``.
    """

    def __init__(
        self,
        pool: ModelPool,
        pillars: Sequence[Pillar | str] = ("rules",),
        *,
        bandit: BanditPillar | None = None,
        exit_confidence: float = EXIT_CONFIDENCE,
        ladder: Ladder | Sequence[str] | None = None,
        ladders: Mapping[str, Ladder | Sequence[str]] | None = None,
        pins: Mapping[str, str] | None = None,
        bandit_arms: int = 2,
    ) -> None:
        self.pool = pool
        self.pillars: list[Pillar] = []
        for pillar in pillars:
            built = build_pillar(pillar, pool) if isinstance(pillar, str) else pillar
            if isinstance(built, BanditPillar) and bandit is None:
                bandit = built  # a bandit named among the pillars acts last, on the ladder
            elif not isinstance(built, BanditPillar):
                self.pillars.append(built)
        self.bandit = bandit
        self.exit_confidence = exit_confidence
        self.ladder = self._ladder(ladder) if ladder is not None else price_ladder(pool)
        self.ladders = {node: self._ladder(value) for node, value in (ladders or {}).items()}
        self.pins = dict(pool.routing.nodes if pins is None else pins)
        for model in self.pins.values():
            pool[model]  # raises UnknownModelError naming the pool's models
        self.bandit_arms = max(1, bandit_arms)
        self._default = pool.default_model()
        self._local = frozenset(spec.name for spec in pool.local())
        self._names = frozenset(pool.names)

    @classmethod
    def recommended(cls, pool: ModelPool, *, bandit: BanditPillar | None = None, **options: Any) -> CascadeRouter:
        """Rules, then the semantic pillar when its extra is installed; the judge stays off.

        The judge is left out because on RouteLLM's data it added no accuracy over the
        semantic pillar (see ``benchmarks/RESULTS.md``); add it with ``pillars=[..., "judge"]``.
        """
        names = ["rules"]
        if importlib.util.find_spec("sentence_transformers") is not None:
            names.append("semantic")
        return cls(pool, names, bandit=bandit, **options)

    def _ladder(self, value: Ladder | Sequence[str]) -> Ladder:
        ladder = value if isinstance(value, Ladder) else Ladder(tuple(value))
        for model in ladder.models:
            self.pool[model]  # raises UnknownModelError for a typo
        return ladder

    # -- routing ----------------------------------------------------------------------------
    def route(self, request: RouteRequest) -> CascadeDecision:
        started = time.perf_counter()
        return self._decide(request, ask(self.pillars, request, self.exit_confidence), started)

    async def aroute(self, request: RouteRequest) -> CascadeDecision:
        started = time.perf_counter()
        return self._decide(request, await aask(self.pillars, request, self.exit_confidence), started)

    def ladder_for(self, node: str | None) -> Ladder:
        name = nearest(self.ladders, node)
        return self.ladder if name is None else self.ladders[name]

    def _pin(self, node: str | None) -> str | None:
        return pin_for(self.pins, node)

    def _decide(self, request: RouteRequest, asked: Asked, started: float) -> CascadeDecision:
        signals = list(asked.signals)
        local_only = asked.local_only
        difficulty = asked.difficulty
        notes = asked.notes()
        ladder = self.ladder_for(request.node)
        allowed = self._local if local_only else self._names
        if local_only:
            restricted = ladder.restricted(self._local)
            if restricted is None:
                why = "; ".join(s.reason for s in signals if s.local_only) or "a pillar"
                raise RoutingError(
                    f"this call must stay on a local model ({why}) but the ladder {list(ladder.models)} has none; "
                    "add a local model to the pool (provider llamacpp or ollama)",
                    node=request.node,
                )
            ladder = restricted
            notes.append("local only")
        forced = None
        for signal in signals:  # a pillar may name a model outright (e.g. a rule for this node)
            if signal.model is not None and signal.model in allowed:
                forced = signal.model
                break
        pinned = self._pin(request.node) if self.pins else None
        if pinned is not None and pinned not in allowed:
            notes.append(f"pin {pinned} ignored (local only)")
            pinned = None
        if forced or pinned:
            model = str(forced or pinned)
            notes.append(f"{'pillar chose' if forced else 'node pinned to'} {model}")
        else:
            if difficulty is None:
                rung = ladder.models.index(self._default) if self._default in ladder.models else 0
                notes.append(f"no difficulty → default {ladder.models[rung]}")
            else:
                rung = ladder.rung(difficulty)
                notes.append(f"d={difficulty:.2f} on {ladder.describe} → {ladder.models[rung]}")
            model = ladder.models[rung]
            if self.bandit is not None and len(ladder.models) > 1:
                picked = self._bandit(ladder, rung, request.node, difficulty)
                signals.append(picked)
                if picked.model and picked.model != model:
                    notes.append(f"bandit → {picked.model}")
                    model = picked.model
        latency_ms = (time.perf_counter() - started) * 1000
        return CascadeDecision(
            model=model,
            reason=f"{model} for {request.node or 'call'}: " + "; ".join(notes),
            signals=tuple(signals),
            fallbacks=ladder.fallbacks(model),
            difficulty=difficulty,
            latency_ms=round(latency_ms, 4),
        )

    def _bandit(self, ladder: Ladder, rung: int, node: str | None, difficulty: float | None) -> Signal:
        """The bandit's pick among the target rung (listed first: the default) and its neighbours."""
        assert self.bandit is not None
        arms = list(ladder.models[rung : rung + self.bandit_arms])
        below = rung - 1
        while len(arms) < self.bandit_arms and below >= 0:  # at the top, the next weaker rung
            arms.append(ladder.models[below])
            below -= 1
        begun = time.perf_counter()
        picked = self.bandit.choose(arms, node=node, difficulty=difficulty)
        return stamp(picked, (time.perf_counter() - begun) * 1000)

    def fingerprint(self) -> str:
        """The configuration, stable across processes (``RoutedChatModel`` puts it in cache keys)."""
        parts = [
            ",".join(f"{type(p).__module__}.{type(p).__qualname__}:{p.name}" for p in self.pillars),
            f"exit={self.exit_confidence}",
            f"ladder={self.ladder.describe}",
            "ladders=" + ",".join(f"{node}:{ladder.describe}" for node, ladder in sorted(self.ladders.items())),
            "pins=" + ",".join(f"{node}:{model}" for node, model in sorted(self.pins.items())),
            f"bandit={type(self.bandit).__qualname__ if self.bandit else None}:{self.bandit_arms}",
        ]
        return "|".join(parts)

    # -- learning from outcomes -------------------------------------------------------------
    def observe(self, decision: RouteDecision, outcome: Outcome) -> float | None:
        """Feed one call's outcome to the bandit (if any); returns the reward given."""
        if self.bandit is None or not any(s.pillar == self.bandit.name for s in decision.signals):
            return None
        return self.bandit.observe(decision, outcome)


def build_pillar(name: str, pool: ModelPool) -> Pillar:
    """The registry's pillar ``name``, given the pool when its factory takes one."""
    from graphroute.pillars.registry import create, load

    factory = load(name)
    try:
        accepts_pool = "pool" in inspect.signature(factory).parameters
    except (TypeError, ValueError):
        accepts_pool = False
    return create(name, pool=pool) if accepts_pool else create(name)
