"""Calls of one app's nodes, in a store that several apps write to."""

from __future__ import annotations

from graphroute import TraceStore
from graphroute.traces.records import CallRecord


def test_calls_of_several_nodes_include_the_nodes_inside_their_subgraphs(trace_store: TraceStore) -> None:
    trace_store.start_run("r1", "g")
    for node in ["plan", "report:draft", "report:title", "report_x", "triage", "plan_b", None]:
        trace_store.record_call(CallRecord("r1", node, None, "local"))

    assert [c.node for c in trace_store.calls(nodes=["plan", "report"])] == ["plan", "report:draft", "report:title"]
    assert [c.node for c in trace_store.calls(nodes={"report:title", "triage"})] == ["report:title", "triage"]
    assert [c.node for c in trace_store.calls(nodes=["report"], node="report:draft")] == ["report:draft"]
    assert trace_store.calls(nodes=[]) == []
    assert len(trace_store.calls(nodes=None)) == 7
