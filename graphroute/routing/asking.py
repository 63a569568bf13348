"""Asking the pillars about one call, cheapest first, and stopping as soon as one is sure.

Why a module of its own: the per-call cascade (``CascadeRouter``) and the holistic plan
(``PlannedRouter``, which turns the difficulty into a rung of the node's ladder) ask the same
way, so a judge is consulted only when the rules and the semantic pillar are unsure, whichever
router asked.

Usage::

    asked = ask([rules, semantic, judge], request, exit_confidence=0.8)
    asked.difficulty          # the exiting signal's, else the confidence-weighted mean
    asked.signals             # every signal seen, with its latency (for the trace)
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, replace

from graphroute.pillars.base import Pillar, RouteRequest, Signal

EXIT_CONFIDENCE = 0.8


@dataclass(frozen=True)
class TimedSignal(Signal):
    """A pillar's signal with the time it took, as the routers record it."""

    latency_ms: float | None = None


def stamp(signal: Signal, latency_ms: float) -> Signal:
    """``signal`` with its latency recorded (kept if the pillar measured its own).

    A plain ``Signal`` becomes a ``TimedSignal``; a pillar's own subclass with a
    ``latency_ms`` field gets it filled; any other subclass is kept as it is (its fields matter
    more than the timing).
    """
    if hasattr(signal, "latency_ms"):
        return signal if signal.latency_ms is not None else replace(signal, latency_ms=round(latency_ms, 4))  # type: ignore[call-arg]
    if type(signal) is not Signal:
        return signal
    timed = object.__new__(TimedSignal)  # the signal was validated once already: copy, don't re-check
    fields_of = timed.__dict__
    fields_of.update(signal.__dict__)
    fields_of["latency_ms"] = round(latency_ms, 4)
    return timed


@dataclass(frozen=True)
class Asked:
    """The signals the pillars gave for one call, and which one (if any) was sure enough to stop."""

    signals: tuple[Signal, ...]
    exit_at: int | None

    @property
    def difficulty(self) -> float | None:
        """The exiting signal's difficulty, else the confidence-weighted mean (plain mean if all are 0)."""
        if self.exit_at is not None:
            return self.signals[self.exit_at].difficulty
        rated = [s for s in self.signals if s.difficulty is not None]
        if not rated:
            return None
        weight = sum(s.confidence for s in rated)
        if weight <= 0:
            return sum(s.difficulty or 0.0 for s in rated) / len(rated)
        return sum((s.difficulty or 0.0) * s.confidence for s in rated) / weight

    @property
    def local_only(self) -> bool:
        return any(signal.local_only for signal in self.signals)

    def notes(self) -> list[str]:
        """One short note per signal: ``rules 0.30@0.90 exit``, ``judge 0.70@0.60 412ms``."""
        return [summary(signal, index == self.exit_at) for index, signal in enumerate(self.signals)]


def ask(pillars: Sequence[Pillar], request: RouteRequest, exit_confidence: float = EXIT_CONFIDENCE) -> Asked:
    """Ask ``pillars`` in order until one gives a difficulty with ``exit_confidence`` or more."""
    signals: list[Signal] = []
    for pillar in pillars:
        begun = time.perf_counter()
        signal = stamp(pillar.score(request), (time.perf_counter() - begun) * 1000)
        signals.append(signal)
        if signal.difficulty is not None and signal.confidence >= exit_confidence:
            return Asked(tuple(signals), len(signals) - 1)
    return Asked(tuple(signals), None)


async def aask(pillars: Sequence[Pillar], request: RouteRequest, exit_confidence: float = EXIT_CONFIDENCE) -> Asked:
    """Async twin of ``ask``: a pillar that does I/O (a judge model) does not block the loop."""
    signals: list[Signal] = []
    for pillar in pillars:
        begun = time.perf_counter()
        signal = stamp(await pillar.ascore(request), (time.perf_counter() - begun) * 1000)
        signals.append(signal)
        if signal.difficulty is not None and signal.confidence >= exit_confidence:
            return Asked(tuple(signals), len(signals) - 1)
    return Asked(tuple(signals), None)


def summary(signal: Signal, exited: bool) -> str:
    text = signal.pillar
    if signal.difficulty is not None:
        text += f" {signal.difficulty:.2f}@{signal.confidence:.2f}"
    else:
        text += " –"
    latency = getattr(signal, "latency_ms", None)
    if latency is not None and latency >= 1:
        text += f" {latency:.0f}ms"
    return text + (" exit" if exited else "")
