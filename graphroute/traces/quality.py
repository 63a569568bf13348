"""Automatic quality signals, seen when a call finishes and stored beside it.

No one labels most calls, yet many failures are visible in the call itself: the provider
raised, the model refused, answered nothing, returned JSON that does not parse, or produced a
tool call whose arguments are broken. ``call_details`` turns one finished call into the extra
``CallRecord`` fields (fingerprint, texts, signals), so the router's write path stays one line::

    CallRecord(..., **call_details(request, message, error, redact=hide_keys))

Signals that need hindsight (a tool call that failed when run, a later node that failed) are
derived when reading, in ``graphroute.traces.outcomes``.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Sequence
from typing import Any, Literal

from langchain_core.messages import AIMessage, BaseMessage, ToolMessage

from graphroute.pillars.base import RouteRequest

QualitySignal = Literal[
    "error",  # the call raised (after retries and fallbacks)
    "refusal",  # the model declined to answer
    "empty",  # no text and no tool call
    "unparsable",  # JSON was asked for or started, and does not parse
    "tool_call_failure",  # a tool call with broken arguments, or one that failed when run
    "tool_error_input",  # this request carries a failed tool result (blames the call before it)
    "downstream_failure",  # a later part of the run failed (derived when reading)
]

HARD_FAILURES: frozenset[str] = frozenset({"error", "refusal", "empty", "unparsable", "tool_call_failure"})
"""Signals that make a call's automatic score 0: the answer is unusable whatever comes next."""

_REFUSAL = re.compile(
    r"^\W*(?:(?:i'?m|i am) sorry|sorry|unfortunately|apologies)?[,.!]?\s*(?:but\s+)?"
    r"(?:i|as an ai[^,.]*,\s*i)\s*(?:can ?not|can'?t|won'?t|am unable to|'?m unable to|am not able to|must decline)"
    r"\s+(?:help|assist|comply|provide|answer|do that|fulfil|fulfill|support|engage)",
    re.IGNORECASE,
)
_FENCE = re.compile(r"^```(?:json)?\s*(.*?)\s*```$", re.DOTALL | re.IGNORECASE)


def message_dicts(messages: Sequence[BaseMessage]) -> list[dict[str, str]]:
    """Messages as ``{role, content}`` dicts, the form preference data sets use."""
    roles = {"human": "user", "ai": "assistant", "system": "system", "tool": "tool"}
    return [{"role": roles.get(message.type, message.type), "content": text_of(message)} for message in messages]


def text_of(message: BaseMessage | None) -> str:
    """A message's text, whether its content is a string or a list of blocks."""
    if message is None:
        return ""
    content = message.content
    if isinstance(content, str):
        return content
    parts = [str(block.get("text", "")) if isinstance(block, dict) else str(block) for block in content]
    return "".join(parts)


def request_fingerprint(messages: Sequence[BaseMessage]) -> str:
    """The same request gets the same fingerprint whichever model answers it, in any run."""
    canonical = json.dumps(message_dicts(messages), ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def is_refusal(text: str) -> bool:
    return bool(_REFUSAL.search(text.strip()[:300]))


def _expects_json(messages: Sequence[BaseMessage], text: str) -> bool:
    stripped = text.lstrip()
    if stripped.startswith(("{", "[", "```json")):
        return True
    return any("json" in text_of(message).lower() for message in messages if message.type in ("system", "human"))


def parses_as_json(text: str) -> bool:
    """True when the text is JSON, possibly fenced or wrapped in a sentence."""
    stripped = text.strip()
    fenced = _FENCE.match(stripped)
    if fenced:
        stripped = fenced.group(1)
    candidates = [stripped]
    for opening, closing in (("{", "}"), ("[", "]")):
        start, end = stripped.find(opening), stripped.rfind(closing)
        if 0 <= start < end:
            candidates.append(stripped[start : end + 1])
    for candidate in candidates:
        try:
            json.loads(candidate)
        except ValueError:
            continue
        return True
    return False


def failed_tool_results(messages: Sequence[BaseMessage]) -> bool:
    """Does the newest batch of tool results (after the last AI message) contain an error?"""
    for message in reversed(messages):
        if isinstance(message, AIMessage):
            return False
        if isinstance(message, ToolMessage) and getattr(message, "status", "success") == "error":
            return True
    return False


def detect(messages: Sequence[BaseMessage], output: BaseMessage | None, error: BaseException | str | None) -> list[str]:
    """The automatic quality signals of one finished call, in a stable order."""
    signals: list[str] = []
    if error is not None:
        signals.append("error")
    if failed_tool_results(messages):
        signals.append("tool_error_input")
    if error is not None or output is None:
        return signals
    text = text_of(output)
    tool_calls = getattr(output, "tool_calls", None) or []
    invalid = getattr(output, "invalid_tool_calls", None) or []
    if invalid:
        signals.append("tool_call_failure")
    if not text.strip() and not tool_calls and not invalid:
        signals.append("empty")
    elif text.strip() and is_refusal(text):
        signals.append("refusal")
    elif text.strip() and not tool_calls and _expects_json(messages, text) and not parses_as_json(text):
        signals.append("unparsable")
    return signals


def call_details(
    request: RouteRequest | Sequence[BaseMessage],
    output: BaseMessage | None,
    error: BaseException | str | None = None,
    *,
    redact: Callable[[str], str] | None = None,
    keep_text: bool = True,
) -> dict[str, Any]:
    """The ``CallRecord`` fields ``request_hash``, ``prompt``, ``output`` and ``quality`` for one call.

    ``redact`` is applied to every stored text (pass the router's key scrubber); with
    ``keep_text=False`` only the fingerprint and the signals are kept.
    """
    messages = list(request.messages if isinstance(request, RouteRequest) else request)
    scrub = redact or (lambda text: text)
    details: dict[str, Any] = {
        "request_hash": request_fingerprint(messages),
        "quality": detect(messages, output, error),
        "prompt": None,
        "output": None,
    }
    if keep_text:
        details["prompt"] = scrub(json.dumps(message_dicts(messages), ensure_ascii=False))
        details["output"] = None if output is None else scrub(text_of(output))
    return details
