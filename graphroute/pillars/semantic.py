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
"""

from __future__ import annotations

import asyncio
import json
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np

from graphroute.errors import ConfigError
from graphroute.pillars.base import Pillar, RouteRequest, Signal
from graphroute.pillars.encoders import (
    MINILM_NAME,
    PROBE_MIN_COSINE,
    STATIC_NAME,
    Encoder,
    encoder_for,
    normalise,
    probe_agreement,
    split_shape,
)

ESTIMATOR_FILE = "estimator.json"
ESTIMATOR_ARRAYS = "estimator.npz"


class SuccessEstimator(ABC):
    """Per-model success probability from a prompt embedding; ``nan`` outcomes are skipped."""

    kind: ClassVar[str]
    models: list[str]

    @abstractmethod
    def fit(self, embeddings: np.ndarray, outcomes: np.ndarray, models: Sequence[str]) -> Self:
        """Learn from ``embeddings [n, d]`` and 0/1 ``outcomes [n, m]`` (nan = not measured)."""

    @abstractmethod
    def predict(self, embeddings: np.ndarray) -> np.ndarray:
        """Success probabilities ``[k, m]`` in the order of ``models``."""

    @abstractmethod
    def params(self) -> dict[str, Any]:
        """Hyper-parameters, saved as JSON."""

    @abstractmethod
    def arrays(self) -> dict[str, np.ndarray]:
        """Fitted state, saved as ``.npz``."""

    @abstractmethod
    def _restore(self, arrays: dict[str, np.ndarray]) -> None: ...

    def save(self, directory: Path | str) -> None:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        document = {"kind": self.kind, "params": self.params(), "models": self.models}
        (directory / ESTIMATOR_FILE).write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
        np.savez_compressed(directory / ESTIMATOR_ARRAYS, **self.arrays())  # type: ignore[arg-type]

    @classmethod
    def load(cls, directory: Path | str) -> SuccessEstimator:
        return load_estimator(directory)

    @staticmethod
    def _check(embeddings: np.ndarray, outcomes: np.ndarray, models: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        embeddings = normalise(embeddings)
        outcomes = np.asarray(outcomes, dtype=np.float64)
        if outcomes.shape != (len(embeddings), len(models)):
            raise ValueError(
                f"outcomes {outcomes.shape} do not match {len(embeddings)} embeddings × {len(models)} models"
            )
        if len(embeddings) == 0:
            raise ConfigError("no training rows: the outcome data is empty")
        return embeddings, outcomes


def _priors(outcomes: np.ndarray) -> np.ndarray:
    known = ~np.isnan(outcomes)
    totals = np.where(known, outcomes, 0.0).sum(axis=0)
    return (totals + 1.0) / (known.sum(axis=0) + 2.0)  # Laplace: a model seen on no row gets 0.5


class KNNSuccessEstimator(SuccessEstimator):
    """Similarity-weighted vote of the ``k`` nearest labelled exemplars, shrunk to the model's mean.

    ``p = (Σ w·y + prior_strength·mean) / (Σ w + prior_strength)`` with ``w = exp((sim − max
    sim) / temperature)``; neighbours are searched among rows where that model was measured.
    The defaults (k = 100, temperature 1, i.e. nearly equal weights) were best on RouteLLM's
    GSM8K and MMLU outcomes: success there varies by topic more than by near-duplicates.
    """

    kind = "knn"

    def __init__(self, k: int = 100, *, temperature: float = 1.0, prior_strength: float = 2.0) -> None:
        self.k, self.temperature, self.prior_strength = k, temperature, prior_strength
        self.models = []

    def fit(self, embeddings: np.ndarray, outcomes: np.ndarray, models: Sequence[str]) -> Self:
        self._embeddings, self._outcomes = self._check(embeddings, outcomes, models)
        self.models = list(models)
        self._prepare()
        return self

    def _prepare(self) -> None:
        self._prior = _priors(self._outcomes)
        # Models measured on the same rows share one neighbour search (e.g. one per data source).
        groups: dict[bytes, list[int]] = {}
        known = ~np.isnan(self._outcomes)
        for j in range(len(self.models)):
            groups.setdefault(np.packbits(known[:, j]).tobytes(), []).append(j)
        self._groups = [(np.flatnonzero(known[:, cols[0]]), cols) for cols in groups.values()]

    def predict(self, embeddings: np.ndarray) -> np.ndarray:
        embeddings = normalise(embeddings)
        out = np.tile(self._prior, (len(embeddings), 1))
        for start in range(0, len(embeddings), 1024):  # bounds the similarity matrix's memory
            sims = embeddings[start : start + 1024] @ self._embeddings.T
            for rows, cols in self._groups:
                if len(rows):
                    out[start : start + len(sims), cols] = self._vote(sims[:, rows], rows, cols)
        return out

    def _vote(self, sims: np.ndarray, rows: np.ndarray, cols: list[int]) -> np.ndarray:
        k = min(self.k, sims.shape[1])
        nearest = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        top = np.take_along_axis(sims, nearest, axis=1)
        weights = np.exp((top - top.max(axis=1, keepdims=True)) / self.temperature)
        labels = self._outcomes[rows[nearest]][:, :, cols]  # [q, k, len(cols)]
        votes = np.einsum("qk,qkc->qc", weights, labels)
        prior = self._prior[cols]
        return (votes + self.prior_strength * prior) / (weights.sum(axis=1, keepdims=True) + self.prior_strength)

    def params(self) -> dict[str, Any]:
        return {"k": self.k, "temperature": self.temperature, "prior_strength": self.prior_strength}

    def arrays(self) -> dict[str, np.ndarray]:
        return {"embeddings": self._embeddings.astype(np.float16), "outcomes": self._outcomes.astype(np.float16)}

    def _restore(self, arrays: dict[str, np.ndarray]) -> None:
        self._embeddings = normalise(arrays["embeddings"])
        self._outcomes = arrays["outcomes"].astype(np.float64)
        self._prepare()


class LogisticSuccessEstimator(SuccessEstimator):
    """One L2-regularised logistic regression per model on standardised features, fitted by Newton steps.

    numpy only: with ~400 features a Newton step is one ``d × d`` solve, so a dozen steps fit
    thousands of rows in about a second. Columns are z-scored first, so the penalty treats
    embedding dimensions and appended shape features alike.
    """

    kind = "logistic"

    def __init__(self, l2: float = 1000.0, *, iterations: int = 12) -> None:
        self.l2, self.iterations = l2, iterations
        self.models = []

    def fit(self, embeddings: np.ndarray, outcomes: np.ndarray, models: Sequence[str]) -> Self:
        embeddings, outcomes = self._check(embeddings, outcomes, models)
        self.models = list(models)
        features = embeddings.astype(np.float64)
        self._mean, self._scale = features.mean(axis=0), features.std(axis=0) + 1e-6
        design = np.hstack([(features - self._mean) / self._scale, np.ones((len(features), 1))])
        self._weights = np.zeros((design.shape[1], len(models)))
        for j in range(len(models)):
            known = ~np.isnan(outcomes[:, j])
            if known.any():
                self._weights[:, j] = self._newton(design[known], outcomes[known, j])
        return self

    def _newton(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        penalty = np.full(x.shape[1], self.l2)
        penalty[-1] = 1e-6  # the intercept is not shrunk
        mean = np.clip(y.mean(), 1e-3, 1 - 1e-3)
        w = np.zeros(x.shape[1])
        w[-1] = np.log(mean / (1 - mean))
        for _ in range(self.iterations):
            p = 1.0 / (1.0 + np.exp(-(x @ w)))
            gradient = x.T @ (p - y) + penalty * w
            hessian = (x * (p * (1 - p))[:, None]).T @ x + np.diag(penalty)
            step = np.linalg.solve(hessian, gradient)
            w -= step
            if np.abs(step).max() < 1e-6:
                break
        return w

    def predict(self, embeddings: np.ndarray) -> np.ndarray:
        features = (normalise(embeddings).astype(np.float64) - self._mean) / self._scale
        logits = features @ self._weights[:-1] + self._weights[-1]
        return 1.0 / (1.0 + np.exp(-logits))

    def params(self) -> dict[str, Any]:
        return {"l2": self.l2, "iterations": self.iterations}

    def arrays(self) -> dict[str, np.ndarray]:
        return {"weights": self._weights, "mean": self._mean, "scale": self._scale}

    def _restore(self, arrays: dict[str, np.ndarray]) -> None:
        self._weights, self._mean, self._scale = arrays["weights"], arrays["mean"], arrays["scale"]


ESTIMATORS: dict[str, type[SuccessEstimator]] = {
    KNNSuccessEstimator.kind: KNNSuccessEstimator,
    LogisticSuccessEstimator.kind: LogisticSuccessEstimator,
}


def load_estimator(directory: Path | str) -> SuccessEstimator:
    """Whatever estimator ``save`` wrote into ``directory``."""
    directory = Path(directory)
    path = directory / ESTIMATOR_FILE
    if not path.exists():
        raise ConfigError(f"no {ESTIMATOR_FILE}; this is not a saved estimator or router", path=directory)
    document = json.loads(path.read_text(encoding="utf-8"))
    kind = document.get("kind")
    if kind not in ESTIMATORS:
        raise ConfigError(f"unknown estimator kind {kind!r}; known: {', '.join(ESTIMATORS)}", path=path)
    estimator = ESTIMATORS[kind](**document.get("params", {}))
    estimator.models = list(document["models"])
    with np.load(directory / ESTIMATOR_ARRAYS) as arrays:
        estimator._restore(dict(arrays))
    return estimator


ROUTER_FORMAT = 1
ROUTER_FILE = "router.json"
EXEMPLARS_FILE = "exemplars.npy"
PROBE_FILE = "encoder_probe.npy"
# Cosine similarity of the nearest exemplar mapped to coverage 0 … 1, per encoder. Measured as
# the nearest-exemplar similarity of chat lines vs held-out benchmark questions (medians): MiniLM
# 0.38 vs 0.55; the static encoder 0.55 vs 0.75 (its vectors share a larger common direction).
COVERAGE_BOUNDS = {MINILM_NAME: (0.2, 0.5), STATIC_NAME: (0.35, 0.7)}
COVERAGE_LOW, COVERAGE_HIGH = COVERAGE_BOUNDS[MINILM_NAME]  # for encoders not listed
COVERAGE_SAMPLE = 4096
SMALL_QUERY = 4  # up to this many prompts, coverage avoids BLAS threads (see ``coverage``)


class SemanticRouter:
    """A fitted estimator plus what is needed to use it: encoder name, weak tier, exemplars.

    ``probe`` holds the training encoder's vectors for ``encoders.PROBE_TEXTS``: a router only
    accepts an encoder that has the same name *and* still gives those vectors (``check_encoder``),
    so features from another encoder are never silently mixed with the trained ones.
    """

    def __init__(
        self,
        estimator: SuccessEstimator,
        *,
        encoder_name: str,
        weak: Sequence[str],
        strong: Sequence[str] = (),
        exemplars: np.ndarray | None = None,
        metadata: dict[str, Any] | None = None,
        probe: np.ndarray | None = None,
    ) -> None:
        unknown = [m for m in [*weak, *strong] if m not in estimator.models]
        if unknown:
            raise ConfigError(f"weak/strong models {unknown} are not among the estimator's models {estimator.models}")
        if not weak:
            raise ConfigError("a router needs at least one weak (reference) model")
        if strong and len(strong) != len(weak):
            raise ConfigError(f"strong models {list(strong)} must pair one-to-one with weak models {list(weak)}")
        self.estimator = estimator
        self.encoder_name = encoder_name
        self.coverage_bounds = COVERAGE_BOUNDS.get(split_shape(encoder_name)[0], (COVERAGE_LOW, COVERAGE_HIGH))
        self.weak = list(weak)
        self.strong = list(strong)
        self.exemplars = None if exemplars is None else normalise(exemplars)
        self._landmarks = self.exemplars
        if self.exemplars is not None and len(self.exemplars) > COVERAGE_SAMPLE:
            # Coverage only asks "is anything in training close?": a fixed sample answers that
            # at a fraction of the cost of scanning ~20k exemplars on every call.
            chosen = np.random.default_rng(0).choice(len(self.exemplars), COVERAGE_SAMPLE, replace=False)
            self._landmarks = np.ascontiguousarray(self.exemplars[np.sort(chosen)])
        self.metadata = dict(metadata or {})
        self.probe = None if probe is None else np.asarray(probe, dtype=np.float32)
        self._checked: list[Encoder] = []  # encoders already accepted (by identity)
        self._weak_cols = [estimator.models.index(m) for m in self.weak]
        self._strong_cols = [estimator.models.index(m) for m in self.strong]

    @property
    def models(self) -> list[str]:
        return self.estimator.models

    def encoder(self) -> Encoder:
        """The encoder this router was trained with, checked against its saved probe vectors."""
        return self.check_encoder(encoder_for(self.encoder_name))

    def check_encoder(self, encoder: Encoder) -> Encoder:
        """``encoder`` if it is the one this router was trained with, else a ``ConfigError``."""
        if any(known is encoder for known in self._checked):
            return encoder
        if encoder.name != self.encoder_name:
            raise ConfigError(
                f"the router was trained with encoder {self.encoder_name!r} but {encoder.name!r} was given; "
                "pass the matching encoder or retrain the router with this one"
            )
        if self.probe is not None:
            agreement = probe_agreement(encoder, self.probe)
            if agreement < PROBE_MIN_COSINE:
                raise ConfigError(
                    f"encoder {encoder.name!r} no longer gives the vectors this router was trained on "
                    f"(probe cosine {agreement:.3f} < {PROBE_MIN_COSINE}): the model was rebuilt or upgraded "
                    "since; retrain the router (`graphroute train ...`) with the encoder as it is now"
                )
        self._checked.append(encoder)
        return encoder

    def estimates(self, embeddings: np.ndarray) -> np.ndarray:
        """Per-model success probabilities ``[k, m]``."""
        return self.estimator.predict(embeddings)

    def difficulty(self, embeddings: np.ndarray) -> np.ndarray:
        """``1 − mean success of the weak tier``, in [0, 1]."""
        return self.difficulty_from(self.estimates(embeddings))

    def score(self, embeddings: np.ndarray) -> np.ndarray:
        """Routing score in [0, 1]: ``(1 + P(strong ok) − P(weak ok)) / 2`` over the tiers."""
        return self.score_from(self.estimates(embeddings))

    def difficulty_from(self, estimates: np.ndarray) -> np.ndarray:
        return np.clip(1.0 - estimates[:, self._weak_cols].mean(axis=1), 0.0, 1.0)

    def score_from(self, estimates: np.ndarray) -> np.ndarray:
        if not self._strong_cols:
            return self.difficulty_from(estimates)
        gain = estimates[:, self._strong_cols] - estimates[:, self._weak_cols]
        return np.clip((1.0 + gain.mean(axis=1)) / 2.0, 0.0, 1.0)

    def coverage(self, embeddings: np.ndarray) -> np.ndarray:
        """How close each prompt is to the training exemplars, in [0, 1] (1 when unknown)."""
        if self._landmarks is None or len(self._landmarks) == 0:
            return np.ones(len(embeddings))
        if len(embeddings) <= SMALL_QUERY:
            # One routing decision: numpy's own loop, not BLAS. BLAS wakes its thread pool for this
            # 1 × 4096 product, and on a busy machine waiting for the second thread took up to 12 ms
            # (p99) where this takes ~0.2 ms with no tail.
            nearest = np.einsum("qd,nd->qn", embeddings.astype(np.float32), self._landmarks).max(axis=1)
        else:
            nearest = np.concatenate(
                [(embeddings[i : i + 512] @ self._landmarks.T).max(axis=1) for i in range(0, len(embeddings), 512)]
            )
        low, high = self.coverage_bounds
        return np.clip((nearest - low) / (high - low), 0.0, 1.0)

    def save(self, directory: Path | str) -> Path:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.estimator.save(directory)
        if self.exemplars is not None:
            np.save(directory / EXEMPLARS_FILE, self.exemplars.astype(np.float16))
        if self.probe is not None:
            np.save(directory / PROBE_FILE, self.probe)
        document = {
            "format": ROUTER_FORMAT,
            "encoder": self.encoder_name,
            "estimator": self.estimator.kind,
            "models": self.models,
            "weak": self.weak,
            "strong": self.strong,
            "difficulty": "1 - mean P(weak ok)",
            "score": "(1 + mean(P(strong ok) - P(weak ok))) / 2" if self.strong else "1 - mean P(weak ok)",
            **self.metadata,
        }
        (directory / ROUTER_FILE).write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
        return directory

    @classmethod
    def load(cls, directory: Path | str) -> SemanticRouter:
        directory = Path(directory)
        path = directory / ROUTER_FILE
        if not path.exists():
            raise ConfigError(
                f"not a router directory (no {ROUTER_FILE}); create one with `graphroute train --data ... --out DIR`",
                path=directory,
            )
        document = json.loads(path.read_text(encoding="utf-8"))
        if document.get("format") != ROUTER_FORMAT:
            raise ConfigError(f"router format {document.get('format')!r} is not {ROUTER_FORMAT}; retrain it", path=path)
        exemplars_path = directory / EXEMPLARS_FILE
        exemplars = np.load(exemplars_path).astype(np.float32) if exemplars_path.exists() else None
        probe_path = directory / PROBE_FILE
        known = {"format", "encoder", "estimator", "models", "weak", "strong", "score", "difficulty"}
        return cls(
            load_estimator(directory),
            encoder_name=document["encoder"],
            weak=document["weak"],
            strong=document.get("strong", []),
            exemplars=exemplars,
            metadata={k: v for k, v in document.items() if k not in known},
            probe=np.load(probe_path) if probe_path.exists() else None,
        )


def resolve_router(router: SemanticRouter | Path | str) -> SemanticRouter:
    """A router object, a router directory, or ``"default"`` (trained on first use)."""
    if isinstance(router, SemanticRouter):
        return router
    if str(router) == "default":
        from graphroute.evaluation.training import default_router

        return default_router()
    return SemanticRouter.load(router)


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
