"""Ten graph shapes written the way LangGraph users write them, each with its own fake models.

Every ``make()`` builds a fresh graph *and* the factories of the models its nodes construct,
so a test can run the original app and an optimized copy routed to identical models.
"""

from __future__ import annotations

import itertools
import operator
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, TypedDict

from langchain_core.language_models.fake_chat_models import FakeListChatModel, ParrotFakeChatModel
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.tools import tool
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.config import get_stream_writer
from langgraph.graph import END, START, StateGraph
from langgraph.types import RetryPolicy, Send, interrupt

from tests.graph.fakes import ModelFactory, ToolCallingFake


class State(TypedDict, total=False):
    question: str
    notes: Annotated[list[str], operator.add]
    answer: str
    topic: str
    draft: str
    verdict: str
    rounds: int


@dataclass
class Built:
    """A fresh app, the factories of the models its nodes build, and which node uses which."""

    graph: Any
    models: dict[str, ModelFactory]
    routes: dict[str, str]


@dataclass
class Shape:
    name: str
    make: Callable[[], Built]
    input: Any
    kinds: dict[str, str]  # every work node id -> expected kind
    edges: set[tuple[str, str, str]]  # (source, target, edge kind), START/END included
    checkpointer: bool = False
    is_async: bool = False
    raises: type[BaseException] | None = None
    parallel: bool = False  # tasks run concurrently: compare events as multisets
    resume: Any = None
    stream_kwargs: dict[str, Any] = field(default_factory=dict)


def _list(*replies: str) -> ModelFactory:
    return lambda: FakeListChatModel(responses=list(replies))


def _say(model: Any, text: str) -> str:
    get_stream_writer()({"asking": text})  # a custom stream event from every model node
    return str(model.invoke([HumanMessage(text)]).content)


# 1. linear chain ------------------------------------------------------------------------------
def make_chain() -> Built:
    models = {"outline": _list("an outline"), "write": _list("a text"), "polish": _list("a polished text")}
    outline_llm, write_llm, polish_llm = (factory() for factory in models.values())

    def outline(state: State) -> State:
        get_stream_writer()({"progress": "outline"})
        return {"notes": [_say(outline_llm, state["question"])]}

    def write(state: State) -> State:
        return {"draft": _say(write_llm, state["notes"][-1])}

    def polish(state: State) -> State:
        return {"answer": _say(polish_llm, state["draft"])}

    graph = StateGraph(State)
    for name, func in [("outline", outline), ("write", write), ("polish", polish)]:
        graph.add_node(name, func)
    graph.add_edge(START, "outline")
    graph.add_edge("outline", "write")
    graph.add_edge("write", "polish")
    graph.add_edge("polish", END)
    return Built(graph, models, {node: node for node in models})


# 2. diamond (parallel branches joined) ----------------------------------------------------------
def make_diamond() -> Built:
    models = {"pros": _list("pro one", "pro two"), "cons": _list("con one")}
    pros_llm, cons_llm = models["pros"](), models["cons"]()

    def split(state: State) -> State:
        return {"topic": state["question"].upper()}

    def pros(state: State) -> State:
        return {"notes": [_say(pros_llm, f"pros of {state['topic']}")]}

    def cons(state: State) -> State:
        return {"notes": [_say(cons_llm, f"cons of {state['topic']}")]}

    def weigh(state: State) -> State:
        return {"answer": " | ".join(sorted(state["notes"]))}

    graph = StateGraph(State)
    for name, func in [("split", split), ("pros", pros), ("cons", cons), ("weigh", weigh)]:
        graph.add_node(name, func)
    graph.add_edge(START, "split")
    graph.add_edge("split", "pros")
    graph.add_edge("split", "cons")
    graph.add_edge(["pros", "cons"], "weigh")
    graph.add_edge("weigh", END)
    return Built(graph, models, {"pros": "pros", "cons": "cons"})


