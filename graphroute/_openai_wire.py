"""OpenAI chat-completion payloads for a scripted ``Reply``: one JSON answer or the stream's events.

Shared by the chat endpoint and the Batch API stand-in (whose output lines carry the same
completion body), so both speak exactly the wire format the real clients parse.
"""

from __future__ import annotations

import time
from typing import Any

from graphroute._scripted_replies import Reply


def chat_completion(body: dict[str, Any], reply: Reply, call_id: str) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": reply.content}
    if reply.tool_calls:
        message["tool_calls"] = reply.tool_calls
    return {
        "id": call_id,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body.get("model", "scripted"),
        "choices": [{"index": 0, "message": message, "finish_reason": "tool_calls" if reply.tool_calls else "stop"}],
        "usage": {
            "prompt_tokens": reply.prompt_tokens,
            "completion_tokens": reply.completion_tokens,
            "total_tokens": reply.prompt_tokens + reply.completion_tokens,
        },
    }


def chat_completion_chunks(body: dict[str, Any], reply: Reply, call_id: str) -> list[dict[str, Any]]:
    base = {
        "id": call_id,
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": body.get("model", "scripted"),
    }
    words = reply.content.split(" ")
    events = [
        {
            **base,
            "choices": [
                {
                    "index": 0,
                    "delta": {"role": "assistant", "content": word if i == 0 else " " + word},
                    "finish_reason": None,
                }
            ],
        }
        for i, word in enumerate(words)
    ]
    events.append({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    events.append(
        {
            **base,
            "choices": [],
            "usage": {
                "prompt_tokens": reply.prompt_tokens,
                "completion_tokens": reply.completion_tokens,
                "total_tokens": reply.prompt_tokens + reply.completion_tokens,
            },
        }
    )
    return events
