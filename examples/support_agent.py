"""A customer-support agent, written as any LangGraph user would — it knows nothing of graphroute.

triage ──(conditional)──► agent ◄──► tools (ToolNode: order lookup, refund policy)
   │                        └──────► END
   └──► escalate ──► END

``triage`` labels the ticket with a small model; ``agent`` answers with tools in a loop until
it has no tool call left; ``escalate`` drafts a hand-over note for a human.
"""

from __future__ import annotations

from typing import Annotated, Literal, TypedDict

from langchain_core.messages import AnyMessage, SystemMessage
from langchain_core.tools import tool
from langchain_ollama import ChatOllama
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages
from langgraph.prebuilt import ToolNode, tools_condition

ORDERS = {"A-1001": "shipped on 2 May, arriving 6 May", "A-1002": "waiting for stock"}


class SupportState(TypedDict, total=False):
    messages: Annotated[list[AnyMessage], add_messages]
    label: str


@tool
def order_status(order_id: str) -> str:
    """Where an order is, by its id (like A-1001)."""
    return ORDERS.get(order_id.strip().upper(), "no such order")


@tool
def refund_policy() -> str:
    """The refund policy, word for word."""
    return "Refunds within 30 days of delivery, to the original payment method."


TOOLS = [order_status, refund_policy]


def triage(state: SupportState) -> SupportState:
    llm = ChatOllama(model="llama3.2:1b", temperature=0, num_predict=4)
    reply = llm.invoke([SystemMessage("Label the ticket: reply 'agent' or 'human' only."), *state["messages"]])
    return {"label": "human" if "human" in str(reply.content).lower() else "agent"}


def by_label(state: SupportState) -> Literal["agent", "escalate"]:
    return "escalate" if state.get("label") == "human" else "agent"


def agent(state: SupportState) -> SupportState:
    llm = ChatOllama(model="llama3.1:8b", temperature=0, num_predict=256).bind_tools(TOOLS)
    system = SystemMessage("You are a support agent. Use the tools; answer in two sentences.")
    return {"messages": [llm.invoke([system, *state["messages"]])]}


def escalate(state: SupportState) -> SupportState:
    llm = ChatOllama(model="llama3.1:8b", temperature=0, num_predict=128)
    note = llm.invoke([SystemMessage("Summarise this ticket for a human colleague."), *state["messages"]])
    return {"messages": [note]}


def build_graph() -> StateGraph:
    graph = StateGraph(SupportState)
    graph.add_node("triage", triage)
    graph.add_node("agent", agent)
    graph.add_node("tools", ToolNode(TOOLS))
    graph.add_node("escalate", escalate)
    graph.add_edge(START, "triage")
    graph.add_conditional_edges("triage", by_label)
    graph.add_conditional_edges("agent", tools_condition)
    graph.add_edge("tools", "agent")
    graph.add_edge("escalate", END)
    return graph


app = build_graph().compile()
