"""Run contexts learnt from the outcomes of traced runs, where no call is labelled with its kind of task.

The plan's run contexts (``context.py``) need each sample call's kind of task. Outcome data may
carry one (a data set's task cluster); traces never do. What traces do carry is which calls
shared a run and, where feedback scored them, how each went. Calls of one run are about one
task, so they tend to fail together: a run whose calls every model got wrong is a different
kind of run from one where only the small models failed.

``LatentContexts`` fits that as a latent-class model: every run belongs to one of K contexts,
and given its context each call's 0/1 outcome on each model is an independent coin with the
context's own success rate for that model. EM fits the rates and the contexts' shares; K is
chosen by BIC (the run count being the sample size), so data with no such structure gets one
context and the plan is what it would be without. A (call, model) pair nobody measured is
NaN and simply left out, so traces, which know one model's outcome per call, fit the same way
as an outcome table that knows every model's.

Why not cluster the calls' text or estimates instead: on LLMRouter's data the task clusters
are defined by how the models did, and k-means on the questions' embeddings or estimates finds
other groups that route dearer than no contexts at all (benchmarks/RESULTS.md). Pooling a
run's outcomes recovers the clusters (three contexts on the whole file: adjusted Rand index
0.82 with runs of 4 calls, 0.93 with 8), where one question's outcomes alone do not (0.46).

Usage::

    latent = LatentContexts.fit(outcomes, run_ids)        # [calls, models] 0/1/NaN, one id per call
    labels = latent.label_calls(outcomes, run_ids)         # each call's run's likely context
    NodeDemand(..., contexts=labels)                       # and ContextCalibration.fit(..., labels)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from graphroute.errors import ConfigError

MAX_CONTEXTS = 6
RESTARTS = 4
ITERATIONS = 300
TOLERANCE = 1e-7
# Success rates are kept inside (0, 1) by one pseudo-observation each way (a context whose runs
# all failed on a model must not make a later success impossible).
PSEUDO = 1.0


@dataclass(frozen=True)
class LatentContexts:
    """Per context its share of runs and each model's success rate; how well they fit the runs."""

    prior: np.ndarray  # [contexts]
    success: np.ndarray  # [contexts, models]
    log_likelihood: float
    runs: int

    @property
    def names(self) -> tuple[str, ...]:
        """Context names, as ``ContextModel`` and ``ContextCalibration`` receive them as labels."""
        return tuple(f"latent-{c}" for c in range(len(self.prior)))

    def __len__(self) -> int:
        return len(self.prior)

    @property
    def parameters(self) -> int:
        return self.success.size + len(self.prior) - 1

    @property
    def bic(self) -> float:
        """Bayesian information criterion (lower is better); the sample size is the run count."""
        return -2.0 * self.log_likelihood + self.parameters * float(np.log(max(self.runs, 1)))

    @classmethod
    def fit(
        cls,
        outcomes: np.ndarray,
        runs: Sequence[object] | np.ndarray,
        *,
        contexts: int | None = None,
        max_contexts: int = MAX_CONTEXTS,
        restarts: int = RESTARTS,
        seed: int = 0,
    ) -> LatentContexts:
        """From calls' 0/1 outcomes ``[calls, models]`` (NaN: not measured) and each call's run id.

        ``contexts``: fit exactly that many; by default the count from 1 to ``max_contexts``
        with the lowest BIC. Each count is fitted from ``restarts`` random starts and the best
        likelihood kept.
        """
        y, known, run_index, run_count = _prepared(outcomes, runs)
        if contexts is not None and contexts < 1:
            raise ConfigError(f"latent contexts: need at least 1 context, got {contexts}")
        if max_contexts < 1:
            raise ConfigError(f"latent contexts: max_contexts must be at least 1, got {max_contexts}")
        counts = [contexts] if contexts is not None else list(range(1, max_contexts + 1))
        rng = np.random.default_rng(seed)
        best: LatentContexts | None = None
        for k in counts:
            fitted = max(
                (_em(y, known, run_index, run_count, k, rng) for _ in range(1 if k == 1 else max(restarts, 1))),
                key=lambda model: model.log_likelihood,
            )
            if best is None or (contexts is not None or fitted.bic < best.bic):
                best = fitted
        assert best is not None
        return best

    def run_posterior(self, outcomes: np.ndarray, runs: Sequence[object] | np.ndarray) -> dict[object, np.ndarray]:
        """P(context | the run's outcomes), per run id."""
        y, known, run_index, run_count = _prepared(outcomes, runs, models=self.success.shape[1])
        joint = _run_log_joint(y, known, run_index, run_count, self.prior, self.success)
        posterior = np.exp(joint - joint.max(axis=1, keepdims=True))
        posterior /= posterior.sum(axis=1, keepdims=True)
        ids = list(dict.fromkeys(_as_ids(runs)))
        return {run: posterior[i] for i, run in enumerate(ids)}

    def label_calls(self, outcomes: np.ndarray, runs: Sequence[object] | np.ndarray) -> np.ndarray:
        """Each call's label: the name of its run's most likely context."""
        posterior = self.run_posterior(outcomes, runs)
        names = self.names
        return np.array([names[int(np.argmax(posterior[run]))] for run in _as_ids(runs)])


