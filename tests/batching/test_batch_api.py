"""The provider Batch API mode: a Send fan-out's calls leave as one OpenAI batch job.

The stand-in cloud is ``ScriptedProvider``, a real local HTTP server speaking OpenAI's Batch API
(file upload, batch creation, status polls, result files); the real ``openai`` SDK talks to it.
"""

from __future__ import annotations

import asyncio
import json
import operator
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, TypedDict

import pytest
from langchain_core.messages import HumanMessage
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI
from langgraph.graph import END, START, StateGraph
from langgraph.types import Send
from pydantic import BaseModel

from graphroute import ConfigError, ModelPool, ProviderError, optimize
from graphroute.providers.batch_api import BatchAPIChatModel, BatchExpiredError, BatchRequestError, batch_id_of
from graphroute.testing import Reply, Script, ScriptedProvider

KEY = "sk-batch-test-4c1d9e77f0"  # a fake key: it must reach the stand-in's auth header and nowhere else
COUNTRIES = ["Peru", "Chile", "Japan", "Kenya", "Norway", "Canada", "Egypt", "India", "Brazil", "Spain"]


class Fan(TypedDict, total=False):
    countries: list[str]
    answers: Annotated[list[tuple[str, str]], operator.add]


def fan_out(state: Fan) -> list[Send]:
    return [Send("capital", {"country": country}) for country in state["countries"]]


def question(country: str) -> list[HumanMessage]:
    return [HumanMessage(f"Capital of {country}? City only.")]


def capital(task: dict[str, str]) -> Fan:
    """User code as written for OpenAI; a failed call becomes an answer so the others can be seen."""
    llm = ChatOpenAI(model="gpt-4o-mini", temperature=0, max_tokens=8)
    try:
        reply = str(llm.invoke(question(task["country"])).content)
    except ProviderError as error:
        reply = f"failed: {error}"
    return {"answers": [(task["country"], reply)]}


async def acapital(task: dict[str, str]) -> Fan:
    llm = ChatOpenAI(model="gpt-4o-mini", temperature=0, max_tokens=8)
    reply = await llm.ainvoke(question(task["country"]))
    return {"answers": [(task["country"], str(reply.content))]}


def fan_graph(node: Any = capital) -> StateGraph:
    graph = StateGraph(Fan)
    graph.add_node("capital", node)
    graph.add_conditional_edges(START, fan_out, ["capital"])
    graph.add_edge("capital", END)
    return graph


def asked_country(body: dict[str, Any]) -> str:
    return str(body["messages"][-1]["content"]).split()[2].rstrip("?")


def echo_capital(request: Any) -> Reply:
    """The stand-in's answer to one chat request (a batch line or a direct call)."""
    return Reply(content=f"capital of {asked_country(request.body)}", prompt_tokens=12, completion_tokens=3)


@pytest.fixture(autouse=True)
def keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BATCH_KEY", KEY)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-app-own-key")  # the app's ChatOpenAI is built with one


@pytest.fixture
def provider() -> Iterator[ScriptedProvider]:
    with ScriptedProvider(echo_capital, batch_polls=3) as scripted:
        yield scripted


def batch_pool(provider: ScriptedProvider, **options: Any) -> ModelPool:
    entry = provider.pool_entry(
        api_key_env="BATCH_KEY",
        input_price=0.075,
        output_price=0.30,
        batch_api=True,
        # A wide window: on a loaded machine LangGraph may start Send workers far apart. The batch
        # leaves as soon as it holds batch_max_requests calls, so a full fan-out never waits it out.
        **{"batch_window_ms": 5000, "batch_max_requests": len(COUNTRIES), "batch_poll_s": 0.02, **options},
    )
    return ModelPool.from_dict({"models": {"bulk": entry}})


