"""The ``Router`` seam: every routed chat-model call passes through one ``Router.route``.

The foundation ships ``StaticRouter`` (a node → model map plus a default); the pillars'
cascade and the holistic planner implement the same interface, so ``optimize`` and
``RoutedChatModel`` never change when routing gets smarter.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from graphroute.pillars.base import RouteRequest, Signal

if TYPE_CHECKING:
    from graphroute.pillars.bandit import Outcome


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

    def observe(self, decision: RouteDecision, outcome: Outcome) -> float | None:
        """Learn from how a call it routed ended; returns the reward given, if any.

        Dispatch calls it after every call a model answered or failed (not for cache hits).
        Routers that learn (a bandit) override it; the default learns nothing.
        """
        return None
