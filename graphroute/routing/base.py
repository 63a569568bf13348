"""The ``Router`` seam: every routed chat-model call passes through one ``Router.route``.

The foundation ships ``StaticRouter`` (a node → model map plus a default); the pillars'
cascade and the holistic planner implement the same interface, so ``optimize`` and
``RoutedChatModel`` never change when routing gets smarter.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field

from graphroute.pillars.base import RouteRequest, Signal


@dataclass(frozen=True)
class RouteDecision:
    """Which pool model serves a call, and why (the reason is written to the trace)."""

    model: str
    reason: str
    signals: tuple[Signal, ...] = field(default_factory=tuple)
    fallbacks: tuple[str, ...] = ()


class Router(ABC):
    """Chooses a pool model for one request."""

    @abstractmethod
    def route(self, request: RouteRequest) -> RouteDecision:
        """Decide for one call."""

    async def aroute(self, request: RouteRequest) -> RouteDecision:
        """Async twin; routers that do I/O (a judge model) override it."""
        return self.route(request)
