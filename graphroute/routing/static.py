"""``StaticRouter``: the simplest useful policy — node pins from config, else a default model."""

from __future__ import annotations

from collections.abc import Mapping

from graphroute.errors import UnknownModelError
from graphroute.graph.identity import nearest
from graphroute.pillars.base import RouteRequest
from graphroute.routing.base import RouteDecision, Router


class StaticRouter(Router):
    """Pins a node (or a whole subgraph, by its top-level name) to a model.

    A pin on ``"report"`` covers ``"report:draft"`` too, unless ``"report:draft"`` has its
    own pin: the most specific name wins.
    """

    def __init__(self, default: str, nodes: Mapping[str, str] | None = None, *, known: list[str] | None = None) -> None:
        self.default = default
        self.nodes = dict(nodes or {})
        if known is not None:
            for name in [default, *self.nodes.values()]:
                if name not in known:
                    raise UnknownModelError(name, known)

    def route(self, request: RouteRequest) -> RouteDecision:
        node = nearest(self.nodes, request.node)
        if node is not None:
            return RouteDecision(model=self.nodes[node], reason=f"node {node!r} is pinned to {self.nodes[node]!r}")
        return RouteDecision(model=self.default, reason="default model")