def _as_ids(runs: Sequence[object] | np.ndarray) -> list[object]:
    return [run.item() if isinstance(run, np.generic) else run for run in runs]


def _prepared(
    outcomes: np.ndarray, runs: Sequence[object] | np.ndarray, *, models: int | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Outcomes as 0/1 with a mask of what was measured, and each call's run as 0..runs-1 (first seen order)."""
    outcomes = np.asarray(outcomes, dtype=np.float64)
    ids = _as_ids(runs)
    if outcomes.ndim != 2:
        raise ConfigError(f"latent contexts: outcomes must be [calls, models], got shape {outcomes.shape}")
    if len(ids) != outcomes.shape[0]:
        raise ConfigError(f"latent contexts: {outcomes.shape[0]} calls' outcomes but {len(ids)} run ids")
    if models is not None and outcomes.shape[1] != models:
        raise ConfigError(f"latent contexts: fitted on {models} models, got outcomes for {outcomes.shape[1]}")
    known = ~np.isnan(outcomes)
    if np.any((outcomes[known] != 0.0) & (outcomes[known] != 1.0)):
        raise ConfigError("latent contexts: outcomes must be 0, 1 or NaN (not measured)")
    order = {run: i for i, run in enumerate(dict.fromkeys(ids))}
    run_index = np.array([order[run] for run in ids], dtype=np.int64)
    return np.where(known, outcomes, 0.0), known, run_index, len(order)


def _run_log_joint(
    y: np.ndarray, known: np.ndarray, run_index: np.ndarray, run_count: int, prior: np.ndarray, success: np.ndarray
) -> np.ndarray:
    """``[runs, contexts]``: log P(context) + log P(the run's outcomes | context)."""
    log_right, log_wrong = np.log(success), np.log1p(-success)
    per_call = (y * known) @ log_right.T + ((1.0 - y) * known) @ log_wrong.T  # [calls, contexts]
    joint = np.zeros((run_count, len(prior)))
    np.add.at(joint, run_index, per_call)
    return joint + np.log(np.maximum(prior, 1e-300))


def _em(
    y: np.ndarray, known: np.ndarray, run_index: np.ndarray, run_count: int, k: int, rng: np.random.Generator
) -> LatentContexts:
    models = y.shape[1]
    prior = np.full(k, 1.0 / k)
    success = rng.uniform(0.2, 0.8, size=(k, models)) if k > 1 else np.full((1, models), 0.5)
    right, measured = y * known, known.astype(np.float64)
    previous = -np.inf
    log_likelihood = -np.inf
    for _ in range(ITERATIONS):
        joint = _run_log_joint(y, known, run_index, run_count, prior, success)
        top = joint.max(axis=1, keepdims=True)
        log_likelihood = float((top[:, 0] + np.log(np.exp(joint - top).sum(axis=1))).sum())
        responsibility = np.exp(joint - top)
        responsibility /= responsibility.sum(axis=1, keepdims=True)
        per_call = responsibility[run_index]  # [calls, contexts]
        prior = responsibility.mean(axis=0)
        success = (per_call.T @ right + PSEUDO) / (per_call.T @ measured + 2.0 * PSEUDO)
        if log_likelihood - previous < TOLERANCE * max(abs(log_likelihood), 1.0):
            break
        previous = log_likelihood
    # The likelihood of the returned parameters (one more E-step's worth): BIC compares counts on it.
    joint = _run_log_joint(y, known, run_index, run_count, prior, success)
    top = joint.max(axis=1, keepdims=True)
    log_likelihood = float((top[:, 0] + np.log(np.exp(joint - top).sum(axis=1))).sum())
    order = np.argsort(-prior, kind="stable")  # largest context first: names stable across restarts
    return LatentContexts(prior[order], success[order], log_likelihood, run_count)