def test_a_fan_out_of_ten_sync_calls_leaves_as_one_batch(provider: ScriptedProvider, tmp_path: Path) -> None:
    app = optimize(fan_graph(), pool=batch_pool(provider), traces=tmp_path / "t.sqlite")

    # LangGraph runs sync Send workers in a thread pool; let all ten wait on the batch at once.
    result = app.invoke({"countries": COUNTRIES}, config={"max_concurrency": len(COUNTRIES)})

    assert provider.requests == []  # nothing went through the synchronous chat endpoint
    [batch] = provider.batches
    assert batch.endpoint == "/v1/chat/completions" and batch.completion_window == "24h"
    assert len(batch.lines) == 10
    assert {line["method"] for line in batch.lines} == {"POST"}
    assert {line["url"] for line in batch.lines} == {"/v1/chat/completions"}
    assert sorted(asked_country(line["body"]) for line in batch.lines) == sorted(COUNTRIES)
    assert len({line["custom_id"] for line in batch.lines}) == 10
    assert batch.statuses == ["in_progress", "in_progress", "completed"]
    assert sorted(result["answers"]) == sorted((country, f"capital of {country}") for country in COUNTRIES)

    calls = app.store.calls(run_id=app.last_run.run_id)
    assert len(calls) == 10
    assert all(call.batched and call.model == "bulk" and call.error is None for call in calls)
    assert all((call.input_tokens, call.output_tokens) == (12, 3) for call in calls)
    assert all(call.cost_usd == pytest.approx((12 * 0.075 + 3 * 0.30) / 1e6) for call in calls)


async def test_a_fan_out_of_ten_async_calls_leaves_as_one_batch(provider: ScriptedProvider, tmp_path: Path) -> None:
    app = optimize(fan_graph(acapital), pool=batch_pool(provider), traces=tmp_path / "t.sqlite")

    result = await app.ainvoke({"countries": COUNTRIES})

    assert [len(batch.lines) for batch in provider.batches] == [10]
    assert sorted(result["answers"]) == sorted((country, f"capital of {country}") for country in COUNTRIES)
    calls = app.store.calls(run_id=app.last_run.run_id)
    assert len(calls) == 10 and all(call.batched for call in calls)


async def test_an_in_flight_bound_for_other_models_does_not_split_a_batch(
    provider: ScriptedProvider, tmp_path: Path
) -> None:
    """``BatchConfig(max_in_flight=2)`` bounds the calls sent one by one; a Batch API model's
    calls wait on the provider together, so its own batch size is its bound."""
    from graphroute.batching import BatchConfig

    app = optimize(
        fan_graph(acapital), pool=batch_pool(provider), batching=BatchConfig(max_in_flight=2), traces=tmp_path / "t.db"
    )
    await app.ainvoke({"countries": COUNTRIES})
    assert [len(batch.lines) for batch in provider.batches] == [10]


def test_the_batch_body_is_what_chat_completions_would_get(provider: ScriptedProvider) -> None:
    client = batch_pool(provider, batch_window_ms=50).client("bulk")
    assert isinstance(client, BatchAPIChatModel)

    reply = client.invoke(question("Peru"), temperature=0.2, max_tokens=8, stop=["\n"])

    [line] = provider.batches[0].lines
    assert line["body"]["model"] == "scripted"
    assert line["body"]["messages"] == [{"role": "user", "content": "Capital of Peru? City only."}]
    body = line["body"]
    assert (body["temperature"], body["max_completion_tokens"], body["stop"]) == (0.2, 8, ["\n"])
    assert "stream" not in line["body"]
    assert reply.content == "capital of Peru"
    assert reply.usage_metadata is not None and reply.usage_metadata["total_tokens"] == 15
    assert batch_id_of(reply) == provider.batches[0].id


