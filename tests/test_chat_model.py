"""RoutedChatModel: a chat model for any LangChain chain, routed like optimize() routes node calls."""

from __future__ import annotations

import operator
from typing import Annotated, Any, TypedDict

import pytest
from langchain_core.caches import InMemoryCache
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.tools import tool
from langgraph.graph import END, START, StateGraph
from pydantic import BaseModel

from graphroute import ModelPool, RoutingError, TraceStore, UnknownModelError, optimize
from graphroute.chat_model import RoutedChatModel
from graphroute.providers.tool_calls import recover_tool_calls
from graphroute.testing import Reply, Script, ScriptedProvider


@tool
def multiply(a: int, b: int) -> int:
    """Multiply two integers."""
    return a * b


class City(BaseModel):
    name: str
    country: str


def test_an_lcel_chain_routes_the_call_and_traces_it(local_pool: ModelPool, trace_store: TraceStore) -> None:
    model = RoutedChatModel(pool=local_pool, traces=trace_store, max_tokens=8, temperature=0)
    prompt = ChatPromptTemplate.from_messages(
        [("human", "What is the capital of {country}? Reply with the city only.")]
    )
    chain = prompt | model | StrOutputParser()

    answer = chain.invoke({"country": "France"})

    assert "paris" in answer.lower()
    [call] = trace_store.calls()
    assert (call.model, call.reason, call.node) == ("local", "default model", None)
    assert call.input_tokens > 0 and call.output_tokens > 0
    assert trace_store.run(call.run_id).graph == "RoutedChatModel"


class TokenCounter(BaseCallbackHandler):
    def __init__(self) -> None:
        self.tokens = 0
        self.starts: list[dict[str, Any]] = []

    def on_chat_model_start(self, serialized: Any, messages: Any, *, metadata: Any = None, **kwargs: Any) -> None:
        self.starts.append(metadata or {})

    def on_llm_new_token(self, token: str, **kwargs: Any) -> None:
        self.tokens += 1


def test_streaming_yields_chunks_as_the_chosen_model_produces_them(
    local_pool: ModelPool, trace_store: TraceStore
) -> None:
    model = RoutedChatModel(pool=local_pool, traces=trace_store, max_tokens=12, temperature=0)
    counter = TokenCounter()

    chunks = list(model.stream("Count from 1 to 5, separated by commas.", {"callbacks": [counter]}))

    assert len(chunks) > 1
    assert chunks[0].response_metadata["graphroute_model"] == "local"
    whole = sum(chunks[1:], chunks[0])
    assert "3" in whole.content
    assert whole.usage_metadata["output_tokens"] > 0
    # One run, this model's: its callbacks see every chunk once, with graphroute as the provider.
    assert [start["ls_provider"] for start in counter.starts] == ["graphroute"]
    assert counter.tokens == len(chunks)
    [call] = trace_store.calls()
    assert call.output_tokens == whole.usage_metadata["output_tokens"]


async def test_async_stream_and_batches(local_pool: ModelPool) -> None:
    # Its own timeout gives this test its own HTTP connection pool: langchain-openai shares one
    # async pool per (URL, timeout) across event loops, and this test's loop closes when it ends.
    pool = local_pool.replace("local", timeout_s=117.0)
    model = RoutedChatModel(pool=pool, traces=False, max_tokens=8, temperature=0)

    chunks = [chunk async for chunk in model.astream("Count from 1 to 5.")]
    answers = await model.abatch(["Say yes.", "Say no."], max_tokens=2)

    assert len(chunks) > 1
    assert [answer.response_metadata["graphroute_model"] for answer in answers] == ["local", "local"]


