"""Checks on a chat-completions request beyond its JSON types, and how a bad one is described.

Why here: pydantic checks the types of the request's fields; what a message, a tool or a
response format must hold is checked by hand, so that every mistake becomes an HTTP 400 whose
OpenAI-style body names the field (``param``, e.g. ``messages.0.content``) instead of a
provider's rejection or a 500 from deep inside a conversion.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from graphroute.errors import ConfigError

ROLES = ("system", "developer", "user", "assistant", "tool")
# Each content part type and the key holding its payload.
PART_TYPES = {"text": "text", "image_url": "image_url", "input_audio": "input_audio", "file": "file"}
RESPONSE_FORMATS = ("text", "json_object", "json_schema")
_SCALARS = frozenset({"str", "int", "float", "bool", "list", "dict", "none"})


class RequestError(ConfigError):
    """A request field is invalid; ``param`` names it as OpenAI's errors do (``messages.0.role``)."""

    def __init__(self, message: str, *, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param


def check_message(index: int, item: Mapping[str, Any]) -> None:
    """One message dict: a known role, content of a valid shape, tool fields where a role needs them."""
    where = f"messages[{index}]"
    role = item.get("role")
    if role not in ROLES:
        raise RequestError(
            f"{where}.role is {role!r}; expected one of {', '.join(ROLES)}", param=f"messages.{index}.role"
        )
    content = item.get("content")
    if content is not None and not isinstance(content, str):
        if not isinstance(content, list):
            raise RequestError(
                f"{where}.content must be a string or a list of content parts, not {type(content).__name__}",
                param=f"messages.{index}.content",
            )
        for number, part in enumerate(content):
            _check_part(index, number, part)
    if role == "tool" and not (isinstance(item.get("tool_call_id"), str) and item["tool_call_id"]):
        raise RequestError(
            f"{where} has role 'tool' but no tool_call_id (the id of the assistant's tool call it answers)",
            param=f"messages.{index}.tool_call_id",
        )
    if role == "assistant" and item.get("tool_calls") is not None:
        _check_tool_calls(index, item["tool_calls"])


def _check_part(index: int, number: int, part: Any) -> None:
    param = f"messages.{index}.content.{number}"
    kind = part.get("type") if isinstance(part, dict) else None
    if kind not in PART_TYPES:
        raise RequestError(
            f"messages[{index}].content[{number}] must be an object whose type is one of "
            f"{', '.join(PART_TYPES)}; got {kind if kind is not None else type(part).__name__!r}",
            param=f"{param}.type",
        )
    key = PART_TYPES[kind]
    payload = part.get(key)
    if payload is None or (kind == "text" and not isinstance(payload, str)):
        raise RequestError(
            f"messages[{index}].content[{number}] has type {kind!r} but no {key!r} "
            f"({'a string' if kind == 'text' else 'an object'})",
            param=f"{param}.{key}",
        )


def _check_tool_calls(index: int, calls: Any) -> None:
    param = f"messages.{index}.tool_calls"
    if not isinstance(calls, list):
        raise RequestError(f"messages[{index}].tool_calls must be a list, not {type(calls).__name__}", param=param)
    for number, call in enumerate(calls):
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(call, dict) or not isinstance(call.get("id"), str) or not isinstance(function, dict):
            raise RequestError(
                f"messages[{index}].tool_calls[{number}] must be an object with an id and a function",
                param=f"{param}.{number}",
            )
        if not isinstance(function.get("name"), str) or not isinstance(function.get("arguments", ""), str):
            raise RequestError(
                f"messages[{index}].tool_calls[{number}].function needs a name and arguments as a JSON string",
                param=f"{param}.{number}.function",
            )


def check_tools(tools: Sequence[Any]) -> None:
    """Function tools in OpenAI's format: ``{"type": "function", "function": {"name": ...}}``."""
    for number, tool in enumerate(tools):
        function = tool.get("function") if isinstance(tool, dict) else None
        if not isinstance(tool, dict) or tool.get("type") != "function":
            raise RequestError(f"tools[{number}].type must be 'function'", param=f"tools.{number}.type")
        if not isinstance(function, dict) or not isinstance(function.get("name"), str) or not function["name"]:
            raise RequestError(
                f"tools[{number}].function must be an object with a name (and usually parameters)",
                param=f"tools.{number}.function",
            )
        if not isinstance(function.get("parameters", {}), dict):
            raise RequestError(
                f"tools[{number}].function.parameters must be a JSON schema object",
                param=f"tools.{number}.function.parameters",
            )


def check_response_format(response_format: Mapping[str, Any]) -> None:
    kind = response_format.get("type")
    if kind not in RESPONSE_FORMATS:
        raise RequestError(
            f"response_format.type is {kind!r}; expected one of {', '.join(RESPONSE_FORMATS)}",
            param="response_format.type",
        )
    schema = response_format.get("json_schema")
    if kind == "json_schema" and not (isinstance(schema, dict) and isinstance(schema.get("name"), str)):
        raise RequestError(
            "response_format.json_schema must be an object with a name and a schema",
            param="response_format.json_schema",
        )


def describe(errors: Sequence[Mapping[str, Any]]) -> tuple[str, str | None]:
    """(message, param) for the first of FastAPI's validation errors, in words a client can act on."""
    if not errors:
        return "invalid request", None
    first = errors[0]
    loc = [part for part in first.get("loc", ()) if part != "body"]
    kind = str(first.get("type", ""))
    if kind == "json_invalid":
        why = (first.get("ctx") or {}).get("error") or "cannot be parsed"
        at = f" at character {loc[0]}" if loc else ""
        return f"the request body is not valid JSON ({why}{at})", None
    if not loc:
        if kind == "missing":
            return "the request body is empty; send a JSON object with 'model' and 'messages'", None
        return "the request body must be a JSON object with 'model' and 'messages'", None
    param = ".".join(str(part) for part in loc if not _union_member(part))
    message = str(first.get("msg", "invalid value")).removeprefix("Value error, ")
    return f"{param}: {message}", param


def _union_member(part: Any) -> bool:
    """pydantic names the member of a union it tried (``str``, ``list[str]``): not part of the field's path."""
    return isinstance(part, str) and (part in _SCALARS or "[" in part)