def test_tools_and_response_format_travel_in_the_batch_body(tmp_path: Path) -> None:
    @tool
    def weather(city: str) -> str:
        """Today's weather in a city."""
        return "sunny"

    class Capital(BaseModel):
        country: str
        city: str

    def script(request: Any) -> Reply:
        if request.body.get("tools"):
            call = {
                "id": "call_1",
                "type": "function",
                "function": {"name": "weather", "arguments": '{"city": "Lima"}'},
            }
            return Reply(content="", tool_calls=[call])
        return Reply(content=json.dumps({"country": "Peru", "city": "Lima"}))

    with ScriptedProvider(script, batch_polls=1) as scripted:
        client = batch_pool(scripted, batch_window_ms=50).client("bulk")

        tool_reply = client.bind_tools([weather]).invoke("Weather in Lima?")
        structured = client.with_structured_output(Capital, method="json_schema").invoke("Capital of Peru?")

    tool_line, schema_line = (batch.lines[0]["body"] for batch in scripted.batches)
    assert tool_line["tools"][0]["function"]["name"] == "weather"
    assert tool_reply.tool_calls == [{"name": "weather", "args": {"city": "Lima"}, "id": "call_1", "type": "tool_call"}]
    assert schema_line["response_format"]["type"] == "json_schema"
    assert schema_line["response_format"]["json_schema"]["name"] == "Capital"
    assert structured == Capital(country="Peru", city="Lima")


def test_a_failed_line_fails_only_its_own_call(tmp_path: Path) -> None:
    def script(request: Any) -> Reply:
        if asked_country(request.body) == "Japan":
            return Reply(status=400, content="content policy")
        return echo_capital(request)

    with ScriptedProvider(script, batch_polls=2) as scripted:
        app = optimize(fan_graph(), pool=batch_pool(scripted), traces=tmp_path / "t.sqlite")
        result = app.invoke({"countries": COUNTRIES}, config={"max_concurrency": len(COUNTRIES)})

    assert [len(batch.lines) for batch in scripted.batches] == [10]
    answers = dict(result["answers"])
    assert answers.pop("Japan").startswith(f"failed: model 'bulk': batch {scripted.batches[0].id} ")
    assert answers == {country: f"capital of {country}" for country in COUNTRIES if country != "Japan"}
    calls = app.store.calls(run_id=app.last_run.run_id)
    [failed] = [call for call in calls if call.error]
    assert "HTTP 400" in failed.error and "content policy" in failed.error
    assert sum(call.batched for call in calls) == 9  # the failed call got no answer from the batch


def test_a_rate_limited_line_is_retried_in_a_new_batch(tmp_path: Path) -> None:
    with ScriptedProvider(
        Script([Reply(status=429, content="slow down"), Reply(content="Lima")]), batch_polls=1
    ) as busy:
        pool = batch_pool(busy, batch_window_ms=50, max_retries=1, retry_delay_s=0)
        direct = batch_pool(busy, batch_window_ms=50).client("bulk")
        app = optimize(fan_graph(), pool=pool, traces=tmp_path / "t.sqlite")

        result = app.invoke({"countries": ["Peru"]})
        busy.script = lambda request: Reply(status=400, content="bad request")
        with pytest.raises(BatchRequestError) as raised:
            direct.invoke(question("Peru"))

    assert result["answers"] == [("Peru", "Lima")]
    [call] = app.store.calls(run_id=app.last_run.run_id)
    assert call.retries == 1 and call.batched and call.error is None
    assert len(busy.batches) == 3  # the 429, its retry, then the direct call
    assert raised.value.status_code == 400 and raised.value.batch_id == busy.batches[2].id


async def test_a_batch_past_its_timeout_is_cancelled_and_raises_a_clear_error(tmp_path: Path) -> None:
    with ScriptedProvider(echo_capital, batch_polls=None) as never_done:  # stays in_progress
        pool = batch_pool(never_done, batch_window_ms=50, batch_timeout_s=0.3)
        app = optimize(fan_graph(acapital), pool=pool, traces=tmp_path / "t.sqlite")

        with pytest.raises(BatchExpiredError) as raised:
            await app.ainvoke({"countries": ["Peru"]})

    [batch] = never_done.batches
    assert raised.value.model == "bulk" and raised.value.batch_id == batch.id
    assert str(raised.value).startswith(
        f"model 'bulk': batch {batch.id} was still 'in_progress' after batch_timeout_s=0.3 and was cancelled"
    )
    assert "Raise batch_timeout_s" in str(raised.value) and "fallback" in str(raised.value)
    assert batch.status == "cancelled"
    [call] = app.store.calls(run_id=app.last_run.run_id)
    assert call.error and "BatchExpiredError" in call.error and not call.batched


