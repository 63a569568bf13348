"""Context windows: a prompt goes only to models whose window can hold it.

Why before sending rather than after a provider's 400: a too-long prompt fails the same way on
every retry and every equally small fallback, and a local server may silently truncate it
instead. Models whose window is too small are dropped from a call's candidates; when that
leaves none, the cheapest pool model that fits (and is allowed: local only for a private
call) serves it, and the trace says so; when no model fits, ``ContextWindowError`` names the
call, the prompt's estimate and the largest window.

The estimate is deliberately cheap and tokenizer-free (the pool's models do not share one
tokenizer, so no single exact count exists): a word piece of up to 8 ASCII letters, up to 3
digits, a punctuation mark or a line break is a token; a CJK, kana or hangul character is
~1.1 tokens; any other non-ASCII character (Cyrillic, Arabic, accented letters) ~0.65. Against
cl100k_base it lands within ~±30 % for English, Chinese, Japanese, Korean, Russian and code,
where a plain four-characters-a-token rule was 2–5× short for non-Latin scripts and let such
prompts through to models too small for them. A model close to the limit may still be refused
upstream.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

from graphroute.config import ModelSpec
from graphroute.errors import ContextWindowError
from graphroute.pillars.base import RouteRequest
from graphroute.providers.pool import ModelPool

_PIECES = re.compile(r"[A-Za-z]{1,8}|\d{1,3}|[^\x00-\x7f]|[^\sA-Za-z\d]|\n")
WIDE_TOKENS = 1.1  # per CJK / kana / hangul character
OTHER_TOKENS = 0.65  # per other non-ASCII character
MOST_TOKENS_PER_CHARACTER = max(1.0, WIDE_TOKENS)


def _wide(character: str) -> bool:
    point = ord(character)
    return 0x2E80 <= point <= 0xD7FF or 0xF900 <= point <= 0xFFEF


def estimate_tokens(text: str) -> int:
    """Tokens in ``text``, estimated from its pieces (see the module docstring)."""
    ascii_pieces = wide = other = 0
    for piece in _PIECES.findall(text):
        if ord(piece[0]) <= 0x7F:
            ascii_pieces += 1
        elif _wide(piece):
            wide += 1
        else:
            other += 1
    return max(1, math.ceil(ascii_pieces + WIDE_TOKENS * wide + OTHER_TOKENS * other))


def prompt_tokens(request: RouteRequest) -> int:
    """The prompt's size in tokens, estimated from its text."""
    return estimate_tokens(request.text)


@dataclass(frozen=True)
class Fit:
    """The candidates that can hold the prompt, and a note for the trace when some could not."""

    models: list[str]
    note: str = ""


def fit_to_window(request: RouteRequest, models: Sequence[str], pool: ModelPool, *, local_only: bool = False) -> Fit:
    """``models`` minus those too small for the prompt; a bigger pool model if none is left."""
    upper_bound = math.ceil(MOST_TOKENS_PER_CHARACTER * len(request.text)) + 1
    if all(pool[model].context_window >= upper_bound for model in models):
        return Fit(list(models))  # fits whatever the text is made of: no need to count
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
