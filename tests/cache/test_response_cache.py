"""The model-response cache: what a key distinguishes, what is cached by default, what the trace says."""

from __future__ import annotations

import operator
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, TypedDict

import pytest
from langchain_core.language_models import FakeListChatModel
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage
from langchain_core.outputs import ChatGeneration
from langchain_openai import ChatOpenAI
from langgraph.graph import StateGraph
from pydantic import BaseModel

from graphroute import ModelPool, optimize
from graphroute.cache import CacheConfig, ResponseCache, describe_request
from graphroute.testing import Reply, ScriptedProvider
from tests.apps import one_node

SECRET = "sk-response-cache-never-stored-7777"


@pytest.fixture
def provider() -> Iterator[ScriptedProvider]:
    with ScriptedProvider(lambda request: Reply(content=f"answer {len(request.body['messages'])}")) as scripted:
        yield scripted


@pytest.fixture
def pool(provider: ScriptedProvider, monkeypatch: pytest.MonkeyPatch) -> ModelPool:
    monkeypatch.setenv("SCRIPTED_KEY", SECRET)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-the-app-own-key")  # the app's ChatOpenAI needs one to be built
    return ModelPool.from_dict({"models": {"cloud": provider.pool_entry(api_key_env="SCRIPTED_KEY", input_price=1.0)}})


class QA(TypedDict, total=False):
    question: str
    temperature: float
    answers: Annotated[list[str], operator.add]
    ids: Annotated[list[str], operator.add]


def answer(state: QA) -> QA:
    llm = ChatOpenAI(model="gpt-4o", temperature=state.get("temperature", 0.0), max_tokens=32)
    reply = llm.invoke([SystemMessage("Answer briefly."), HumanMessage(state["question"])])
    return {"answers": [str(reply.content)], "ids": [str(reply.id)]}


def qa_graph() -> StateGraph:
    return one_node(QA, answer)


def responses_only(tmp_path: Path, **options: Any) -> CacheConfig:
    """Node caching off (no nodes), so every run reaches the model call."""
    return CacheConfig(path=tmp_path / "cache", nodes=(), **options)


def test_a_repeated_deterministic_call_is_answered_from_the_cache(
    pool: ModelPool, provider: ScriptedProvider, tmp_path: Path
) -> None:
    app = optimize(qa_graph(), pool=pool, cache=responses_only(tmp_path), traces=tmp_path / "t.sqlite")

    first = app.invoke({"question": "Capital of France?"})
    second = app.invoke({"question": "Capital of France?"})

    assert len(provider.requests) == 1
    assert second["answers"] == first["answers"] == ["answer 2"]
    assert second["ids"] != first["ids"]  # each run's message keeps its own id
    [call] = app.store.calls(run_id=app.last_run.run_id)
    assert call.cache_hit and call.model == "cloud"
    assert (call.input_tokens, call.output_tokens, call.cost_usd) == (0, 0, 0.0)
    assert "response cache" in call.reason
    assert app.last_run.cache.response_hits == 1


def test_calls_that_sample_are_not_cached_unless_asked(
    pool: ModelPool, provider: ScriptedProvider, tmp_path: Path
) -> None:
    sampling = {"question": "Write a haiku.", "temperature": 0.8}
    default = optimize(qa_graph(), pool=pool, cache=responses_only(tmp_path), traces=tmp_path / "t.sqlite")
    default.invoke(sampling)
    default.invoke(sampling)
    assert len(provider.requests) == 2

    opted_in = optimize(
        qa_graph(), pool=pool, cache=responses_only(tmp_path, cache_nondeterministic=True), traces=tmp_path / "t.sqlite"
    )
    opted_in.invoke(sampling)
    opted_in.invoke(sampling)
    assert len(provider.requests) == 3


def test_the_cache_directory_never_holds_a_key_or_a_prompt(pool: ModelPool, tmp_path: Path) -> None:
    app = optimize(qa_graph(), pool=pool, cache=responses_only(tmp_path), traces=tmp_path / "t.sqlite")
    app.invoke({"question": "What is the launch code 90210?"})

    stored = b"".join(path.read_bytes() for path in (tmp_path / "cache").rglob("*") if path.is_file())
    assert SECRET.encode() not in stored
    assert b"launch code" not in stored


SPEC = ModelPool.from_dict({"models": {"m": {"provider": "openai", "model": "gpt-4o-mini", "api_key_env": "K"}}})["m"]
OTHER = ModelPool.from_dict({"models": {"m2": {"provider": "openai", "model": "gpt-4o", "api_key_env": "K"}}})["m2"]
MESSAGES = [SystemMessage("Be brief."), HumanMessage("Capital of France?")]


class City(BaseModel):
    name: str


def key(spec: Any = SPEC, messages: Any = MESSAGES, stop: Any = None, **params: Any) -> str:
    return describe_request(spec, messages, stop, {"temperature": 0, **params}).digest


def test_keys_distinguish_model_parameters_tools_format_and_messages() -> None:
    tool = {"type": "function", "function": {"name": "lookup", "parameters": {"type": "object", "properties": {}}}}
    variants = {
        "base": key(),
        "model": key(OTHER),
        "temperature": key(temperature=0.2),
        "max tokens": key(extra_body={"max_tokens": 8}),
        "tools": key(tools=[tool]),
        "response format": key(response_format=City),
        "stop words": key(stop=["\n"]),
        "messages": key(messages=[SystemMessage("Be brief."), HumanMessage("Capital of Spain?")]),
        "history": key(messages=[*MESSAGES, AIMessage("Paris."), HumanMessage("Capital of France?")]),
    }
    assert len(set(variants.values())) == len(variants)


def test_keys_ignore_message_ids_and_credentials() -> None:
    with_ids = [SystemMessage("Be brief.", id="run-1"), HumanMessage("Capital of France?", id="run-2")]
    assert key(messages=with_ids) == key()
    assert key(api_key=SECRET, default_headers={"Authorization": f"Bearer {SECRET}"}) == key()
    request = describe_request(SPEC, MESSAGES, None, {"temperature": 0, "api_key": SECRET})
    assert SECRET not in request.llm_string + request.prompt


def test_only_temperature_zero_counts_as_deterministic() -> None:
    assert describe_request(SPEC, MESSAGES, None, {"temperature": 0}).deterministic
    assert describe_request(SPEC, MESSAGES, None, {"options": {"temperature": 0}}).deterministic  # Ollama's place
    assert not describe_request(SPEC, MESSAGES, None, {"temperature": 0.7}).deterministic
    assert not describe_request(SPEC, MESSAGES, None, {}).deterministic  # provider default: sampling


def test_it_is_a_langchain_cache_that_persists(tmp_path: Path) -> None:
    llm = FakeListChatModel(responses=["Paris", "Lyon"], cache=ResponseCache(tmp_path / "responses"))
    assert llm.invoke("Capital of France?").content == "Paris"
    assert llm.invoke("Capital of France?").content == "Paris"  # from the cache, not the next response

    reopened = ResponseCache(tmp_path / "responses")
    assert len(reopened) == 1
    reopened.update("prompt", "llm", [ChatGeneration(message=AIMessage("stored", tool_calls=[]))])
    [generation] = ResponseCache(tmp_path / "responses").lookup("prompt", "llm") or []
    assert isinstance(generation, ChatGeneration) and generation.message.content == "stored"
    assert ResponseCache(tmp_path / "responses").lookup("prompt", "other llm") is None
