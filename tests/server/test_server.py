"""The OpenAI-compatible server, driven by the official ``openai`` client and by ``ChatOpenAI``."""

from __future__ import annotations

import json
from typing import Any

import httpx
import openai
import pytest
from langchain_openai import ChatOpenAI

from graphroute import ModelPool, TraceStore
from graphroute.server import create_app
from graphroute.testing import ScriptedProvider
from tests.server.conftest import RunningServer, free_port, serving

MULTIPLY = {
    "type": "function",
    "function": {
        "name": "multiply",
        "description": "Multiply two integers.",
        "parameters": {
            "type": "object",
            "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
            "required": ["a", "b"],
        },
    },
}


@pytest.fixture
def client(server: RunningServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.base_url, api_key=server.token, max_retries=0)


def ask(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": text}]


def test_a_routed_completion_says_which_model_answered(client: openai.OpenAI, server: RunningServer) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model="router-default", messages=ask("What is the capital of France? One word."), max_tokens=6, temperature=0
    )
    completion = raw.parse()

    assert raw.headers["x-graphroute-model"] == "local"
    assert completion.model == "local"
    expected = {"model": "local", "requested": "router-default", "reason": "default model"}
    assert completion.model_extra["graphroute"] == expected
    assert "paris" in completion.choices[0].message.content.lower()
    assert completion.usage.completion_tokens > 0
    last = server.store.calls()[-1]
    assert (last.model, last.requested_model) == ("local", "router-default")


def test_a_pool_model_name_passes_through(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(model="local-b", messages=ask("Say OK."), max_tokens=2)

    assert completion.model == "local-b"


def test_streaming_sends_chunks_then_usage(client: openai.OpenAI) -> None:
    with client.chat.completions.with_streaming_response.create(
        model="router-default",
        messages=ask("Count from 1 to 5, separated by commas."),
        max_tokens=12,
        temperature=0,
        stream=True,
        stream_options={"include_usage": True},
    ) as response:
        assert response.headers["x-graphroute-model"] == "local"
        chunks = list(response.parse())

    deltas = [chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices]
    assert len([delta for delta in deltas if delta]) > 1
    assert "2" in "".join(deltas)
    assert [chunk.choices[0].finish_reason for chunk in chunks if chunk.choices][-1] in ("stop", "length")
    assert chunks[-1].usage.completion_tokens > 0
    assert {chunk.model for chunk in chunks} == {"local"}


def test_tools_round_trip_through_the_server(client: openai.OpenAI) -> None:
    """The tool call streams back as tool-call deltas; the tool's result goes back as a tool message."""
    messages: list[Any] = ask("What is 6 times 7?")

    stream = client.chat.completions.create(
        model="router-default", messages=messages, tools=[MULTIPLY], max_tokens=32, temperature=0, stream=True
    )
    chunks = [chunk for chunk in stream if chunk.choices]

    deltas = [call for chunk in chunks for call in chunk.choices[0].delta.tool_calls or []]
    call_id, name = deltas[0].id, deltas[0].function.name
    arguments = "".join(delta.function.arguments or "" for delta in deltas)
    assert (name, json.loads(arguments)) == ("multiply", {"a": 6, "b": 7})
    assert chunks[-1].choices[0].finish_reason == "tool_calls"
    call = {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}
    messages += [
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": call_id, "content": "42"},
    ]
    second = client.chat.completions.create(
        model="router-default", messages=messages, tools=[MULTIPLY], max_tokens=16, temperature=0
    )
    reply = second.choices[0].message
    assert "42" in (reply.content or "") + str(reply.tool_calls)


def test_a_tools_request_to_a_model_without_tool_support_is_refused(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError, match="lacks the 'tools' capability"):
        client.chat.completions.create(model="plain", messages=ask("What is 6 times 7?"), tools=[MULTIPLY])


def test_response_format_json_schema(client: openai.OpenAI) -> None:
    schema = {
        "type": "object",
        "properties": {"city": {"type": "string"}, "country": {"type": "string"}},
        "required": ["city", "country"],
    }

    completion = client.chat.completions.create(
        model="router-default",
        messages=ask("Paris is the capital of France. Give the city and its country."),
        response_format={"type": "json_schema", "json_schema": {"name": "place", "schema": schema}},
        max_tokens=32,
        temperature=0,
    )

    assert json.loads(completion.choices[0].message.content) == {"city": "Paris", "country": "France"}


def test_models_lists_routers_and_pool_models(client: openai.OpenAI) -> None:
    ids = [model.id for model in client.models.list()]

    assert ids[0] == "router-default"
    assert {"local", "local-b", "plain"} <= set(ids)


def test_requests_without_the_token_get_401(server: RunningServer) -> None:
    stranger = openai.OpenAI(base_url=server.base_url, api_key="wrong", max_retries=0)

    with pytest.raises(openai.AuthenticationError) as caught:
        stranger.chat.completions.create(model="router-default", messages=ask("hi"))

    assert caught.value.body["code"] == "invalid_api_key"
    assert httpx.get(server.base_url + "/models").status_code == 401
    assert httpx.get(server.base_url.removesuffix("/v1") + "/health").json()["status"] == "ok"


@pytest.mark.parametrize("name", ["gpt-unknown", "router-budget-free", "router-cloud-share-2"])
def test_a_bad_model_name_gets_openais_not_found_error(client: openai.OpenAI, name: str) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        client.chat.completions.create(model=name, messages=ask("hi"))

    assert caught.value.body["code"] == "model_not_found"
    assert caught.value.body["type"] == "invalid_request_error"


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": "local", "messages": []}, "messages"),
        ({"model": "local", "messages": [{"role": "robot", "content": "hi"}]}, "messages.0.role"),
        ({"model": "local", "messages": [{"role": "user", "content": "hi"}], "max_tokens": -1}, "max_tokens"),
        ({"messages": [{"role": "user", "content": "hi"}]}, "model"),
    ],
)
def test_a_bad_request_gets_openais_error_shape(server: RunningServer, body: dict[str, Any], param: str | None) -> None:
    response = httpx.post(
        server.base_url + "/chat/completions", json=body, headers={"Authorization": f"Bearer {server.token}"}
    )

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error" and error["message"]
    assert error["param"] == param


