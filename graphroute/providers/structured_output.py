"""LangChain's ways of asking for tools and structured output, in the OpenAI wire format.

Every pool model is reached through an OpenAI-compatible client (llama.cpp's server included),
so ``RoutedChatModel.bind_tools`` / ``with_structured_output`` translate once, here.
"""

from __future__ import annotations

from typing import Any

from langchain_core.utils.function_calling import convert_to_openai_tool

from graphroute.errors import ConfigError


def openai_tool_choice(choice: str | bool | dict[str, Any], tools: list[dict[str, Any]]) -> str | dict[str, Any]:
    """LangChain's spellings → OpenAI's: "any" and True mean "required", a name means that tool."""
    if isinstance(choice, dict):
        return choice
    if choice is True or choice in ("any", "required"):
        return "required"
    if choice in ("auto", "none"):
        return str(choice)
    names = [tool["function"]["name"] for tool in tools]
    if choice not in names:
        raise ConfigError(f"tool_choice {choice!r} is not one of the bound tools: {', '.join(names)}")
    return {"type": "function", "function": {"name": choice}}


def json_schema_format(schema: dict[str, Any] | type, strict: bool | None) -> dict[str, Any]:
    """OpenAI's ``response_format`` for a pydantic class, TypedDict, tool schema or plain JSON schema."""
    if isinstance(schema, dict) and "properties" in schema and "function" not in schema:
        name, description, parameters = schema.get("title", "output"), schema.get("description"), schema
    else:
        function = convert_to_openai_tool(schema)["function"]
        name, description, parameters = function["name"], function.get("description"), function["parameters"]
    json_schema: dict[str, Any] = {"name": name, "schema": parameters}
    if description:
        json_schema["description"] = description
    if strict is not None:
        json_schema["strict"] = strict
    return {"type": "json_schema", "json_schema": json_schema}
