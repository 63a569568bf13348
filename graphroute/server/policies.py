"""``router-<policy>`` model names: what a client asks for when it wants graphroute to choose.

Three forms, parsed here and turned into a ``Router`` by ``router_for``:

* ``router-default`` — the pool's own routing (``[routing]`` default and pins).
* ``router-budget-<usd>`` — at most ``<usd>`` per request (e.g. ``router-budget-0.002``).
* ``router-cloud-share-<fraction>`` — at most that fraction of requests to cloud models
  (e.g. ``router-cloud-share-0.3``).

The budget and cloud-share policies are interim until the holistic planner provides them
(``router_for`` is the one place to change): the budget router picks the priciest model whose
*estimated* cost for this request fits (price as a stand-in for quality), else the cheapest;
the cloud-share router paces requests so the running share of cloud calls never exceeds the
fraction. Both are deterministic and cheap: no model is called to decide.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from typing import Literal

from graphroute.config import ModelSpec
from graphroute.errors import ConfigError
from graphroute.pillars.base import RouteRequest
from graphroute.providers.pool import ModelPool
from graphroute.routing.base import RouteDecision, Router
from graphroute.routing.default import default_router
from graphroute.routing.windows import estimate_tokens as text_tokens

PREFIX = "router-"
PolicyKind = Literal["default", "budget", "cloud-share"]
# Output tokens assumed by the budget estimate when the request sets no max_tokens.
DEFAULT_OUTPUT_TOKENS = 256
MAX_TOKENS_KEY = "graphroute_max_tokens"  # run metadata the server sets for the budget estimate


@dataclass(frozen=True)
class Policy:
    """A parsed ``router-...`` name."""

    kind: PolicyKind
    value: float | None = None

    @property
    def name(self) -> str:
        return f"{PREFIX}{self.kind}" + ("" if self.value is None else f"-{self.value:g}")


def parse_policy(model: str) -> Policy | None:
    """``None`` for a name that is not a router name; ``ConfigError`` for a malformed one."""
    if not model.startswith(PREFIX):
        return None
    rest = model[len(PREFIX) :]
    if rest == "default":
        return Policy("default")
    for kind in ("budget", "cloud-share"):
        if rest.startswith(kind + "-"):
            text = rest[len(kind) + 1 :]
            try:
                value = float(text)
            except ValueError:
                break
            if kind == "budget" and math.isfinite(value) and value > 0:
                return Policy("budget", value)
            if kind == "cloud-share" and 0.0 <= value <= 1.0:
                return Policy("cloud-share", value)
            break
    raise ConfigError(
        f"{model!r} is not a router name; use router-default, router-budget-<usd per request> "
        "(e.g. router-budget-0.002) or router-cloud-share-<fraction 0..1> (e.g. router-cloud-share-0.3)"
    )


def router_for(policy: Policy, pool: ModelPool) -> Router:
    """The router serving ``policy`` (the planner's routers replace the interim ones here)."""
    if policy.kind == "budget":
        assert policy.value is not None
        return BudgetRouter(pool, policy.value)
    if policy.kind == "cloud-share":
        assert policy.value is not None
        return CloudShareRouter(pool, policy.value)
    return default_router(pool)


def estimate_tokens(request: RouteRequest) -> tuple[int, int]:
    """(input, output) tokens: the prompt's estimate (``routing/windows.py``), output = the request's
    max_tokens or a default."""
    input_tokens = text_tokens(request.text)
    requested = request.metadata.get(MAX_TOKENS_KEY)
    return input_tokens, int(requested) if requested else DEFAULT_OUTPUT_TOKENS


def _price(spec: ModelSpec) -> float:
    return spec.input_price + spec.output_price


class BudgetRouter(Router):
    """Interim ``router-budget-<usd>``: the priciest model whose estimated cost fits, else the cheapest."""

    def __init__(self, pool: ModelPool, budget_usd: float) -> None:
        self.pool = pool
        self.budget_usd = budget_usd

    def fingerprint(self) -> str:
        return f"budget:{self.budget_usd!r}"

    def route(self, request: RouteRequest) -> RouteDecision:
        input_tokens, output_tokens = estimate_tokens(request)
        costs = {spec.name: spec.cost(input_tokens, output_tokens) for spec in self.pool}
        # Stable sorts keep the pool file's order among equally priced models.
        fitting = sorted((s for s in self.pool if costs[s.name] <= self.budget_usd), key=_price, reverse=True)
        if fitting:
            chosen = fitting[0].name
            reason = (
                f"budget ${self.budget_usd:g}: {chosen!r} est. ${costs[chosen]:.6f} "
                f"({input_tokens}+{output_tokens} tokens) is the priciest that fits"
            )
            fallbacks = tuple(spec.name for spec in fitting[1:])
        else:
            chosen = min(self.pool, key=_price).name
            estimate = f"{input_tokens}+{output_tokens} tokens"
            reason = f"budget ${self.budget_usd:g}: no model fits (est. {estimate}); the cheapest"
            fallbacks = ()
        return RouteDecision(model=chosen, reason=reason, fallbacks=fallbacks)


class CloudShareRouter(Router):
    """Interim ``router-cloud-share-<f>``: paces requests so at most ``f`` of them go to the cloud.

    A request goes to the cloud model when that keeps the running share within ``f``; the
    counters live as long as the server, one set per router name.
    """

    def __init__(self, pool: ModelPool, share: float) -> None:
        self.pool = pool
        self.share = share
        local, cloud = pool.local(), pool.cloud()
        default = pool[pool.default_model()]
        self.local_model = (default if default.is_local else local[0]).name if local else None
        self.cloud_model = (default if not default.is_local else cloud[0]).name if cloud else None
        self.total = 0
        self.to_cloud = 0
        self._lock = threading.Lock()

    def fingerprint(self) -> str:
        return f"cloud-share:{self.share!r}"

    def route(self, request: RouteRequest) -> RouteDecision:
        with self._lock:
            if self.cloud_model is None or self.local_model is None:
                only = self.cloud_model or self.local_model
                assert only is not None
                self.total += 1
                return RouteDecision(model=only, reason=f"cloud share {self.share:g}: the pool has one tier only")
            use_cloud = self.to_cloud + 1 <= self.share * (self.total + 1)
            self.total += 1
            self.to_cloud += int(use_cloud)
            chosen, other = (self.cloud_model, self.local_model) if use_cloud else (self.local_model, self.cloud_model)
            reason = f"cloud share {self.share:g}: {self.to_cloud} of {self.total} requests to the cloud so far"
        return RouteDecision(model=chosen, reason=reason, fallbacks=(other,))