def test_chatopenai_pointed_at_the_server(server: RunningServer) -> None:
    model = ChatOpenAI(
        base_url=server.base_url, api_key=server.token, model="router-default", temperature=0, max_retries=0
    )

    answer = model.invoke("What is the capital of France? One word.", max_tokens=6)
    chunks = list(model.stream("Count from 1 to 3.", max_tokens=8))

    assert "paris" in str(answer.content).lower()
    assert answer.response_metadata["model_name"] == "local"
    assert len(chunks) > 1


def test_an_unreachable_model_is_a_502_that_never_shows_the_key(
    local_pool: ModelPool, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A cloud model whose endpoint is down; its key must not appear in the error or the trace."""
    secret = "sk-never-shown-5150"
    monkeypatch.setenv("DEAD_API_KEY", secret)
    pool = ModelPool.from_dict(
        {
            "models": {
                "dead": {
                    "provider": "openai-compatible",
                    "base_url": f"http://127.0.0.1:{free_port()}/v1",
                    "model": "gpt-4o-mini",
                    "api_key_env": "DEAD_API_KEY",
                    "max_retries": 0,
                    "timeout_s": 5,
                }
            }
        }
    )
    store = TraceStore(tmp_path / "t.sqlite")

    with serving(create_app(pool, traces=store)) as base_url:
        client = openai.OpenAI(base_url=base_url, api_key="anything", max_retries=0)
        with pytest.raises(openai.APIStatusError) as caught:
            client.chat.completions.create(model="router-default", messages=ask("hi"))

    assert caught.value.status_code == 502
    assert caught.value.body["type"] == "server_error"
    assert "dead" in caught.value.body["message"]
    assert secret not in json.dumps(caught.value.body)
    assert secret not in json.dumps([call.error for call in store.calls()])


def test_router_policies_choose_between_a_local_and_a_cloud_tier() -> None:
    """Policies without pillars on a two-tier pool of scripted OpenAI-compatible providers."""
    with ScriptedProvider() as small, ScriptedProvider() as large:
        pool = ModelPool.from_dict(
            {
                "routing": {"default": "small"},
                "models": {
                    "small": small.pool_entry(locality="local"),
                    "large": large.pool_entry(input_price=2.5, output_price=10.0),
                },
            }
        )
        with serving(create_app(pool, traces=False)) as base_url:
            client = openai.OpenAI(base_url=base_url, api_key="unused", max_retries=0)

            def answered_by(model: str, **options: Any) -> str:
                return client.chat.completions.create(model=model, messages=ask("hi"), **options).model

            paced = [answered_by("router-cloud-share-0.5") for _ in range(4)]
            tight = answered_by("router-budget-0.0001", max_tokens=100)  # large would cost ~$0.001
            loose = answered_by("router-budget-0.01", max_tokens=100)
            # 8 tokens out fit $0.0001 on large (~$0.00008); the default estimate of 256 would not.
            streamed = client.chat.completions.create(
                model="router-budget-0.0001", messages=ask("hi"), max_tokens=8, stream=True
            )
            short_stream = next(iter(streamed)).model
            listed = [model.id for model in client.models.list()]

    assert paced == ["small", "large", "small", "large"]
    assert (tight, loose) == ("small", "large")
    assert short_stream == "large"  # a streamed request's max_tokens reaches the budget's estimate
    routers = ["router-default", "router-cloud-share-0.5", "router-budget-0.0001", "router-budget-0.01"]
    assert listed == [*routers, "small", "large"]
