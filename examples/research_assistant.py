"""A research assistant, written as any LangGraph user would — it knows nothing of graphroute.

plan ──(conditional)──► research × N (Send fan-out) ──► write_report (subgraph: draft → title)
   └──────────────────► answer_directly ──────────────► write_report

Every node builds its own chat model (``ChatOllama``, as for a local Ollama box). Run it under
``graphroute.optimize`` and each of those calls is routed to a pool model instead.
"""

from __future__ import annotations

import operator
import re
from typing import Annotated, TypedDict

from langchain_core.messages import AIMessage, HumanMessage, SystemMessage
from langchain_ollama import ChatOllama
from langgraph.graph import END, START, StateGraph
from langgraph.types import Send


class ResearchState(TypedDict, total=False):
    question: str
    sub_questions: list[str]
    answers: Annotated[list[str], operator.add]
    report: str
    title: str


class ReportOutput(TypedDict):
    """What the report writer hands back: only its own keys, so ``answers`` is not appended twice."""

    report: str
    title: str


class WorkerState(TypedDict):
    sub_question: str


def _model(max_tokens: int) -> ChatOllama:
    return ChatOllama(model="llama3.1:8b", temperature=0, num_predict=max_tokens)


def plan(state: ResearchState) -> ResearchState:
    """Split the question into at most three sub-questions, one per line."""
    reply = _model(96).invoke(
        [
            SystemMessage("You split questions into simpler sub-questions, one per line, nothing else."),
            HumanMessage("What causes tides, and how do they affect fishing?"),
            AIMessage("What causes tides?\nHow do tides affect fishing?"),
            HumanMessage(state["question"]),
        ]
    )
    lines = [re.sub(r"^\s*(?:[-*•]|\d+[.)])\s*", "", line).strip() for line in str(reply.content).splitlines()]
    return {"sub_questions": [line for line in lines if line.endswith("?")][:3] or [state["question"]]}


def fan_out(state: ResearchState) -> list[Send] | str:
    """Several sub-questions are researched in parallel; a single one is answered directly."""
    if len(state["sub_questions"]) < 2:
        return "answer_directly"
    return [Send("research", {"sub_question": question}) for question in state["sub_questions"]]


def research(state: WorkerState) -> ResearchState:
    reply = _model(64).invoke(
        [
            SystemMessage("Answer in one or two short sentences."),
            HumanMessage(state["sub_question"]),
        ]
    )
    return {"answers": [f"{state['sub_question']} {reply.content}".strip()]}


def answer_directly(state: ResearchState) -> ResearchState:
    reply = _model(96).invoke([SystemMessage("Answer in two or three sentences."), HumanMessage(state["question"])])
    return {"answers": [str(reply.content)]}


def draft(state: ResearchState) -> ResearchState:
    notes = "\n".join(f"- {answer}" for answer in state.get("answers", []))
    reply = _model(128).invoke(
        [
            SystemMessage("Write a short paragraph answering the question from the notes."),
            HumanMessage(f"Question: {state['question']}\nNotes:\n{notes}"),
        ]
    )
    return {"report": str(reply.content)}


def title(state: ResearchState) -> ResearchState:
    reply = _model(16).invoke(
        [
            SystemMessage("Give this text a title of at most six words. Reply with the title only."),
            HumanMessage(state["report"]),
        ]
    )
    return {"title": str(reply.content).strip().strip('"')}


def build_report_writer() -> StateGraph:
    writer = StateGraph(ResearchState, output_schema=ReportOutput)
    writer.add_node("draft", draft)
    writer.add_node("title", title)
    writer.add_edge(START, "draft")
    writer.add_edge("draft", "title")
    writer.add_edge("title", END)
    return writer


def build_graph() -> StateGraph:
    """The app's builder; ``build_graph().compile()`` is what a user would run."""
    graph = StateGraph(ResearchState)
    graph.add_node("plan", plan)
    graph.add_node("research", research)
    graph.add_node("answer_directly", answer_directly)
    graph.add_node("write_report", build_report_writer().compile())
    graph.add_edge(START, "plan")
    graph.add_conditional_edges("plan", fan_out, ["research", "answer_directly"])
    graph.add_edge("research", "write_report")
    graph.add_edge("answer_directly", "write_report")
    graph.add_edge("write_report", END)
    return graph


# What `graphroute inspect examples/research_assistant.py:app` (or any runner) picks up.
app = build_graph().compile()
