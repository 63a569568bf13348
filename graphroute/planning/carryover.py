"""What the verdicts on some calls of a run say about the run's next calls.

The calls of one run share a task: when a critic rejects an answer, the run has *learned* that
the answering model failed on a question of this task — and a model that fails one question of
a task is likelier to fail the next, as are the others. Per-question success estimates miss
most of that (on LLMRouter's data, after a model's failure the next question of the same task
is answered right about 0.4–0.7× as often as estimated; after a success, ~1.2–1.5×).

``Carryover`` measures those ratios on training data — tuples of different questions from the
same context (task), estimates cross-fitted as the planner's are — and applies them live::

    carry = Carryover.fit(estimates, outcomes, contexts)       # training split only
    plan = solve(workflow, demands, prices, lam=..., carryover=carry)
    # in Plan.decide: a rejected answer by model m scales the next estimates by carry.wrong[m]

``ratio(known)[m']`` = (Σ outcome of m' on the next question + α) / (Σ its estimate + α) over
tuples of questions from one context whose first questions had the ``known`` results; ``α``
shrinks thin cells towards 1 (no change). ``wrong`` and ``right`` are the one-result tables.

Several known results are measured *together*, never multiplied: a rejection says the answer
was wrong (a hard task?) and the critic right (an easy one?), and both speak of the same task.
On LLMRouter's data, after a cheap model's wrong answer caught by a cheap critic, the next
question is answered right 1.07× as often as estimated; the product of the two one-result
ratios says 0.73×.
Only the holistic plan uses it: it is what the run knows, which a call routed alone does not.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

PAIRS = 60_000
PRIOR_CALLS = 20.0
Known = tuple[tuple[int, bool], ...]


@dataclass(frozen=True)
class _Calls:
    """Training calls grouped by context, for drawing tuples of questions from one task."""

    estimates: np.ndarray  # [calls, models]
    right: np.ndarray  # bool [calls, models]
    known: np.ndarray  # bool [calls, models]: the outcome was measured
    members: tuple[np.ndarray, ...]  # call indices of each context

    def draw(self, size: int, count: int, rng: np.random.Generator) -> np.ndarray:
        """``count`` tuples of ``size`` different calls, each from one context (contexts weighted
        by their calls, as when a run's first question is drawn at random); ``[count, size]``."""
        groups = [m for m in self.members if len(m) >= size]
        if not groups:
            return np.zeros((0, size), dtype=np.int64)
        sizes = np.array([len(m) for m in groups], dtype=np.float64)
        group = rng.choice(len(groups), count, p=sizes / sizes.sum())
        picks = np.empty((count, size), dtype=np.int64)
        for g, members in enumerate(groups):
            rows = np.flatnonzero(group == g)
            picks[rows] = members[rng.integers(0, len(members), (len(rows), size))]
        ordered = np.sort(picks, axis=1)
        distinct = (np.diff(ordered, axis=1) != 0).all(axis=1)
        return picks[distinct]


@dataclass(frozen=True)
class Carryover:
    """Per observed (model, result): multipliers on every model's next estimate in the run;
    for several observed results, their joint multipliers (measured on first use, then kept)."""

    wrong: np.ndarray  # [observed model, next model]
    right: np.ndarray
    calls: _Calls | None = field(default=None, repr=False, compare=False)
    prior: float = PRIOR_CALLS
    draws: int = PAIRS
    seed: int = 0
    _joint: dict[Known, np.ndarray] = field(default_factory=dict, init=False, repr=False, compare=False)

    @classmethod
    def none(cls, models: int) -> Carryover:
        return cls(np.ones((models, models)), np.ones((models, models)))

    @classmethod
    def fit(
        cls,
        estimates: np.ndarray,
        outcomes: np.ndarray,
        contexts: Sequence[object] | np.ndarray,
        *,
        pairs: int = PAIRS,
        prior: float = PRIOR_CALLS,
        seed: int = 0,
    ) -> Carryover:
        """From training calls: estimates and 0/1 outcomes ``[calls, models]`` (NaN: unknown)."""
        estimates = np.asarray(estimates, dtype=np.float64)
        outcomes = np.asarray(outcomes, dtype=np.float64)
        labels = np.asarray(contexts).astype(str)
        members = tuple(np.flatnonzero(labels == label) for label in np.unique(labels))
        calls = _Calls(estimates, outcomes == 1.0, ~np.isnan(outcomes), members)
        tuples = calls.draw(2, pairs, np.random.default_rng(seed))
        first, second = tuples[:, 0], tuples[:, 1]
        ratios = []
        for result in (False, True):
            observed = (calls.right[first] == result) & calls.known[first]  # [pairs, observed model]
            ratios.append(cls._ratio(calls, observed.T.astype(np.float64), second, prior))
        return cls(wrong=ratios[0], right=ratios[1], calls=calls, prior=prior, draws=pairs, seed=seed)

    @staticmethod
    def _ratio(calls: _Calls, weights: np.ndarray, nxt: np.ndarray, prior: float) -> np.ndarray:
        """(hits + α) / (expected + α) of every model on the ``nxt`` calls, per row of ``weights``."""
        later = calls.known[nxt]
        hits = weights @ (calls.right[nxt] & later).astype(np.float64)
        expected = weights @ np.where(later, calls.estimates[nxt], 0.0)
        return (hits + prior) / (expected + prior)

    def ratio(self, known: Sequence[tuple[int, bool]]) -> np.ndarray:
        """Multipliers on the next call's estimates, given the run's known ``(model, right)`` results."""
        key: Known = tuple(sorted((int(m), bool(r)) for m, r in known))
        if not key:
            return np.ones(self.wrong.shape[1])
        if len(key) == 1:
            model, result = key[0]
            return (self.right if result else self.wrong)[model]
        if self.calls is None:  # built by hand, nothing to measure with: the results one by one
            return np.prod([(self.right if r else self.wrong)[m] for m, r in key], axis=0)
        cached = self._joint.get(key)
        if cached is None:
            rng = np.random.default_rng([self.seed, *(2 * m + r for m, r in key)])
            tuples = self.calls.draw(len(key) + 1, self.draws, rng)
            match = np.ones(len(tuples), dtype=bool)
            for column, (model, result) in enumerate(key):
                q = tuples[:, column]
                match &= self.calls.known[q, model] & (self.calls.right[q, model] == result)
            cached = self._joint[key] = self._ratio(
                self.calls, match.astype(np.float64)[None, :], tuples[:, -1], self.prior
            )[0]
        return cached

    def adjust(self, estimates: np.ndarray, known: Sequence[tuple[int, bool]]) -> np.ndarray:
        """The next call's estimates given the run's known results ``(model index, right)``."""
        if not known:
            return estimates
        return np.clip(estimates * self.ratio(known), 0.0, 1.0)
