"""Failures a run sees live, and how they steer its next calls.

A per-call router sends the next call of a node to the model that just failed it, because it
remembers nothing; a run does remember. Two kinds of failure are visible without any feedback:

- ``"answer"``: the run itself saw a model's answer fail — the tool call it made came back as
  an error (a ``ToolMessage`` with ``status="error"``: broken arguments, or a tool that raised
  on them), or the model refused. The node's next calls in this run *escalate*: they go only
  to models pricier than every model that failed the node so far (the next rungs of its
  ladder), the plan choosing among them as usual; when the priciest model failed, it is tried
  again rather than falling back to one that is weaker still.
- ``"provider"``: the model's provider failed (an error, a timeout, an open circuit). That says
  nothing about the task, so the model is only avoided for the rest of the run, on every node
  (its calls' fallbacks already answered the failed call).

The budget still rules: the pacer's guard may send a call to a model the run would rather avoid
when nothing else fits what is left of the run's budget. What a failure says about the run's
*other* calls (a model that failed one question of a task is likelier to fail the next) is the
plan's ``Carryover`` business: an answer failure counts there as a known wrong result.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

FailureKind = Literal["answer", "provider"]
ANSWER: FailureKind = "answer"
PROVIDER: FailureKind = "provider"


@dataclass(frozen=True)
class RunFailure:
    """One failed call of a run: its node, the node's call number (from 0), the model's pool index."""

    node: str
    call: int
    model: int
    kind: FailureKind


def allowed_models(node: str, failures: Sequence[RunFailure], costs: np.ndarray) -> np.ndarray | None:
    """Which models the next call of ``node`` may use, as a mask over ``costs``; ``None``: any."""
    if not failures:
        return None
    healthy = np.ones(len(costs), dtype=bool)
    for failure in failures:
        if failure.kind == PROVIDER:
            healthy[failure.model] = False
    failed_here = [failure.model for failure in failures if failure.kind == ANSWER and failure.node == node]
    if failed_here:
        floor = max(float(costs[model]) for model in failed_here)
        for candidates in (healthy & (costs > floor), healthy & (costs >= floor)):
            if candidates.any():
                return candidates
    if healthy.any() and not healthy.all():
        return healthy
    return None