# 3 and 4. conditional routers: a path_map, and a Literal return hint ---------------------------
def _router_graph(with_path_map: bool) -> Built:
    models = {"classify": _list("tech"), "expert": _list("use a mutex"), "generalist": _list("it depends")}
    classify_llm, expert_llm, general_llm = (factory() for factory in models.values())

    def classify(state: State) -> State:
        return {"topic": _say(classify_llm, state["question"])}

    def expert(state: State) -> State:
        return {"answer": _say(expert_llm, state["question"])}

    def generalist(state: State) -> State:
        return {"answer": _say(general_llm, state["question"])}

    def by_label(state: State) -> str:
        return "technical" if state["topic"] == "tech" else "general"

    def by_hint(state: State) -> Literal["expert", "generalist"]:
        return "expert" if state["topic"] == "tech" else "generalist"

    graph = StateGraph(State)
    graph.add_node("classify", classify)
    graph.add_node("expert", expert)
    graph.add_node("generalist", generalist)
    graph.add_edge(START, "classify")
    if with_path_map:
        graph.add_conditional_edges("classify", by_label, {"technical": "expert", "general": "generalist"})
    else:
        graph.add_conditional_edges("classify", by_hint)
    graph.add_edge("expert", END)
    graph.add_edge("generalist", END)
    return Built(graph, models, {node: node for node in models})


def make_router_path_map() -> Built:
    return _router_graph(with_path_map=True)


def make_router_literal() -> Built:
    return _router_graph(with_path_map=False)


# 5. a loop with an exit condition -------------------------------------------------------------
def make_loop() -> Built:
    models = {"draft": _list("draft v1", "draft v2", "draft v3"), "review": _list("revise", "revise", "approve")}
    draft_llm, review_llm = models["draft"](), models["review"]()

    def draft(state: State) -> State:
        return {"draft": _say(draft_llm, state["question"]), "rounds": state.get("rounds", 0) + 1}

    def review(state: State) -> State:
        return {"verdict": _say(review_llm, state["draft"])}

    def approved(state: State) -> Literal["draft", "__end__"]:
        return END if state["verdict"] == "approve" or state["rounds"] >= 5 else "draft"

    graph = StateGraph(State)
    graph.add_node("draft", draft)
    graph.add_node("review", review)
    graph.add_edge(START, "draft")
    graph.add_edge("draft", "review")
    graph.add_conditional_edges("review", approved)
    return Built(graph, models, {"draft": "draft", "review": "review"})


# 6. Send map-reduce ---------------------------------------------------------------------------
class Task(TypedDict):
    topic: str


def make_map_reduce() -> Built:
    models = {"worker": ParrotFakeChatModel, "reduce": _list("three facts")}
    worker_llm, reduce_llm = models["worker"](), models["reduce"]()

    def plan(state: State) -> State:
        return {"notes": []}

    def fan_out(state: State) -> list[Send]:
        return [Send("worker", {"topic": topic}) for topic in state["question"].split(",")]

    def worker(task: Task) -> State:
        return {"notes": [_say(worker_llm, f"fact about {task['topic']}")]}

    def reduce(state: State) -> State:
        return {"answer": _say(reduce_llm, "; ".join(sorted(state["notes"])))}

    graph = StateGraph(State)
    graph.add_node("plan", plan)
    graph.add_node("worker", worker)
    graph.add_node("reduce", reduce)
    graph.add_edge(START, "plan")
    graph.add_conditional_edges("plan", fan_out, ["worker"])
    graph.add_edge("worker", "reduce")
    graph.add_edge("reduce", END)
    return Built(graph, models, {"worker": "worker", "reduce": "reduce"})


# 7. nested subgraphs (two levels) --------------------------------------------------------------
def make_nested() -> Built:
    models = {"intro": _list("intro"), "detail": _list("detail"), "verify": _list("verified")}
    intro_llm, detail_llm, verify_llm = (factory() for factory in models.values())

    def detail(state: State) -> State:
        return {"notes": [_say(detail_llm, state["question"])]}

    def verify(state: State) -> State:
        return {"verdict": _say(verify_llm, state["notes"][-1])}

    def intro(state: State) -> State:
        return {"notes": [_say(intro_llm, state["question"])]}

    def finish(state: State) -> State:
        return {"answer": " / ".join(state["notes"]) + f" ({state['verdict']})"}

    inner = StateGraph(State)
    inner.add_node("detail", detail)
    inner.add_node("verify", verify)
    inner.add_edge(START, "detail")
    inner.add_edge("detail", "verify")
    inner.add_edge("verify", END)

    middle = StateGraph(State)
    middle.add_node("intro", intro)
    middle.add_node("deep", inner.compile())
    middle.add_edge(START, "intro")
    middle.add_edge("intro", "deep")
    middle.add_edge("deep", END)

    graph = StateGraph(State)
    graph.add_node("research", middle.compile())
    graph.add_node("finish", finish)
    graph.add_edge(START, "research")
    graph.add_edge("research", "finish")
    graph.add_edge("finish", END)
    routes = {"research:intro": "intro", "research:deep:detail": "detail", "research:deep:verify": "verify"}
    return Built(graph, models, routes)


