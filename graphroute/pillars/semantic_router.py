"""The trained router: a success estimator plus the encoder, the reference tiers and the exemplars.

This is what ``graphroute train`` writes into a *router directory* and what ``graphroute
score`` and the semantic pillar load: ``router.json`` (encoder, models, weak/strong tiers),
the estimator's files, the exemplar embeddings (for coverage) and the encoder's probe vectors.
Kept apart from the pillar so that scoring, training and benchmarks use a router without
building a pillar.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from graphroute.errors import ConfigError
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
from graphroute.pillars.estimators import SuccessEstimator, load_estimator

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
