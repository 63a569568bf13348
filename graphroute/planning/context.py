"""Which kind of run this is, inferred from the success estimates of the calls it has made.

Calls of one run are not independent: a run about a hard task makes every step hard. The
plan's expectations for the calls still to come ("will the critic catch it?", "will the last
step succeed?") are therefore kept per *context* — a kind of task, such as a data set's task
cluster — and mixed by the posterior of the run's context given what its calls looked like.

The posterior is a naive-Bayes combination of per-call evidence; each call's evidence is the
context mix among its nearest training calls in the space of per-model success estimates
(the semantic pillar's output), so nothing beyond what the router already computes is needed.

``ContextCalibration`` reads a call's estimates in the light of that posterior: what an estimate
of 0.6 means differs by kind of task (on LLMRouter's data, in the cluster where every model
fails it means ≈ 0.2), so per context and model a Platt map is fitted on training calls and the
maps are mixed by the run's posterior. The plan uses it for calls whose choice is a matter of
price (``Plan.decide``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

REFERENCE_SIZE = 2000
NEIGHBOURS = 25
CACHE_SIZE = 100_000


@dataclass(frozen=True)
class ContextModel:
    """Context names, their prior shares, and labelled estimate vectors to classify calls."""

    names: tuple[str, ...]
    prior: np.ndarray
    reference: np.ndarray
    labels: np.ndarray
    _cache: dict[bytes, np.ndarray] = field(default_factory=dict, init=False, repr=False, compare=False)

    @classmethod
    def single(cls) -> ContextModel:
        return cls(("all",), np.ones(1), np.zeros((0, 0)), np.zeros(0, dtype=int))

    @classmethod
    def fit(cls, estimates: np.ndarray, labels: Sequence[str], *, seed: int = 0) -> ContextModel:
        """From training calls' estimate vectors and their context labels."""
        names = tuple(sorted(set(labels)))
        if len(names) <= 1:
            return cls.single()
        codes = np.array([names.index(label) for label in labels])
        prior = np.bincount(codes, minlength=len(names)).astype(np.float64)
        prior /= prior.sum()
        if len(codes) > REFERENCE_SIZE:
            keep = np.random.default_rng(seed).choice(len(codes), REFERENCE_SIZE, replace=False)
            estimates, codes = estimates[keep], codes[keep]
        return cls(names, prior, np.asarray(estimates, dtype=np.float64), codes)

    def __len__(self) -> int:
        return len(self.names)

    def likelihood(self, estimates: np.ndarray) -> np.ndarray:
        """``P(context | call) / P(context)`` for one call's estimate vector (smoothed)."""
        if len(self.names) == 1 or estimates.shape[-1] != self.reference.shape[1]:
            return np.ones(len(self.names))
        key = estimates.tobytes()
        cached = self._cache.get(key)
        if cached is None:
            if len(self._cache) >= CACHE_SIZE:
                self._cache.clear()
            cached = self._cache[key] = self._likelihood(estimates)
        return cached

    def _likelihood(self, estimates: np.ndarray) -> np.ndarray:
        distances = ((self.reference - estimates) ** 2).sum(axis=1)
        k = min(NEIGHBOURS, len(distances))
        nearest = np.argpartition(distances, k - 1)[:k]
        counts = np.bincount(self.labels[nearest], minlength=len(self.names)) + self.prior  # one pseudo-count
        return (counts / counts.sum()) / self.prior

    def posterior(self, likelihoods: Sequence[np.ndarray]) -> np.ndarray:
        """P(context | every call seen so far), from each call's ``likelihood`` (naive Bayes)."""
        log = np.log(self.prior)
        for likelihood in likelihoods:
            log = log + np.log(np.maximum(likelihood, 1e-12))
        weights = np.exp(log - log.max())
        return weights / weights.sum()


def _logistic(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(z, -30.0, 30.0)))


def log_odds(p: np.ndarray) -> np.ndarray:
    clipped = np.clip(np.asarray(p, dtype=np.float64), 1e-4, 1 - 1e-4)
    return np.log(clipped / (1 - clipped))


def platt(scores: np.ndarray, outcomes: np.ndarray, iterations: int = 50) -> tuple[float, float]:
    """Logistic fit of 0/1 outcomes on the estimates' log-odds (Newton steps): (slope, intercept).

    Pulled towards the identity (slope 1, intercept 0) with the weight of one observation, so a
    small context whose outcomes the estimates happen to separate gets a finite fit.
    """
    x = log_odds(scores)
    outcomes = np.asarray(outcomes, dtype=np.float64)
    params, identity = np.array([1.0, 0.0]), np.array([1.0, 0.0])
    for _ in range(iterations):
        p = _logistic(params[0] * x + params[1])
        gradient = np.array([np.sum((p - outcomes) * x), np.sum(p - outcomes)]) + (params - identity)
        w = p * (1.0 - p)
        hessian = np.array([[np.sum(w * x * x), np.sum(w * x)], [np.sum(w * x), np.sum(w)]]) + np.eye(2)
        step = np.linalg.solve(hessian, gradient)
        params = params - step
        if np.abs(step).max() < 1e-8:
            break
    return float(params[0]), float(params[1])


@dataclass(frozen=True)
class ContextCalibration:
    """Per context and model, a Platt map of the estimates; mixed live by the run's posterior.

    Usage::

        calibration = ContextCalibration.fit(estimates, outcomes, labels)   # training calls
        calibration.apply(call_estimates, posterior)   # posterior over calibration.names
    """

    names: tuple[str, ...]
    slope: np.ndarray  # [contexts, models]
    intercept: np.ndarray

    @classmethod
    def fit(
        cls, estimates: np.ndarray, outcomes: np.ndarray, labels: Sequence[object] | np.ndarray
    ) -> ContextCalibration:
        """From training calls' estimates and 0/1 outcomes ``[calls, models]`` (NaN: not measured)
        and their context labels; context names sorted as ``ContextModel.fit`` sorts them."""
        estimates = np.asarray(estimates, dtype=np.float64)
        outcomes = np.asarray(outcomes, dtype=np.float64)
        labels_ = np.asarray([str(label) for label in labels])
        names = tuple(sorted(set(labels_.tolist())))
        slope = np.ones((len(names), estimates.shape[1]))
        intercept = np.zeros((len(names), estimates.shape[1]))
        for c, name in enumerate(names):
            rows = labels_ == name
            for m in range(estimates.shape[1]):
                measured = rows & ~np.isnan(outcomes[:, m])
                if measured.any():
                    slope[c, m], intercept[c, m] = platt(estimates[measured, m], outcomes[measured, m])
        return cls(names, slope, intercept)

    def per_context(self, estimates: np.ndarray) -> np.ndarray:
        """``[contexts, models]``: the call's estimates as each context reads them."""
        return _logistic(self.slope * log_odds(estimates)[None, :] + self.intercept)

    def per_context_rows(self, estimates: np.ndarray, context: int) -> np.ndarray:
        """``[calls, models]``: many calls' estimates as one context (index in ``names``) reads them."""
        return _logistic(self.slope[context] * log_odds(estimates) + self.intercept[context])

    def apply(self, estimates: np.ndarray, posterior: np.ndarray) -> np.ndarray:
        """The call's estimates mixed over contexts by ``posterior`` (over ``names``)."""
        return np.asarray(posterior, dtype=np.float64) @ self.per_context(estimates)
