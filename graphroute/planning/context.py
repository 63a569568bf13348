"""Which kind of run this is, inferred from the success estimates of the calls it has made.

Calls of one run are not independent: a run about a hard task makes every step hard. The
plan's expectations for the calls still to come ("will the critic catch it?", "will the last
step succeed?") are therefore kept per *context* — a kind of task, such as a data set's task
cluster — and mixed by the posterior of the run's context given what its calls looked like.

The posterior is a naive-Bayes combination of per-call evidence; each call's evidence is the
context mix among its nearest training calls in the space of per-model success estimates
(the semantic pillar's output), so nothing beyond what the router already computes is needed.
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