def test_a_tool_calling_round_trip(local_pool: ModelPool) -> None:
    model = RoutedChatModel(pool=local_pool, traces=False, max_tokens=24, temperature=0).bind_tools([multiply])
    messages: list[Any] = [HumanMessage("What is 6 times 7?")]

    asked = model.invoke(messages)

    assert [(call["name"], call["args"]) for call in asked.tool_calls] == [("multiply", {"a": 6, "b": 7})]
    results = [ToolMessage(str(multiply.invoke(call["args"])), tool_call_id=call["id"]) for call in asked.tool_calls]
    reply = model.invoke([*messages, asked, *results], max_tokens=16)
    # The small local model's wording varies; the tool's result reaching it does not.
    assert "42" in str(reply.content) + str(reply.tool_calls)


def test_a_model_without_tool_support_is_never_chosen_for_a_tools_call(
    local_pool: ModelPool, trace_store: TraceStore
) -> None:
    pool = local_pool.replace("local", capabilities=("streaming",))  # the default model cannot call tools
    model = RoutedChatModel(pool=pool, traces=trace_store, max_tokens=2, temperature=0)

    model.bind_tools([multiply]).invoke("What is 6 times 7?")
    model.invoke("Say OK.")

    tools_call, plain_call = trace_store.calls()
    assert tools_call.model == "local-b" and "lacks 'tools'" in tools_call.reason
    assert plain_call.model == "local"


def test_without_rerouting_a_tools_call_to_an_incapable_model_fails_before_any_request(local_pool: ModelPool) -> None:
    pool = local_pool.replace("local", capabilities=("streaming",))
    model = RoutedChatModel(pool=pool, traces=False, reroute_for_capabilities=False)

    with pytest.raises(RoutingError, match="lacks the 'tools' capability"):
        model.bind_tools([multiply]).invoke("What is 6 times 7?")


def test_structured_output_parses_into_a_pydantic_model(local_pool: ModelPool) -> None:
    model = RoutedChatModel(pool=local_pool, traces=False, max_tokens=32, temperature=0)

    city = model.with_structured_output(City).invoke("Paris is the capital of France. Give the city and its country.")

    assert city == City(name="Paris", country="France")


def test_structured_output_by_forced_tool_call_and_by_json_schema() -> None:
    """What each method sends, checked against a scripted OpenAI-compatible provider."""
    arguments = '{"name": "Lima", "country": "Peru"}'
    tool_call = {"id": "call_1", "type": "function", "function": {"name": "City", "arguments": arguments}}
    oslo = '{"name": "Oslo", "country": "Norway"}'
    with ScriptedProvider(Script([Reply(content="", tool_calls=[tool_call]), Reply(content=oslo)])) as provider:
        entry = provider.pool_entry(capabilities=["tools", "json", "streaming"])
        model = RoutedChatModel(pool=ModelPool.from_dict({"models": {"m": entry}}), traces=False)

        by_tool = model.with_structured_output(City, method="function_calling", include_raw=True).invoke("Lima?")
        by_schema = model.with_structured_output(City.model_json_schema()).invoke("Oslo?")

    assert by_tool["parsed"] == City(name="Lima", country="Peru") and by_tool["parsing_error"] is None
    assert by_schema == {"name": "Oslo", "country": "Norway"}
    forced, schema = (request.body for request in provider.requests)
    assert forced["tool_choice"] == {"type": "function", "function": {"name": "City"}}
    assert schema["response_format"]["json_schema"]["name"] == "City"


class Notes(TypedDict, total=False):
    topic: str
    facts: Annotated[list[str], operator.add]
    summary: str


def build_notes_graph(model: RoutedChatModel) -> StateGraph:
    """Two nodes sharing one RoutedChatModel, as a user would write them."""

    def research(state: Notes) -> Notes:
        return {"facts": [str(model.invoke(f"One short fact about {state['topic']}.").content)]}

    def summarize(state: Notes) -> Notes:
        return {"summary": str(model.invoke("Summarize in five words: " + " ".join(state["facts"])).content)}

    graph = StateGraph(Notes)
    graph.add_node("research", research)
    graph.add_node("summarize", summarize)
    graph.add_edge(START, "research")
    graph.add_edge("research", "summarize")
    graph.add_edge("summarize", END)
    return graph


