"""optimize(): an unmodified app, every chat-model call routed to the pool and traced."""

from __future__ import annotations

import importlib.util
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langgraph.checkpoint.memory import InMemorySaver

from graphroute import ConfigError, GraphInspectionError, ModelPool, TraceStore, optimize
from tests.apps import TOPICS, build_capitals

SECRET = "sk-test-never-in-a-trace-4242"


@pytest.fixture(autouse=True)
def openai_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """The app's ChatOpenAI node needs a key to be constructed; routing never sends it anywhere."""
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)


class ChatModelStarts(BaseCallbackHandler):
    """An independent witness: LangChain reports each chat-model call once, with its node."""

    def __init__(self) -> None:
        self.nodes: list[str] = []

    def on_chat_model_start(self, serialized: Any, messages: Any, *, metadata: Any = None, **kwargs: Any) -> None:
        self.nodes.append((metadata or {}).get("langgraph_node"))


def test_every_call_is_traced_once_with_its_node(local_pool: ModelPool, tmp_path: Path) -> None:
    app = optimize(build_capitals(), pool=local_pool, traces=tmp_path / "t.sqlite")
    witness = ChatModelStarts()

    result = app.invoke({"topics": TOPICS}, {"callbacks": [witness]})

    calls = app.store.calls(run_id=app.last_run.run_id)
    assert Counter(call.node for call in calls) == {
        "start": 1,
        "capital": 3,  # one per Send worker
        "review:summarize": 1,  # inside the subgraph: parent:inner
        "review:check": 1,
    }
    assert len(calls) == len(witness.nodes) == 6
    assert {call.model for call in calls} == {"local"}
    assert {call.requested_model for call in calls} == {"llama3.1:8b", "gpt-4o"}
    assert all(call.output_tokens > 0 and call.input_tokens > 0 for call in calls)
    assert "paris" in " ".join(result["answers"]).lower()
    assert app.store.run(app.last_run.run_id).status == "ok"


def test_a_pinned_node_gets_exactly_that_model(local_pool: ModelPool, tmp_path: Path) -> None:
    app = optimize(build_capitals(), pool=local_pool, routes={"capital": "local-b"}, traces=tmp_path / "t.sqlite")

    app.invoke({"topics": TOPICS})

    by_node = {call.node: call.model for call in app.last_run.calls}
    assert by_node["capital"] == "local-b"
    assert {model for node, model in by_node.items() if node != "capital"} == {"local"}
    pinned = [call for call in app.last_run.calls if call.node == "capital"]
    assert all("pinned" in call.reason for call in pinned)
    assert all(call.cost_usd > 0 for call in pinned)  # local-b has prices in the test pool


def test_a_subgraph_pin_covers_its_inner_nodes(local_pool: ModelPool, tmp_path: Path) -> None:
    app = optimize(build_capitals(), pool=local_pool, routes={"review": "local-b"}, traces=tmp_path / "t.sqlite")

    app.invoke({"topics": TOPICS[:1]})

    assert {call.model for call in app.last_run.calls if call.node.startswith("review:")} == {"local-b"}


def test_no_key_reaches_the_trace_database(local_pool: ModelPool, tmp_path: Path) -> None:
    app = optimize(build_capitals(), pool=local_pool, traces=tmp_path / "t.sqlite")
    app.invoke({"topics": TOPICS[:1]})
    app.store.close()

    for path in tmp_path.glob("t.sqlite*"):
        assert SECRET.encode() not in path.read_bytes()


async def test_async_runs_are_routed_and_traced(local_pool: ModelPool, tmp_path: Path) -> None:
    app = optimize(build_capitals(), pool=local_pool, traces=tmp_path / "t.sqlite")

    await app.ainvoke({"topics": TOPICS[:2]})

    assert Counter(call.node for call in app.last_run.calls)["capital"] == 2


