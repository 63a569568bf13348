"""The semantic pillar: how likely each model is to succeed on a prompt, from labelled exemplars.

A trained *router directory* holds an estimator fitted on embeddings of prompts with known
per-model outcomes (RouteLLM or LLMRouter data, see ``graphroute train``), the exemplar
embeddings and a ``router.json`` naming the encoder, the models and the reference tiers: per
data source one *weak* model (the cheapest, else the least accurate) and one *strong* model
(the most accurate).

Two numbers come out, on purpose different:

- ``difficulty`` (the pillar's ``Signal.difficulty``, on the same scale as the rules and the
  judge: how hard is this task) is ``1 − mean estimated success of the weak tier``.
- ``score`` (``graphroute score``, RouteLLM's contract ``score >= threshold → strong``) is the
  expected gain of the strong tier, ``(1 + P(strong ok) − P(weak ok)) / 2``, averaged over the
  tiers. Ranking by gain instead of weak failure does not spend strong calls on questions
  neither model solves: on MMLU (in-domain, cross-validated) APGR rises from ~0.59 to ~0.67
  (see benchmarks/RESULTS.md). A router without strong models scores by difficulty.

Confidence is ``|2p − 1|`` for the weak tier's estimated success ``p`` (how far from a coin
flip) times coverage: the similarity of the nearest exemplar, rescaled so that a prompt unlike
anything seen in training gets low confidence and the cascade asks a later pillar.

Usage::

    pillar = SemanticPillar("default")              # or a router directory from `graphroute train`
    signal = pillar.score(RouteRequest([HumanMessage("Integrate x^2 sin x dx")]))
    signal.difficulty, signal.confidence

This module is the pillar and the public face of its parts: the success estimators live in
``graphroute.pillars.estimators`` and the router directory in ``graphroute.pillars.semantic_router``;
every name is importable from here as well.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from graphroute.pillars.base import Pillar, RouteRequest, Signal
from graphroute.pillars.encoders import Encoder
from graphroute.pillars.estimators import (
    BASE_KINDS,
    ESTIMATOR_ARRAYS,
    ESTIMATOR_FILE,
    ESTIMATORS,
    KNNSuccessEstimator,
    LogisticSuccessEstimator,
    StackedSuccessEstimator,
    SuccessEstimator,
    load_estimator,
)
from graphroute.pillars.semantic_router import (
    COVERAGE_BOUNDS,
    COVERAGE_HIGH,
    COVERAGE_LOW,
    COVERAGE_SAMPLE,
    EXEMPLARS_FILE,
    PROBE_FILE,
    ROUTER_FILE,
    ROUTER_FORMAT,
    SMALL_QUERY,
    SemanticRouter,
    resolve_router,
)

__all__ = [
    "BASE_KINDS",
    "COVERAGE_BOUNDS",
    "COVERAGE_HIGH",
    "COVERAGE_LOW",
    "COVERAGE_SAMPLE",
    "ESTIMATORS",
    "ESTIMATOR_ARRAYS",
    "ESTIMATOR_FILE",
    "EXEMPLARS_FILE",
    "PROBE_FILE",
    "ROUTER_FILE",
    "ROUTER_FORMAT",
    "SMALL_QUERY",
    "KNNSuccessEstimator",
    "LogisticSuccessEstimator",
    "SemanticPillar",
    "SemanticRouter",
    "StackedSuccessEstimator",
    "SuccessEstimator",
    "load_estimator",
    "resolve_router",
]


class SemanticPillar(Pillar):
    """Difficulty from embeddings against labelled exemplars (see the module docstring)."""

    name = "semantic"

    def __init__(self, router: SemanticRouter | Path | str = "default", *, encoder: Encoder | None = None) -> None:
        self._router_spec = router
        self._router: SemanticRouter | None = router if isinstance(router, SemanticRouter) else None
        self._encoder = encoder

    @property
    def router(self) -> SemanticRouter:
        if self._router is None:
            self._router = resolve_router(self._router_spec)
        return self._router

    @property
    def encoder(self) -> Encoder:
        """The given encoder or the router's own, refused unless it is the one the router was trained with."""
        if self._encoder is None:
            self._encoder = self.router.encoder()
        return self.router.check_encoder(self._encoder)

    def estimates(self, text: str) -> dict[str, float]:
        """Estimated success probability per model the router knows."""
        probabilities = self.router.estimates(self.encoder.encode([text]))[0]
        return dict(zip(self.router.models, map(float, probabilities), strict=True))

    def score_texts(self, texts: Sequence[str]) -> list[Signal]:
        """Signals for many prompts in one encoder batch."""
        router = self.router
        embeddings = self.encoder.encode(list(texts))
        estimates = router.estimates(embeddings)
        difficulty = router.difficulty_from(estimates)
        gain = 2.0 * router.score_from(estimates) - 1.0
        coverage = router.coverage(embeddings)
        signals = []
        for d, g, c in zip(difficulty, gain, coverage, strict=True):
            confidence = float(np.clip(abs(1.0 - 2.0 * d) * c, 0.0, 1.0))
            reason = f"{router.estimator.kind}: P(weak ok)={1 - d:.2f}"
            reason += f", strong gain {g:+.2f}" if router.strong else ""
            reason += f", coverage {c:.2f}"
            signals.append(Signal(self.name, difficulty=float(d), confidence=confidence, reason=reason))
        return signals

    def score(self, request: RouteRequest) -> Signal:
        return self.score_texts([request.last_user_text])[0]

    async def ascore(self, request: RouteRequest) -> Signal:
        """Embedding takes milliseconds of CPU: run it off the event loop."""
        return await asyncio.to_thread(self.score, request)
