"""Tool calls a small local model wrote as text, turned back into real tool calls.

Small local models (Qwen2.5 0.5B on llama.cpp) often answer a tools request with the call as
plain JSON rather than in the provider's tool-call format; LangChain then sees text. This is
the provider-side repair, used by ``RoutedChatModel`` for whole answers and streams alike.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping
from typing import Any

from langchain_core.messages import AIMessage, AIMessageChunk, ToolCall, ToolCallChunk

_FENCE = re.compile(r"^```(?:json)?\s*(.*?)\s*(?:```)?$", re.DOTALL)  # closing fence may be cut off


def recover_tool_calls(message: AIMessage, kwargs: Mapping[str, Any]) -> list[ToolCall]:
    """Tool calls a model wrote as plain JSON text instead of the provider's tool-call format.

    Small local models (Qwen2.5 0.5B on llama.cpp) answer a tools request with
    ``{"name": "multiply", "arguments": {...}}`` but without the ``<tool_call>`` tags the server
    parses, so the call arrives as text. Only an answer that is nothing but such JSON, naming
    bound tools, is converted; anything else is left alone.
    """
    tools = kwargs.get("tools") or ()
    if not tools or message.tool_calls or not isinstance(message.content, str):
        return []
    text = message.content.strip()
    text = fenced.group(1) if (fenced := _FENCE.match(text)) else text
    try:
        data, end = json.JSONDecoder().raw_decode(text)
    except ValueError:
        return []
    # A forced call may trail junk after the JSON (a llama.cpp grammar quirk); otherwise it must be all.
    if text[end:].strip() and kwargs.get("tool_choice") in (None, "auto", "none"):
        return []
    names = {tool.get("function", {}).get("name") for tool in tools}
    calls: list[ToolCall] = []
    for item in data if isinstance(data, list) else [data]:
        args = item.get("arguments", item.get("parameters")) if isinstance(item, dict) else None
        if not isinstance(item, dict) or item.get("name") not in names or not isinstance(args, dict):
            return []
        calls.append(ToolCall(name=item["name"], args=args, id=f"call_{uuid.uuid4().hex[:24]}", type="tool_call"))
    return calls


class ToolCallRecovery:
    """Streaming twin of ``recover_tool_calls``: holds back text that may be a tool call.

    Text is passed on as soon as it cannot be JSON (so ordinary answers still stream); what
    could be a call is held until the end and then sent as one tool-call chunk, or as it came.
    """

    def __init__(self, kwargs: Mapping[str, Any]) -> None:
        self.kwargs = kwargs
        self.holding = bool(kwargs.get("tools"))
        self.held: list[AIMessageChunk] = []

    def feed(self, chunk: AIMessageChunk) -> list[AIMessageChunk]:
        if not self.holding:
            return [chunk]
        self.held.append(chunk)
        text = "".join(c.content for c in self.held if isinstance(c.content, str)).lstrip()
        if chunk.tool_call_chunks or (text and not text.startswith(("{", "[", "`"))):
            self.holding = False
            held, self.held = self.held, []
            return held
        return []

    def close(self) -> list[AIMessageChunk]:
        if not self.held:
            return []
        total = self.held[0]
        for chunk in self.held[1:]:
            total = total + chunk
        calls = recover_tool_calls(AIMessage(content=total.content), self.kwargs)
        if not calls:
            return self.held
        return [
            AIMessageChunk(
                content="",
                id=total.id,
                tool_call_chunks=[_call_chunk(call, index) for index, call in enumerate(calls)],
                response_metadata={**total.response_metadata, "finish_reason": "tool_calls"},
                usage_metadata=total.usage_metadata,
                chunk_position="last",
            )
        ]


def _call_chunk(call: ToolCall, index: int) -> ToolCallChunk:
    return ToolCallChunk(name=call["name"], args=json.dumps(call["args"]), id=call["id"], index=index)
