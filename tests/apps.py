"""Small LangGraph apps for tests, written the way users write them (no graphroute inside)."""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Annotated, Any, TypedDict

from langchain_core.messages import HumanMessage
from langchain_ollama import ChatOllama
from langchain_openai import ChatOpenAI
from langgraph.graph import END, START, StateGraph
from langgraph.types import Send

TOPICS = ["France", "Japan", "Peru"]


class CapitalsState(TypedDict, total=False):
    topics: list[str]
    answers: Annotated[list[str], operator.add]
    summary: str
    checked: str


def start(state: CapitalsState) -> CapitalsState:
    reply = ChatOllama(model="llama3.1:8b", temperature=0, num_predict=4).invoke("Say OK.")
    return {"answers": [f"start: {reply.content}"]}


def fan_out(state: CapitalsState) -> list[Send]:
    return [Send("capital", {"topic": topic}) for topic in state["topics"]]


def capital(state: dict[str, str]) -> CapitalsState:
    llm = ChatOllama(model="llama3.1:8b", temperature=0, num_predict=8)
    reply = llm.invoke([HumanMessage(f"What is the capital of {state['topic']}? Reply with the city only.")])
    return {"answers": [f"{state['topic']}: {reply.content}"]}


def summarize(state: CapitalsState) -> CapitalsState:
    llm = ChatOpenAI(model="gpt-4o", temperature=0, max_tokens=16)  # reads OPENAI_API_KEY, as users do
    reply = llm.invoke("List these capitals separated by commas: " + "; ".join(state["answers"]))
    return {"summary": str(reply.content)}


def check(state: CapitalsState) -> CapitalsState:
    reply = ChatOllama(model="llama3.1:8b", temperature=0, num_predict=4).invoke("Reply with the word yes.")
    return {"checked": str(reply.content)}


def build_capitals() -> StateGraph:
    """start → capital × 3 (Send) → review subgraph (summarize → check)."""
    review = StateGraph(CapitalsState)
    review.add_node("summarize", summarize)
    review.add_node("check", check)
    review.add_edge(START, "summarize")
    review.add_edge("summarize", "check")
    review.add_edge("check", END)

    graph = StateGraph(CapitalsState)
    graph.add_node("start", start)
    graph.add_node("capital", capital)
    graph.add_node("review", review.compile())
    graph.add_edge(START, "start")
    graph.add_conditional_edges("start", fan_out, ["capital"])
    graph.add_edge("capital", "review")
    graph.add_edge("review", END)
    return graph


def one_node(state: type, node: Callable[[Any], Any], name: str = "answer") -> StateGraph:
    """START → ``name`` → END: the smallest app with one model-calling node."""
    graph = StateGraph(state)
    graph.add_node(name, node)
    graph.add_edge(START, name)
    graph.add_edge(name, END)
    return graph
