"""Write, review, revise: a loop with an exit condition, as a LangGraph user would write it.

write ──► review ──(approved, or 3 rounds)──► END
  ▲          │
  └──────────┘ (changes requested)

The reviewer is a different (stronger) model than the writer; the loop ends when the reviewer
answers APPROVED or after three rounds.
"""

from __future__ import annotations

from typing import Literal, TypedDict

from langchain_core.messages import HumanMessage, SystemMessage
from langchain_openai import ChatOpenAI
from langgraph.graph import END, START, StateGraph

MAX_ROUNDS = 3


class ReviewState(TypedDict, total=False):
    task: str
    draft: str
    feedback: str
    rounds: int


def write(state: ReviewState) -> ReviewState:
    llm = ChatOpenAI(model="gpt-4o-mini", temperature=0.3, max_tokens=300)
    prompt = f"Task: {state['task']}"
    if state.get("feedback"):
        prompt += f"\nYour previous draft:\n{state['draft']}\nReviewer's feedback:\n{state['feedback']}"
    reply = llm.invoke([SystemMessage("Write a short, precise answer."), HumanMessage(prompt)])
    return {"draft": str(reply.content), "rounds": state.get("rounds", 0) + 1}


def review(state: ReviewState) -> ReviewState:
    llm = ChatOpenAI(model="gpt-4o", temperature=0, max_tokens=120)
    reply = llm.invoke(
        [
            SystemMessage("Review the draft. Reply APPROVED if it is correct and complete, else list the changes."),
            HumanMessage(f"Task: {state['task']}\nDraft:\n{state['draft']}"),
        ]
    )
    return {"feedback": str(reply.content)}


def approved(state: ReviewState) -> Literal["write", "__end__"]:
    if state["feedback"].strip().upper().startswith("APPROVED") or state["rounds"] >= MAX_ROUNDS:
        return END
    return "write"


def build_graph() -> StateGraph:
    graph = StateGraph(ReviewState)
    graph.add_node("write", write)
    graph.add_node("review", review)
    graph.add_edge(START, "write")
    graph.add_edge("write", "review")
    graph.add_conditional_edges("review", approved)
    return graph


app = build_graph().compile()