# 8. create_react_agent with tools --------------------------------------------------------------
@tool
def multiply(a: int, b: int) -> int:
    """Multiply two integers."""
    get_stream_writer()({"tool": "multiply"})
    return a * b


@tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    get_stream_writer()({"tool": "add"})
    return a + b


def _agent_model() -> ToolCallingFake:
    calls = [
        {"name": "multiply", "args": {"a": 6, "b": 7}, "id": "call-1"},
        {"name": "add", "args": {"a": 40, "b": 2}, "id": "call-2"},
    ]
    return ToolCallingFake(messages=iter([AIMessage("", tool_calls=calls), AIMessage("Both are 42.")]))


def make_react_agent() -> Built:
    from langgraph.prebuilt import create_react_agent
    from langgraph.warnings import LangGraphDeprecatedSinceV10

    with warnings.catch_warnings():  # its successor lives in the `langchain` package, not installed here
        warnings.simplefilter("ignore", LangGraphDeprecatedSinceV10)
        agent = create_react_agent(_agent_model(), [multiply, add])
    return Built(agent, {"agent": _agent_model}, {"agent": "agent"})


# 9. checkpointer, thread_id and an interrupt ---------------------------------------------------
def make_interrupt() -> Built:
    models = {"propose": _list("delete 3 files"), "act": _list("done")}
    propose_llm, act_llm = models["propose"](), models["act"]()

    def propose(state: State) -> State:
        return {"draft": _say(propose_llm, state["question"])}

    def approve(state: State) -> State:
        return {"verdict": str(interrupt({"proposal": state["draft"]}))}

    def act(state: State) -> State:
        return {"answer": _say(act_llm, f"{state['draft']} ({state['verdict']})")}

    graph = StateGraph(State)
    for name, func in [("propose", propose), ("approve", approve), ("act", act)]:
        graph.add_node(name, func)
    graph.add_edge(START, "propose")
    graph.add_edge("propose", "approve")
    graph.add_edge("approve", "act")
    graph.add_edge("act", END)
    return Built(graph, models, {"propose": "propose", "act": "act"})


# 10. a node that raises, and a node that needs LangGraph's retries ----------------------------
def make_failing() -> Built:
    models = {"fetch": _list("raw data"), "parse": _list("parsed")}
    fetch_llm, parse_llm = models["fetch"](), models["parse"]()
    attempts = {"fetch": 0}

    def fetch(state: State) -> State:
        attempts["fetch"] += 1
        if attempts["fetch"] % 2:  # every first attempt fails; the retry policy runs it again
            raise ConnectionResetError("flaky upstream")
        return {"draft": _say(fetch_llm, state["question"])}

    def parse(state: State) -> State:
        _say(parse_llm, state["draft"])
        raise ValueError(f"cannot parse {state['draft']!r}")

    graph = StateGraph(State)
    graph.add_node("fetch", fetch, retry_policy=RetryPolicy(max_attempts=3, initial_interval=0.001, jitter=False))
    graph.add_node("parse", parse)
    graph.add_edge(START, "fetch")
    graph.add_edge("fetch", "parse")
    graph.add_edge("parse", END)
    return Built(graph, models, {"fetch": "fetch", "parse": "parse"})


# 11. async-only ------------------------------------------------------------------------------
def make_async_only() -> Built:
    models = {"ask": _list("async answer"), "check": _list("fine")}
    ask_llm, check_llm = models["ask"](), models["check"]()

    async def ask(state: State) -> State:
        get_stream_writer()({"asking": state["question"]})
        reply = await ask_llm.ainvoke([HumanMessage(state["question"])])
        return {"draft": str(reply.content)}

    async def check(state: State) -> State:
        chunks = [chunk.content async for chunk in check_llm.astream(state["draft"])]
        return {"answer": state["draft"], "verdict": "".join(map(str, chunks))}

    graph = StateGraph(State)
    graph.add_node("ask", ask)
    graph.add_node("check", check)
    graph.add_edge(START, "ask")
    graph.add_edge("ask", "check")
    graph.add_edge("check", END)
    return Built(graph, models, {"ask": "ask", "check": "check"})


def _chain(*nodes: str, kind: str = "plain") -> set[tuple[str, str, str]]:
    return {(a, b, kind) for a, b in itertools.pairwise(nodes)}


