"""graphroute: route every model call of a LangGraph app, planned for the whole workflow."""

from __future__ import annotations

from graphroute.chat_model import RoutedChatModel
from graphroute.config import ModelSpec
from graphroute.errors import (
    BatchExpiredError,
    BatchRequestError,
    ConfigError,
    ContextWindowError,
    EndpointUnreachableError,
    GraphInspectionError,
    GraphRouteError,
    LocalModelError,
    LocalServerError,
    MissingAPIKeyError,
    MissingExtraError,
    ProviderError,
    RoutingError,
    UnknownModelError,
)
from graphroute.feedback import feedback
from graphroute.optimize import OptimizedApp, RunTrace, optimize
from graphroute.pillars.base import RouteRequest, Signal
from graphroute.planning.pacing import RollingBudget
from graphroute.providers.pool import ModelPool
from graphroute.providers.resilience import AllModelsFailedError
from graphroute.routing.base import RouteDecision, Router
from graphroute.routing.static import StaticRouter
from graphroute.traces.store import CallRecord, TraceStore

__all__ = [
    "AllModelsFailedError",
    "BatchExpiredError",
    "BatchRequestError",
    "CallRecord",
    "ConfigError",
    "ContextWindowError",
    "EndpointUnreachableError",
    "GraphInspectionError",
    "GraphRouteError",
    "LocalModelError",
    "LocalServerError",
    "MissingAPIKeyError",
    "MissingExtraError",
    "ModelPool",
    "ModelSpec",
    "OptimizedApp",
    "ProviderError",
    "RollingBudget",
    "RouteDecision",
    "RouteRequest",
    "RoutedChatModel",
    "Router",
    "RoutingError",
    "RunTrace",
    "Signal",
    "StaticRouter",
    "TraceStore",
    "UnknownModelError",
    "feedback",
    "optimize",
]
