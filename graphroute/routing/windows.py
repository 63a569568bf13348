"""Context windows: a prompt goes only to models whose window can hold it.

Why before sending rather than after a provider's 400: a too-long prompt fails the same way on
every retry and every equally small fallback, and a local server may silently truncate it
instead. Models whose window is too small are dropped from a call's candidates; when that
leaves none, the cheapest pool model that fits (and is allowed: local only for a private
call) serves it, and the trace says so; when no model fits, ``ContextWindowError`` names the
call, the prompt's estimate and the largest window.

The estimate is deliberately simple and cheap: about four characters a token (English prose;
code and digits run shorter, so a model close to the limit may still be refused upstream).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from graphroute.config import ModelSpec
from graphroute.errors import ContextWindowError
from graphroute.pillars.base import RouteRequest
from graphroute.providers.pool import ModelPool

CHARS_PER_TOKEN = 4


def prompt_tokens(request: RouteRequest) -> int:
    """The prompt's size in tokens, estimated from its characters."""
    return max(1, math.ceil(len(request.text) / CHARS_PER_TOKEN))


@dataclass(frozen=True)
class Fit:
    """The candidates that can hold the prompt, and a note for the trace when some could not."""

    models: list[str]
    note: str = ""


def fit_to_window(request: RouteRequest, models: Sequence[str], pool: ModelPool, *, local_only: bool = False) -> Fit:
    """``models`` minus those too small for the prompt; a bigger pool model if none is left."""
    tokens = prompt_tokens(request)
    fitting = [model for model in models if pool[model].context_window >= tokens]
    if len(fitting) == len(models):
        return Fit(list(models))
    dropped = [f"{model} ({pool[model].context_window})" for model in models if model not in fitting]
    note = f"prompt ~{tokens} tokens is too long for {', '.join(dropped)}"
    if fitting:
        return Fit(fitting, note)
    allowed: list[ModelSpec] = pool.local() if local_only else list(pool)
    bigger = sorted(
        (spec for spec in allowed if spec.context_window >= tokens), key=lambda s: s.input_price + s.output_price
    )
    if bigger:
        return Fit([spec.name for spec in bigger], f"{note}; using {bigger[0].name} ({bigger[0].context_window})")
    largest = max(allowed, key=lambda spec: spec.context_window)
    where = f"node {request.node!r}" if request.node else "this call"
    scope = "local model" if local_only else "pool model"
    raise ContextWindowError(
        f"the prompt of {where} is ~{tokens} tokens, more than the context window of every {scope}: "
        f"the largest is {largest.name!r} with {largest.context_window}; shorten the prompt (e.g. trim the "
        f"history) or add a model with a larger context_window to the pool",
        tokens=tokens,
        largest_window=largest.context_window,
        node=request.node,
    )
