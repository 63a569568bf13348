"""A LangGraph app's structure (``inspect``), per-node profiles (``annotate``) and pictures (``render``)."""

from __future__ import annotations

from graphroute.graph.annotate import Flow, annotate, expected_run_cost
from graphroute.graph.inspect import Branch, Loop, WorkflowGraph, inspect
from graphroute.graph.profile import Complexity, NodeProfile, learn

__all__ = [
    "Branch",
    "Complexity",
    "Flow",
    "Loop",
    "NodeProfile",
    "WorkflowGraph",
    "annotate",
    "expected_run_cost",
    "inspect",
    "learn",
]
