"""What a verdict on one call of a run says about the run's next calls.

The calls of one run share a task: when a critic rejects an answer, the run has *learned* that
the answering model failed on a question of this task — and a model that fails one question of
a task is likelier to fail the next, as are the others. Per-question success estimates miss
most of that (on LLMRouter's data, after a model's failure the next question of the same task
is answered right about 0.4–0.7× as often as estimated; after a success, ~1.2–1.5×).

``Carryover`` measures those ratios on training data — pairs of different questions from the
same context (task), estimates cross-fitted as the planner's are — and applies them live::

    carry = Carryover.fit(estimates, outcomes, contexts)       # training split only
    plan = solve(workflow, demands, prices, lam=..., carryover=carry)
    # in Plan.decide: a rejected answer by model m scales the next estimates by carry.wrong[m]

``ratio[r][m, m']`` = (Σ outcome of m' on q₂ + α) / (Σ estimate of m' on q₂ + α) over pairs whose
first question m answered with result ``r``; ``α`` shrinks thin cells towards 1 (no change).
Only the holistic plan uses it: it is what the run knows, which a call routed alone does not.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

PAIRS = 60_000
PRIOR_CALLS = 20.0


@dataclass(frozen=True)
class Carryover:
    """Per observed (model, result): multipliers on every model's next estimate in the run."""

    wrong: np.ndarray  # [observed model, next model]
    right: np.ndarray

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
        right = np.asarray(outcomes, dtype=np.float64) == 1.0
        known = ~np.isnan(np.asarray(outcomes, dtype=np.float64))
        labels = np.asarray(contexts).astype(str)
        rng = np.random.default_rng(seed)
        first = rng.integers(0, len(labels), pairs)
        groups = {label: np.flatnonzero(labels == label) for label in np.unique(labels)}
        second = np.empty_like(first)
        for label, members in groups.items():
            mine = labels[first] == label
            second[mine] = members[rng.integers(0, len(members), int(mine.sum()))]
        keep = first != second
        first, second = first[keep], second[keep]
        ratios = []
        for result in (False, True):
            observed = (right[first] == result) & known[first]  # [pairs, observed model]
            later = known[second]
            hits = observed.T.astype(np.float64) @ (right[second] & later).astype(np.float64)
            expected = observed.T.astype(np.float64) @ np.where(later, estimates[second], 0.0)
            ratios.append((hits + prior) / (expected + prior))
        return cls(wrong=ratios[0], right=ratios[1])

    def adjust(self, estimates: np.ndarray, known: Sequence[tuple[int, bool]]) -> np.ndarray:
        """The next call's estimates given the run's known results ``(model index, right)``."""
        if not known:
            return estimates
        factor = np.ones(len(estimates))
        for model, result in known:
            factor = factor * (self.right if result else self.wrong)[model]
        return np.clip(estimates * factor, 0.0, 1.0)
