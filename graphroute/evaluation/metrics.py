"""RouteLLM's routing metrics, reimplemented: quality-vs-cost curve, APGR and CPT(p).

Mirrors ``routellm/evals/benchmarks.py`` and ``evaluate.py`` (commit 0b64fdaf) so figures
compare with the published ones:

- thresholds are the 11 decile edges of the router scores (``pandas.qcut(s, 10,
  retbins=True)``, i.e. linear-interpolated quantiles); at every edge but the last a prompt
  goes to the strong model when ``s >= edge``, at the last edge only when ``s > edge``
  (nothing), giving points from ~100 % to 0 % strong calls;
- APGR: trapezoid area of quality over strong fraction, minus the weak model's area,
  divided by the strong-minus-weak area;
- CPT(p): strong-call share at which quality reaches ``weak + p·(strong − weak)``.
  RouteLLM calls ``np.interp(target, quality, strong%)``, which assumes quality rises with
  strong share; we take the first crossing along rising strong share, which is the same
  number on a monotone curve and still well defined on a bumpy one.

The per-question oracle follows RouteLLM's ``get_optimal_accuracy`` on the strong-share
grid 0, 10, …, 100 %; the random router is uniform scores, averaged over seeds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

CPT_LEVELS = (0.2, 0.5, 0.8)


@dataclass(frozen=True)
class RoutingCurve:
    """Points (strong fraction, quality), sorted by strong fraction, and the two baselines."""

    strong_fraction: np.ndarray
    quality: np.ndarray
    weak: float
    strong: float

    def apgr(self) -> float:
        """Average performance gap recovered (RouteLLM's APGR)."""
        x, y = self.strong_fraction, self.quality
        span = float(x[-1] - x[0])
        area = float(np.trapezoid(y, x))
        weak_area, strong_area = self.weak * span, self.strong * span
        return (area - weak_area) / (strong_area - weak_area)

    def cpt(self, level: float) -> float:
        """Strong-call fraction needed to recover ``level`` of the weak→strong quality gap."""
        target = self.weak + level * (self.strong - self.weak)
        x, y = self.strong_fraction, self.quality
        if y[0] >= target:
            return float(x[0])
        for i in range(1, len(x)):
            if y[i] >= target:
                rise = y[i] - y[i - 1]
                return float(x[i - 1] + (x[i] - x[i - 1]) * (target - y[i - 1]) / rise)
        return float(x[-1])

    def summary(self) -> dict[str, float]:
        """``{"apgr", "cpt20", "cpt50", "cpt80"}``; CPT in percent of calls, as RouteLLM prints it."""
        out = {"apgr": self.apgr()}
        out.update({f"cpt{round(level * 100)}": 100.0 * self.cpt(level) for level in CPT_LEVELS})
        return out


def _baselines(weak_correct: np.ndarray, strong_correct: np.ndarray) -> tuple[np.ndarray, np.ndarray, float, float]:
    weak_correct = np.asarray(weak_correct, dtype=np.float64)
    strong_correct = np.asarray(strong_correct, dtype=np.float64)
    if weak_correct.shape != strong_correct.shape or weak_correct.ndim != 1:
        raise ValueError("weak and strong outcomes must be 1-d arrays of the same length")
    return weak_correct, strong_correct, float(weak_correct.mean()), float(strong_correct.mean())


def routing_curve(
    scores: Sequence[float] | np.ndarray, weak_correct: np.ndarray, strong_correct: np.ndarray, *, bins: int = 10
) -> RoutingCurve:
    """RouteLLM's threshold sweep for one router's scores (higher = send to strong)."""
    weak_correct, strong_correct, weak, strong = _baselines(weak_correct, strong_correct)
    scores = np.asarray(scores, dtype=np.float64)
    if scores.shape != weak_correct.shape:
        raise ValueError(f"{len(scores)} scores for {len(weak_correct)} outcomes")
    edges = np.quantile(scores, np.linspace(0.0, 1.0, bins + 1))
    fractions, qualities = [], []
    for i, edge in enumerate(edges):
        to_strong = scores >= edge if i < len(edges) - 1 else scores > edge
        fractions.append(to_strong.mean())
        qualities.append(np.where(to_strong, strong_correct, weak_correct).mean())
    order = np.argsort(fractions, kind="stable")
    return RoutingCurve(np.asarray(fractions)[order], np.asarray(qualities)[order], weak, strong)


def oracle_curve(weak_correct: np.ndarray, strong_correct: np.ndarray, *, steps: int = 10) -> RoutingCurve:
    """Best possible router: spends strong calls only where the weak model fails and the strong one succeeds."""
    weak_correct, strong_correct, weak, strong = _baselines(weak_correct, strong_correct)
    gain = float(((weak_correct == 0) & (strong_correct == 1)).mean())
    fractions = np.linspace(0.0, 1.0, steps + 1)
    return RoutingCurve(fractions, weak + np.minimum(fractions, gain), weak, strong)


def random_summary(
    weak_correct: np.ndarray, strong_correct: np.ndarray, *, seeds: int = 10, bins: int = 10
) -> dict[str, float]:
    """Metrics of uniform random scores, averaged over ``seeds`` seeds (0 … seeds−1)."""
    summaries = []
    for seed in range(seeds):
        scores = np.random.default_rng(seed).random(len(weak_correct))
        summaries.append(routing_curve(scores, weak_correct, strong_correct, bins=bins).summary())
    return {key: float(np.mean([s[key] for s in summaries])) for key in summaries[0]}


def group_folds(prompts: Sequence[str], folds: int = 5, *, seed: int = 0) -> np.ndarray:
    """Fold id per row, with identical prompts always in the same fold (CV by question)."""
    unique = sorted(set(prompts))
    order = np.random.default_rng(seed).permutation(len(unique))
    fold_of = {unique[j]: rank % folds for rank, j in enumerate(order)}
    return np.array([fold_of[p] for p in prompts], dtype=int)