QUESTION = {"question": "Why is the sky blue?"}
SHAPES = [
    Shape(
        "chain",
        make_chain,
        QUESTION,
        {"outline": "llm", "write": "llm", "polish": "llm"},
        _chain(START, "outline", "write", "polish", END),
    ),
    Shape(
        "diamond",
        make_diamond,
        QUESTION,
        {"split": "function", "pros": "llm", "cons": "llm", "weigh": "function"},
        _chain(START, "split", "pros")
        | {("split", "cons", "plain"), ("pros", "weigh", "join"), ("cons", "weigh", "join"), ("weigh", END, "plain")},
        parallel=True,
    ),
    Shape(
        "router_path_map",
        make_router_path_map,
        QUESTION,
        {"classify": "llm", "expert": "llm", "generalist": "llm"},
        _chain(START, "classify")
        | {
            ("classify", "expert", "conditional"),
            ("classify", "generalist", "conditional"),
            ("expert", END, "plain"),
            ("generalist", END, "plain"),
        },
    ),
    Shape(
        "router_literal",
        make_router_literal,
        QUESTION,
        {"classify": "llm", "expert": "llm", "generalist": "llm"},
        _chain(START, "classify")
        | {
            ("classify", "expert", "conditional"),
            ("classify", "generalist", "conditional"),
            ("expert", END, "plain"),
            ("generalist", END, "plain"),
        },
    ),
    Shape(
        "loop",
        make_loop,
        QUESTION,
        {"draft": "llm", "review": "llm"},
        _chain(START, "draft", "review") | {("review", "draft", "conditional"), ("review", END, "conditional")},
    ),
    Shape(
        "map_reduce",
        make_map_reduce,
        {"question": "tides,moons,stars"},
        {"plan": "function", "worker": "llm", "reduce": "llm"},
        _chain(START, "plan") | {("plan", "worker", "send"), ("worker", "reduce", "plain"), ("reduce", END, "plain")},
        parallel=True,
    ),
    Shape(
        "nested",
        make_nested,
        QUESTION,
        {
            "research": "subgraph",
            "research:intro": "llm",
            "research:deep": "subgraph",
            "research:deep:detail": "llm",
            "research:deep:verify": "llm",
            "finish": "function",
        },
        _chain(START, "research", "finish", END)
        | _chain("research:__start__", "research:intro", "research:deep", "research:__end__")
        | _chain("research:deep:__start__", "research:deep:detail", "research:deep:verify", "research:deep:__end__")
        | {("research", "research:__start__", "enter"), ("research:deep", "research:deep:__start__", "enter")},
        stream_kwargs={"subgraphs": True},
    ),
    Shape(
        "react_agent",
        make_react_agent,
        {"messages": [("user", "What are 6*7 and 40+2?")]},
        {"agent": "llm", "tools": "tool"},
        {
            (START, "agent", "plain"),
            ("agent", "tools", "send"),
            ("agent", END, "conditional"),
            ("tools", "agent", "plain"),
        },
        parallel=True,
    ),
    Shape(
        "interrupt",
        make_interrupt,
        QUESTION,
        {"propose": "llm", "approve": "function", "act": "llm"},
        _chain(START, "propose", "approve", "act", END),
        checkpointer=True,
        resume="approved",
    ),
    Shape(
        "failing",
        make_failing,
        QUESTION,
        {"fetch": "llm", "parse": "llm"},
        _chain(START, "fetch", "parse", END),
        raises=ValueError,
    ),
    Shape(
        "async_only",
        make_async_only,
        QUESTION,
        {"ask": "llm", "check": "llm"},
        _chain(START, "ask", "check", END),
        is_async=True,
    ),
]
SHAPES_BY_NAME = {shape.name: shape for shape in SHAPES}


def compiled(shape: Shape, *, checkpointer: bool = False) -> tuple[Any, Built]:
    """The shape's app compiled as its user would (with a fresh checkpointer when it needs one)."""
    built = shape.make()
    saver = InMemorySaver() if shape.checkpointer or checkpointer else None
    if hasattr(built.graph, "compile"):
        return built.graph.compile(checkpointer=saver), built
    if saver is not None:  # an app compiled by a prebuilt (create_react_agent): recompile its builder
        built.graph = built.graph.builder.compile(checkpointer=saver)
    return built.graph, built


def loop_app() -> Any:
    """The loop shape, compiled: a target for `graphroute inspect tests/graph/shapes.py:loop_app`."""
    return make_loop().graph.compile()
