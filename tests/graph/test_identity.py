"""Names of nodes inside subgraphs, and how lookups by them walk outwards.

A node inside a subgraph is named ``parent:inner``. A pin, a ladder, a plan's bin or a recorded
score for ``parent`` covers ``parent:inner`` unless ``parent:inner`` has its own.
"""

from __future__ import annotations

from graphroute.graph.identity import enclosing, nearest, pin_for


def test_a_nested_node_is_enclosed_by_each_subgraph_around_it_innermost_first() -> None:
    assert list(enclosing("report:draft:outline")) == ["report:draft:outline", "report:draft", "report"]
    assert list(enclosing("solve")) == ["solve"]
    assert list(enclosing(None)) == [] and list(enclosing("")) == []


def test_the_most_specific_name_wins() -> None:
    names = {"report", "report:draft"}

    assert nearest(names, "report:draft:outline") == "report:draft"
    assert nearest(names, "report:review") == "report"
    assert nearest(names, "search") is None


def test_a_pin_on_a_subgraph_covers_its_nodes_unless_they_have_their_own() -> None:
    pins = {"report": "cloud-large", "report:draft": "local-small"}

    assert pin_for(pins, "report:review") == "cloud-large"
    assert pin_for(pins, "report:draft") == "local-small"
    assert pin_for(pins, "search") is None