def test_inside_a_langgraph_node_the_node_routing_applies(local_pool: ModelPool, trace_store: TraceStore) -> None:
    model = RoutedChatModel(pool=local_pool, routes={"summarize": "local-b"}, traces=trace_store, max_tokens=12)
    app = build_notes_graph(model).compile()

    streamed = [chunk for chunk, meta in app.stream({"topic": "the Moon"}, stream_mode="messages")]

    by_node = {call.node: call.model for call in trace_store.calls()}
    assert by_node == {"research": "local", "summarize": "local-b"}
    assert len(streamed) > 2  # LangGraph's message streaming sees the tokens, once each
    assert sum(chunk.usage_metadata["output_tokens"] for chunk in streamed if chunk.usage_metadata) == sum(
        call.output_tokens for call in trace_store.calls()
    )


def test_inside_an_optimized_app_calls_join_the_run_and_are_routed_once(
    local_pool: ModelPool, trace_store: TraceStore
) -> None:
    model = RoutedChatModel(pool=local_pool, routes={"research": "local-b"}, traces=False, max_tokens=8)
    app = optimize(build_notes_graph(model), pool=local_pool, traces=trace_store)

    app.invoke({"topic": "the Moon"})

    calls = app.last_run.calls
    assert [(call.node, call.model) for call in calls] == [("research", "local-b"), ("summarize", "local")]
    assert trace_store.calls(run_id=app.last_run.run_id) == calls


def test_langchains_cache_never_confuses_two_configurations(local_pool: ModelPool, trace_store: TraceStore) -> None:
    cache = InMemoryCache()
    short = RoutedChatModel(pool=local_pool, traces=trace_store, max_tokens=3, temperature=0, cache=cache)
    longer = short.model_copy(update={"max_tokens": 6})
    pinned = RoutedChatModel(pool=local_pool, routes={"n": "local-b"}, traces=False, max_tokens=3, cache=cache)

    first = short.invoke("Name a colour.")
    again = short.invoke("Name a colour.")
    other = longer.invoke("Name a colour.")

    assert again.content == first.content
    assert len(trace_store.calls()) == 2  # the repeat came from the cache, the other setting did not
    assert other.response_metadata["graphroute_model"] == "local"
    llm_strings = {
        m._get_llm_string()
        for m in (short, longer, pinned, RoutedChatModel(pool=local_pool.replace("local-b", output_price=9.0)))
    }
    assert len(llm_strings) == 4


def test_a_route_to_an_unknown_model_fails_when_the_model_is_built(local_pool: ModelPool) -> None:
    with pytest.raises(UnknownModelError, match="'cloud'"):
        RoutedChatModel(pool=local_pool, routes={"summarize": "cloud"})


def test_building_the_model_touches_no_disk(local_pool: ModelPool, data_home: Any) -> None:
    RoutedChatModel(pool=local_pool)

    assert not (data_home / "traces.sqlite").exists()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"name": "multiply", "arguments": {"a": 6, "b": 7}}', [("multiply", {"a": 6, "b": 7})]),
        ('```json\n{"name": "multiply", "parameters": {"a": 1, "b": 2}}\n```', [("multiply", {"a": 1, "b": 2})]),
        ('{"name": "divide", "arguments": {"a": 6}}', []),  # not a bound tool: left as text
        ("6 times 7 is 42.", []),
        ('{"name": "multiply", "arguments": {"a": 6, "b": 7}} and more', []),
    ],
)
def test_tool_calls_written_as_text_are_recovered_only_when_unambiguous(text: str, expected: list[Any]) -> None:
    tools = [{"type": "function", "function": {"name": "multiply", "parameters": {}}}]

    calls = recover_tool_calls(AIMessage(content=text), {"tools": tools})

    assert [(call["name"], call["args"]) for call in calls] == expected
