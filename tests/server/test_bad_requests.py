"""Invalid requests to the server: a 400 or 404 in OpenAI's error shape naming the field; never a 500.

Each case is one mistake a client makes; the answer must say which field (``param``, dotted as
in ``messages.0.role``) and what is wrong with it, and no model may be called.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from graphroute import ModelPool
from graphroute.server import create_app
from graphroute.testing import ScriptedProvider

HI = [{"role": "user", "content": "hi"}]


@pytest.fixture(scope="module")
def provider() -> Iterator[ScriptedProvider]:
    with ScriptedProvider() as scripted:
        yield scripted


@pytest.fixture(scope="module")
def client(provider: ScriptedProvider) -> Iterator[TestClient]:
    pool = ModelPool.from_dict({"models": {"cloud": provider.pool_entry()}})
    with TestClient(create_app(pool, traces=False), raise_server_exceptions=False) as test_client:
        yield test_client


def chat(**fields: Any) -> dict[str, Any]:
    return {"model": "cloud", "messages": HI, **fields}


JSON_CASES = [
    ("missing messages", {"model": "cloud"}, "messages", "Field required"),
    ("empty messages", chat(messages=[]), "messages", "at least 1 item"),
    ("messages not a list", chat(messages="hi"), "messages", "valid list"),
    ("a message that is a string", chat(messages=["hi"]), "messages.0", "valid dictionary"),
    ("a message without a role", chat(messages=[{"content": "hi"}]), "messages.0.role", "expected one of"),
    ("an unknown role", chat(messages=[{"role": "robot", "content": "hi"}]), "messages.0.role", "'robot'"),
    ("content a number", chat(messages=[{"role": "user", "content": 42}]), "messages.0.content", "not int"),
    ("content an object", chat(messages=[{"role": "user", "content": {"a": 1}}]), "messages.0.content", "not dict"),
    (
        "a content part of unknown type",
        chat(messages=[{"role": "user", "content": [{"type": "video", "video": {}}]}]),
        "messages.0.content.0.type",
        "'video'",
    ),
    (
        "a text part without text",
        chat(messages=[{"role": "user", "content": [{"type": "text"}]}]),
        "messages.0.content.0.text",
        "no 'text'",
    ),
    (
        "a tool message without tool_call_id",
        chat(messages=[{"role": "tool", "content": "42"}]),
        "messages.0.tool_call_id",
        "tool_call_id",
    ),
    (
        "assistant tool_calls not a list",
        chat(messages=[{"role": "assistant", "content": "", "tool_calls": "search"}]),
        "messages.0.tool_calls",
        "must be a list",
    ),
    (
        "a tool call without a function",
        chat(messages=[{"role": "assistant", "content": "", "tool_calls": [{"id": "c1", "type": "function"}]}]),
        "messages.0.tool_calls.0",
        "id and a function",
    ),
    ("model missing", {"messages": HI}, "model", "Field required"),
    ("model a number", chat(model=123), "model", "valid string"),
    ("model empty", chat(model=""), "model", "at least 1 character"),
    ("temperature too high", chat(temperature=5), "temperature", "less than or equal to 2"),
    ("temperature negative", chat(temperature=-0.1), "temperature", "greater than or equal to 0"),
    ("temperature a word", chat(temperature="hot"), "temperature", "valid number"),
    ("max_tokens zero", chat(max_tokens=0), "max_tokens", "greater than 0"),
    ("max_tokens a word", chat(max_tokens="many"), "max_tokens", "valid integer"),
    ("max_completion_tokens negative", chat(max_completion_tokens=-5), "max_completion_tokens", "greater than 0"),
    ("stream not a boolean", chat(stream="maybe"), "stream", "valid boolean"),
    ("stream_options not an object", chat(stream=True, stream_options="yes"), "stream_options", "dictionary"),
    ("more than one choice", chat(n=3), "n", "less than or equal to 1"),
    ("tools not a list", chat(tools="search"), "tools", "valid list"),
    ("a tool of another type", chat(tools=[{"type": "retrieval"}]), "tools.0.type", "must be 'function'"),
    ("a tool without a function", chat(tools=[{"type": "function"}]), "tools.0.function", "with a name"),
    (
        "tool parameters not a schema",
        chat(tools=[{"type": "function", "function": {"name": "f", "parameters": "x"}}]),
        "tools.0.function.parameters",
        "JSON schema",
    ),
    ("tool_choice a number", chat(tool_choice=3), "tool_choice", "valid string"),
    ("stop of numbers", chat(stop=[1, 2]), "stop", "valid string"),
    ("response_format a word", chat(response_format="json"), "response_format", "valid dictionary"),
    ("response_format of unknown type", chat(response_format={"type": "xml"}), "response_format.type", "'xml'"),
    (
        "json_schema without its schema",
        chat(response_format={"type": "json_schema"}),
        "response_format.json_schema",
        "with a name",
    ),
]


@pytest.mark.parametrize(("body", "param", "message"), [c[1:] for c in JSON_CASES], ids=[c[0] for c in JSON_CASES])
def test_an_invalid_field_is_a_400_naming_it(
    client: TestClient, provider: ScriptedProvider, body: dict[str, Any], param: str, message: str
) -> None:
    before = len(provider.requests)

    response = client.post("/v1/chat/completions", json=body)

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param
    assert message in error["message"]
    assert len(provider.requests) == before  # no model was asked


RAW_CASES = [
    ("malformed JSON", b'{"model": "cloud", "messages": [', "application/json", "not valid JSON"),
    ("bytes that are not text", b"\xff\xfe", "application/json", "not valid JSON"),
    ("an empty body", b"", "application/json", "the request body is empty"),
    ("JSON null", b"null", "application/json", "must be a JSON object"),
    ("a JSON array", b"[1, 2]", "application/json", "must be a JSON object"),
    ("a body that is not JSON at all", b"model=cloud", "application/x-www-form-urlencoded", "must be a JSON object"),
]


@pytest.mark.parametrize(("raw", "content_type", "message"), [c[1:] for c in RAW_CASES], ids=[c[0] for c in RAW_CASES])
def test_a_body_that_is_not_a_request_object_is_a_400(
    client: TestClient, raw: bytes, content_type: str, message: str
) -> None:
    response = client.post("/v1/chat/completions", content=raw, headers={"content-type": content_type})

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error" and message in error["message"]
    assert "model" in error["message"] or "JSON" in error["message"]


@pytest.mark.parametrize("name", ["gpt-unknown", "router-budget-free", "router-cloud-share-2", "router-"])
def test_an_unknown_model_name_is_a_404_naming_it(client: TestClient, name: str) -> None:
    response = client.post("/v1/chat/completions", json=chat(model=name))

    assert response.status_code == 404
    error = response.json()["error"]
    assert (error["code"], error["param"]) == ("model_not_found", "model")
    assert repr(name) in error["message"]


def test_a_valid_request_still_answers(client: TestClient) -> None:
    """The checks refuse only mistakes: every accepted shape of content still goes through."""
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": [{"type": "text", "text": "hi"}]},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "42"},
    ]
    tools = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]

    response = client.post("/v1/chat/completions", json=chat(messages=messages, tools=tools, temperature=0))

    assert response.status_code == 200, response.text
    assert response.json()["choices"][0]["message"]["content"] == "ok"