def test_streamed_messages_come_from_the_routed_model(local_pool: ModelPool, tmp_path: Path) -> None:
    app = optimize(build_capitals(), pool=local_pool, traces=tmp_path / "t.sqlite")

    chunks = list(app.stream({"topics": TOPICS[:1]}, stream_mode="messages", subgraphs=True))

    nodes = {metadata["langgraph_node"] for _namespace, (_message, metadata) in chunks}
    assert {"start", "capital", "summarize", "check"} <= nodes
    assert len(app.last_run.calls) == 4


def test_checkpointer_and_thread_are_honoured(local_pool: ModelPool, tmp_path: Path) -> None:
    app = optimize(build_capitals(), pool=local_pool, checkpointer=InMemorySaver(), traces=tmp_path / "t.sqlite")
    config = {"configurable": {"thread_id": "t-1"}}

    app.invoke({"topics": TOPICS[:1]}, config)

    assert app.get_state(config).values["checked"]
    assert app.store.run(app.last_run.run_id).metadata["thread_id"] == "t-1"


def test_the_example_app_runs_unmodified(local_pool: ModelPool, tmp_path: Path) -> None:
    path = Path(__file__).parents[1] / "examples" / "research_assistant.py"
    spec = importlib.util.spec_from_file_location("example_research_assistant", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    app = optimize(module.build_graph(), pool=local_pool, traces=tmp_path / "t.sqlite")

    result = app.invoke({"question": "Why is the sky blue, and why are sunsets red?"})

    calls = app.last_run.calls
    llm_nodes = {"plan", "research", "answer_directly", "write_report:draft", "write_report:title"}
    node_runs = [run.node for run in app.store.node_runs(app.last_run.run_id) if run.node in llm_nodes]
    assert Counter(call.node for call in calls) == Counter(node_runs)  # one call per LLM node run
    assert {"plan", "write_report:draft", "write_report:title"} <= {call.node for call in calls}
    assert result["report"] and result["title"]


def test_a_failed_call_keeps_everything_traced_before_it(local_pool: ModelPool, tmp_path: Path) -> None:
    broken = local_pool.replace(
        "local-b", provider="openai-compatible", base_url="http://127.0.0.1:9/v1", max_retries=0
    )
    app = optimize(build_capitals(), pool=broken, routes={"review:summarize": "local-b"}, traces=tmp_path / "t.sqlite")

    with pytest.raises(Exception, match=r"local-b.*127\.0\.0\.1:9"):
        app.invoke({"topics": TOPICS[:1]})

    store = TraceStore(tmp_path / "t.sqlite")
    [run] = store.runs()
    assert run.status == "error"
    calls = store.calls(run_id=run.run_id)
    assert [call.node for call in calls if call.error is None] == ["start", "capital"]
    assert [call.node for call in calls if call.error] == ["review:summarize"]


def test_pinning_a_node_the_graph_does_not_have_is_a_config_error(local_pool: ModelPool) -> None:
    with pytest.raises(ConfigError, match=r"routes= pins node 'capitol', which is not in the graph.*capital"):
        optimize(build_capitals(), pool=local_pool, routes={"capitol": "local"})


def test_pinning_to_an_unknown_model_is_a_config_error(local_pool: ModelPool) -> None:
    with pytest.raises(ConfigError, match=r"unknown model 'gpt-5'"):
        optimize(build_capitals(), pool=local_pool, routes={"capital": "gpt-5"})


def test_something_that_is_not_a_graph_is_refused(local_pool: ModelPool) -> None:
    with pytest.raises(GraphInspectionError, match=r"expected a LangGraph StateGraph.*got builtins\.dict"):
        optimize({"nodes": []}, pool=local_pool)


def test_interception_does_not_outlive_the_run(local_pool: ModelPool, tmp_path: Path) -> None:
    from langchain_core.language_models import BaseChatModel

    from graphroute.routing import intercept

    original = BaseChatModel._generate_with_cache
    app = optimize(build_capitals(), pool=local_pool, traces=tmp_path / "t.sqlite")
    app.invoke({"topics": TOPICS[:1]})

    assert BaseChatModel._generate_with_cache is original
    assert not intercept.is_installed()
