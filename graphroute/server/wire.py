"""OpenAI's chat-completions wire format ↔ LangChain messages; no web framework in here.

Kept apart from the app so the translation can be read (and tested) on its own: the request
body becomes LangChain messages and call kwargs, an answer becomes a ``chat.completion`` or a
sequence of ``chat.completion.chunk`` objects, and every error becomes OpenAI's error shape.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, ToolCall, convert_to_messages
from pydantic import BaseModel, ConfigDict, Field

from graphroute.server.validation import (
    RequestError,
    check_message,
    check_response_format,
    check_tools,
)


class ChatCompletionRequest(BaseModel):
    """The fields of ``POST /v1/chat/completions`` the router reads; other OpenAI fields are ignored."""

    model_config = ConfigDict(extra="allow")

    model: str = Field(min_length=1)
    messages: list[dict[str, Any]] = Field(min_length=1)
    stream: bool = False
    stream_options: dict[str, Any] | None = None
    temperature: float | None = Field(None, ge=0, le=2)
    max_tokens: int | None = Field(None, gt=0)
    max_completion_tokens: int | None = Field(None, gt=0)
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    response_format: dict[str, Any] | None = None
    stop: str | list[str] | None = None
    n: int | None = Field(None, ge=1, le=1, description="one choice per request")

    @property
    def output_limit(self) -> int | None:
        return self.max_completion_tokens or self.max_tokens

    @property
    def stop_words(self) -> list[str] | None:
        return [self.stop] if isinstance(self.stop, str) else self.stop

    @property
    def include_usage(self) -> bool:
        return bool((self.stream_options or {}).get("include_usage"))

    def check(self) -> None:
        """What the types cannot say: message shapes, tools, response format (``RequestError``)."""
        for index, item in enumerate(self.messages):
            check_message(index, item)
        check_tools(self.tools or [])
        if self.response_format is not None:
            check_response_format(self.response_format)

    def call_kwargs(self) -> dict[str, Any]:
        """Tools, tool choice and response format, forwarded as they came (OpenAI format)."""
        kwargs: dict[str, Any] = {}
        if self.tools:
            kwargs["tools"] = self.tools
            if self.tool_choice is not None:
                kwargs["tool_choice"] = self.tool_choice
        if self.response_format and self.response_format.get("type") != "text":
            kwargs["response_format"] = self.response_format
        return kwargs


def to_messages(raw: list[dict[str, Any]]) -> list[BaseMessage]:
    """OpenAI message dicts → LangChain messages; ``RequestError`` names the bad message."""
    messages: list[BaseMessage] = []
    for index, item in enumerate(raw):
        check_message(index, item)
        try:
            [message] = convert_to_messages([{**item, "content": item.get("content") or ""}])
        except Exception as error:  # any shape LangChain cannot read is the client's mistake, not a 500
            first_line = str(error).splitlines()[0] if str(error) else type(error).__name__
            raise RequestError(
                f"messages[{index}] is not a valid chat message: {first_line}", param=f"messages.{index}"
            ) from None
        messages.append(message)
    return messages


def text_of(content: Any) -> str:
    """Message content as text (list content: its text parts joined)."""
    if isinstance(content, str):
        return content
    parts = [part if isinstance(part, str) else part.get("text", "") for part in content or []]
    return "".join(part for part in parts if isinstance(part, str))


def usage_of(message: AIMessage | None) -> dict[str, int] | None:
    usage = getattr(message, "usage_metadata", None)
    if not usage:
        return None
    return {
        "prompt_tokens": int(usage.get("input_tokens", 0)),
        "completion_tokens": int(usage.get("output_tokens", 0)),
        "total_tokens": int(usage.get("total_tokens", 0)),
    }


def new_id() -> str:
    return f"chatcmpl-{uuid.uuid4().hex}"


def graphroute_field(message: AIMessage | AIMessageChunk, requested: str) -> dict[str, Any]:
    """The body field saying which pool model answered, for which requested name, and why."""
    metadata = message.response_metadata
    model, reason = metadata.get("graphroute_model"), metadata.get("graphroute_reason")
    return {"model": model, "requested": requested, "reason": reason}


def _tool_call(call: ToolCall) -> dict[str, Any]:
    function = {"name": call["name"], "arguments": json.dumps(call["args"])}
    return {"id": call["id"], "type": "function", "function": function}


def completion(message: AIMessage, requested: str) -> dict[str, Any]:
    """A whole answer as a ``chat.completion`` object; ``model`` is the pool model that answered."""
    tool_calls = [_tool_call(call) for call in message.tool_calls]
    body: dict[str, Any] = {"role": "assistant", "content": text_of(message.content) or None}
    if tool_calls:
        body["tool_calls"] = tool_calls
    finish = message.response_metadata.get("finish_reason") or ("tool_calls" if tool_calls else "stop")
    return {
        "id": new_id(),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": message.response_metadata.get("graphroute_model") or requested,
        "choices": [{"index": 0, "message": body, "finish_reason": finish, "logprobs": None}],
        "usage": usage_of(message) or {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
        "system_fingerprint": None,
        "graphroute": graphroute_field(message, requested),
    }


class ChunkWriter:
    """Turns LangChain chunks into ``chat.completion.chunk`` SSE events for one response."""

    def __init__(self, requested: str, model: str, include_usage: bool) -> None:
        self.id = new_id()
        self.created = int(time.time())
        self.requested = requested
        self.model = model
        self.include_usage = include_usage
        self.total: AIMessageChunk | None = None
        self.finish_reason: str | None = None
        self.sent_tool_calls = False

    def _event(self, choices: list[dict[str, Any]], **extra: Any) -> str:
        body = {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": choices,
            "system_fingerprint": None,
            **extra,
        }
        return f"data: {json.dumps(body)}\n\n"

    def chunk(self, message: AIMessageChunk) -> str | None:
        """One delta event, or ``None`` when the chunk carries nothing a client reads."""
        first = self.total is None
        self.total = message if self.total is None else self.total + message
        self.finish_reason = message.response_metadata.get("finish_reason") or self.finish_reason
        delta: dict[str, Any] = {"role": "assistant"} if first else {}
        if text := text_of(message.content):
            delta["content"] = text
        calls = []
        for call in message.tool_call_chunks:
            entry: dict[str, Any] = {"index": call.get("index") or 0, "function": {"arguments": call.get("args") or ""}}
            if call.get("id"):
                entry["id"], entry["type"] = call["id"], "function"
            if call.get("name"):
                entry["function"]["name"] = call["name"]
            calls.append(entry)
        if calls:
            delta["tool_calls"] = calls
            self.sent_tool_calls = True
        if not delta:
            return None
        extra = {"graphroute": graphroute_field(message, self.requested)} if first else {}
        return self._event([{"index": 0, "delta": delta, "finish_reason": None, "logprobs": None}], **extra)

    def end(self) -> list[str]:
        """The closing events: the finish reason, the usage if asked for, and ``[DONE]``."""
        finish = self.finish_reason or ("tool_calls" if self.sent_tool_calls else "stop")
        events = [self._event([{"index": 0, "delta": {}, "finish_reason": finish, "logprobs": None}])]
        if self.include_usage:
            usage = usage_of(self.total) or {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
            events.append(self._event([], usage=usage))
        events.append("data: [DONE]\n\n")
        return events


def error_body(message: str, kind: str, code: str | None = None, param: str | None = None) -> dict[str, Any]:
    """OpenAI's error shape: ``{"error": {"message", "type", "param", "code"}}``."""
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


def error_event(body: dict[str, Any]) -> str:
    """An error after the stream started: OpenAI sends it as one more event."""
    return f"data: {json.dumps(body)}\n\n"