def test_a_batch_the_provider_expires_fails_its_calls_the_same_way() -> None:
    with ScriptedProvider(echo_capital, batch_polls=1, batch_outcome="expired") as expiring:
        client = batch_pool(expiring, batch_window_ms=50).client("bulk")

        with pytest.raises(BatchExpiredError, match="expired at the provider") as raised:
            client.invoke(question("Peru"))

    assert raised.value.batch_id == expiring.batches[0].id


def test_a_failed_batch_names_the_model_the_batch_and_why() -> None:
    with ScriptedProvider(echo_capital, batch_polls=1, batch_outcome="failed") as failing:
        client = batch_pool(failing, batch_window_ms=50).client("bulk")

        with pytest.raises(ProviderError, match=r"model 'bulk': batch batch-\S+ failed \(invalid_request: scripted"):
            client.invoke(question("Peru"))


async def test_async_callers_on_separate_event_loops_each_get_their_answer(provider: ScriptedProvider) -> None:
    client = batch_pool(provider, batch_window_ms=200).client("bulk")

    first, second = await asyncio.gather(
        client.ainvoke(question("Chile")), asyncio.to_thread(lambda: asyncio.run(client.ainvoke(question("Kenya"))))
    )

    assert (first.content, second.content) == ("capital of Chile", "capital of Kenya")
    assert [len(batch.lines) for batch in provider.batches] == [2]


@pytest.mark.parametrize("provider_name", ["ollama", "llamacpp"])
def test_batch_api_on_a_provider_without_one_is_a_config_error(provider_name: str) -> None:
    entry = {"provider": provider_name, "model": "qwen2.5-coder-0.5b-instruct", "batch_api": True}

    with pytest.raises(ConfigError, match=r"batch_api = true needs a provider with a Batch API") as raised:
        ModelPool.from_dict({"models": {"slow": entry}})

    assert raised.value.entry == "models.slow" and repr(provider_name) in str(raised.value)


def test_batch_options_without_batch_api_are_a_config_error() -> None:
    entry = {"provider": "openai", "model": "gpt-4o-mini", "api_key_env": "BATCH_KEY", "batch_poll_s": 30}

    with pytest.raises(ConfigError, match=r"\[models.cloud\] .*batch_poll_s applies only with batch_api = true"):
        ModelPool.from_dict({"models": {"cloud": entry}})


def test_the_key_reaches_only_the_auth_header(tmp_path: Path) -> None:
    def script(request: Any) -> Reply:
        if asked_country(request.body) == "Chile":  # a provider that echoes the key in an error
            return Reply(status=401, content=f"invalid key {KEY}")
        return echo_capital(request)

    traces = tmp_path / "traces"
    traces.mkdir()
    with ScriptedProvider(script, batch_polls=1) as scripted:
        app = optimize(fan_graph(), pool=batch_pool(scripted), traces=traces / "t.sqlite")
        result = app.invoke({"countries": COUNTRIES}, config={"max_concurrency": len(COUNTRIES)})

    assert all(upload.headers["authorization"] == f"Bearer {KEY}" for upload in scripted.files)
    assert all(KEY.encode() not in upload.content for upload in scripted.files)
    answers = dict(result["answers"])
    assert "HTTP 401" in answers["Chile"] and "[redacted]" in answers["Chile"] and KEY not in answers["Chile"]
    stored = b"".join(path.read_bytes() for path in traces.iterdir())
    assert b"HTTP 401" in stored and KEY.encode() not in stored
