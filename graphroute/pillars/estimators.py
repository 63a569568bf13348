"""Success estimators: per-model success probability from a prompt embedding, saved as JSON + npz.

They are the semantic pillar's learned part, kept apart from the router (which adds the
encoder, the reference tiers and coverage) and from the pillar (which turns estimates into a
``Signal``): training code and benchmarks fit, compare and save estimators on their own. The
``kind`` written into ``estimator.json`` picks the class again on load, so a saved router never
depends on where these classes live.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np

from graphroute.errors import ConfigError
from graphroute.pillars.encoders import normalise

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


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float, *, iterations: int = 12) -> np.ndarray:
    """Weights of an L2-penalised logistic regression by Newton steps; ``x``'s last column is the
    intercept, which is not shrunk. ``y`` may be fractional (partial credit is a soft label)."""
    penalty = np.full(x.shape[1], l2)
    penalty[-1] = 1e-6
    mean = np.clip(y.mean(), 1e-3, 1 - 1e-3)
    w = np.zeros(x.shape[1])
    w[-1] = np.log(mean / (1 - mean))
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-(x @ w)))
        gradient = x.T @ (p - y) + penalty * w
        hessian = (x * (p * (1 - p))[:, None]).T @ x + np.diag(penalty)
        step = np.linalg.solve(hessian, gradient)
        w -= step
        if np.abs(step).max() < 1e-6:
            break
    return w


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
                self._weights[:, j] = fit_logistic(
                    design[known], outcomes[known, j], self.l2, iterations=self.iterations
                )
        return self

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


class StackedSuccessEstimator(SuccessEstimator):
    """A second stage over a base estimator: each model's success re-read from *every* model's estimate.

    A kNN estimate of one model on one question is a vote of a few dozen neighbours, so the gap
    between two models' estimates — the only thing a routing decision reads — is mostly noise;
    what the estimates agree on (how hard the question is) is not. Per model, a logistic
    regression on the logits of all the base's estimates, fitted on out-of-fold base estimates
    (``folds``-fold cross-fitting, so it learns how the base errs on questions it has not seen)
    and shrunk hard (``shrink`` per training row), pools that shared signal and keeps only the
    gaps the data supports. On LLMRouter's outcomes it made per-call routing of a four-step
    chain 11–12 % cheaper at equal success with a kNN base, and dearer with the logistic one,
    which is already a smooth function of the embedding; with two models (RouteLLM's data) there
    is little to pool and it is no gain (benchmarks/RESULTS.md, "workflows").
    """

    kind = "stacked"

    def __init__(
        self,
        base: str = "knn",
        *,
        base_params: dict[str, Any] | None = None,
        shrink: float = 0.025,
        folds: int = 5,
        seed: int = 0,
    ) -> None:
        if base not in BASE_KINDS:
            raise ConfigError(f"stacked estimator: base {base!r} is not one of {', '.join(BASE_KINDS)}")
        if folds < 2:
            raise ConfigError(f"stacked estimator: folds={folds}; cross-fitting needs at least 2")
        self.base_kind, self.base_params = base, dict(base_params or {})
        self.shrink, self.folds, self.seed = shrink, folds, seed
        self.models = []

    @classmethod
    def over(cls, base: SuccessEstimator, **settings: Any) -> StackedSuccessEstimator:
        """A stacked estimator over an unfitted ``base`` of one of ``BASE_KINDS``, with its settings."""
        return cls(base.kind, base_params=base.params(), **settings)

    @property
    def min_rows(self) -> int:
        """The fewest training rows it fits on: two per fold, so every fold's base learns from more than one."""
        return 2 * self.folds

    def _fresh_base(self) -> SuccessEstimator:
        return ESTIMATORS[self.base_kind](**self.base_params)

    def fit(self, embeddings: np.ndarray, outcomes: np.ndarray, models: Sequence[str]) -> Self:
        embeddings, outcomes = self._check(embeddings, outcomes, models)
        if len(embeddings) < self.min_rows:
            raise ConfigError(
                f"stacked estimator: {len(embeddings)} training rows, fewer than 2 × folds ({self.min_rows}); "
                "train without stacking or on more rows"
            )
        self.models = list(models)
        held_out = np.zeros_like(outcomes)
        order = np.random.default_rng(self.seed).permutation(len(embeddings))
        for fold in np.array_split(order, self.folds):
            rest = np.setdiff1d(order, fold)
            held_out[fold] = self._fresh_base().fit(embeddings[rest], outcomes[rest], models).predict(embeddings[fold])
        design = _logit_design(held_out)
        self._weights = np.zeros((design.shape[1], len(models)))
        for j in range(len(models)):
            known = ~np.isnan(outcomes[:, j])
            if known.any():
                self._weights[:, j] = fit_logistic(design[known], outcomes[known, j], self.shrink * known.sum())
            else:  # never measured: nothing to re-read it by, keep the base's (prior) estimate
                self._weights[j, j] = 1.0
        self._base = self._fresh_base().fit(embeddings, outcomes, models)
        return self

    def predict(self, embeddings: np.ndarray) -> np.ndarray:
        logits = _logit_design(self._base.predict(embeddings)) @ self._weights
        return 1.0 / (1.0 + np.exp(-logits))

    def params(self) -> dict[str, Any]:
        return {
            "base": self.base_kind,
            "base_params": self._fresh_base().params(),
            "shrink": self.shrink,
            "folds": self.folds,
            "seed": self.seed,
        }

    def arrays(self) -> dict[str, np.ndarray]:
        return {"stack_weights": self._weights, **{f"base.{k}": v for k, v in self._base.arrays().items()}}

    def _restore(self, arrays: dict[str, np.ndarray]) -> None:
        self._weights = arrays["stack_weights"]
        self._base = self._fresh_base()
        self._base.models = list(self.models)
        self._base._restore({k.removeprefix("base."): v for k, v in arrays.items() if k.startswith("base.")})


def _logit_design(estimates: np.ndarray) -> np.ndarray:
    """Every model's estimate as a logit, plus an intercept column."""
    p = np.clip(estimates, 1e-4, 1 - 1e-4)
    return np.hstack([np.log(p / (1 - p)), np.ones((len(p), 1))])


ESTIMATORS: dict[str, type[SuccessEstimator]] = {
    KNNSuccessEstimator.kind: KNNSuccessEstimator,
    LogisticSuccessEstimator.kind: LogisticSuccessEstimator,
    StackedSuccessEstimator.kind: StackedSuccessEstimator,
}
BASE_KINDS: tuple[str, ...] = (KNNSuccessEstimator.kind, LogisticSuccessEstimator.kind)
"""Estimators fitted on embeddings directly; a stacked one sits over one of these."""


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
