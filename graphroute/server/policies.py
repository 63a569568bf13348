"""``router-<policy>`` model names: what a client asks for when it wants graphroute to choose.

Three forms, parsed here and turned into a ``Router`` by ``router_for``:

* ``router-default`` — the pool's own routing (``[routing]`` default, pins and pillars).
* ``router-budget-<usd>`` — at most ``<usd>`` per request (e.g. ``router-budget-0.002``).
* ``router-cloud-share-<fraction>`` — at most that fraction of requests to cloud models
  (e.g. ``router-cloud-share-0.3``).

A budget or a cloud share is a cap on the pool's own routing, not a replacement for it. When the
pool file names ``[routing] pillars``, every request is first routed by them as
``router-default`` would route it, and the policy only bounds the result:

* the budget keeps the pillars' choice when its *estimated* cost for this request fits, else
  takes the priciest model that fits (price as a stand-in for quality), else the cheapest — so
  an easy prompt is not sent to the priciest model just because the budget could pay for it;
* the cloud share sends a request to the cloud only when its difficulty is among the hardest
  ``<fraction>`` of the recent requests *and* the running share of cloud requests stays within
  the fraction — RouteLLM's "calibrate a threshold for a share of strong calls", kept
  calibrated online on this server's own traffic (for the first requests, before a rank means
  anything, the threshold is ``1 − fraction`` on the 0–1 difficulty scale);
* a pillar's ``local_only`` verdict (a privacy rule) is never overridden by either.

Without pillars there is no difficulty to go by: the budget buys the priciest model that fits,
and the cloud share paces requests so the running share never exceeds the fraction. Both
policies decide without calling a model beyond what the pillars themselves do.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np

from graphroute.config import ModelSpec
from graphroute.errors import ConfigError
from graphroute.pillars.base import MAX_TOKENS_KEY, RouteRequest, Signal
from graphroute.providers.pool import ModelPool
from graphroute.routing.base import RouteDecision, Router
from graphroute.routing.default import default_router
from graphroute.routing.windows import estimate_tokens as text_tokens

if TYPE_CHECKING:
    from graphroute.pillars.bandit import Outcome

PREFIX = "router-"
PolicyKind = Literal["default", "budget", "cloud-share"]
# Output tokens assumed by the budget estimate when the request sets no max_tokens.
DEFAULT_OUTPUT_TOKENS = 256
# How many recent difficulties the cloud share's threshold is read from: enough for a stable
# quantile, few enough to follow a change in the traffic within minutes.
DIFFICULTY_WINDOW = 200
# Until this many have been seen, a rank means little: the threshold is 1 − share on the
# pillars' 0–1 difficulty scale instead.
MIN_RANKED = 20
# What a request the pillars could not judge ranks as: neither among the easy nor the hard ones.
UNKNOWN_DIFFICULTY = 0.5


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


def router_for(policy: Policy, pool: ModelPool, base: Router | None = None) -> Router:
    """The router serving ``policy``: the pool's routing, capped by the policy when it has one.

    ``base``: the server's own ``router-default`` router when one was given (``create_app(router=)``);
    a budget or a share then caps its choices too.
    """
    if policy.kind == "default":
        return base or default_router(pool)
    assert policy.value is not None
    pillars = base or (default_router(pool) if pool.routing.pillars else None)
    if policy.kind == "budget":
        return BudgetRouter(pool, policy.value, pillars=pillars)
    return CloudShareRouter(pool, policy.value, pillars=pillars)


def estimate_tokens(request: RouteRequest) -> tuple[int, int]:
    """(input, output) tokens: the prompt's estimate (``routing/windows.py``), output = the request's
    max_tokens or a default."""
    input_tokens = text_tokens(request.text)
    requested = request.metadata.get(MAX_TOKENS_KEY)
    return input_tokens, int(requested) if requested else DEFAULT_OUTPUT_TOKENS


def _price(spec: ModelSpec) -> float:
    return spec.input_price + spec.output_price


def _local_only(decision: RouteDecision | None) -> bool:
    return decision is not None and any(signal.local_only for signal in decision.signals)


class _CappedRouter(Router):
    """Routes by the pillars' router when there is one, then lets the policy cap the choice."""

    def __init__(self, pillars: Router | None) -> None:
        self.pillars = pillars

    def route(self, request: RouteRequest) -> RouteDecision:
        return self._cap(request, self.pillars.route(request) if self.pillars is not None else None)

    async def aroute(self, request: RouteRequest) -> RouteDecision:
        return self._cap(request, await self.pillars.aroute(request) if self.pillars is not None else None)

    def _capped(self) -> str:
        """The capped router's part of ``fingerprint`` (cache keys): another routing, another answer."""
        if self.pillars is None:
            return ""
        from graphroute.chat_model import router_fingerprint

        return f"|{router_fingerprint(self.pillars)}"

    def observe(self, decision: RouteDecision, outcome: Outcome) -> float | None:
        """The pillars' router learns from the call as under router-default (e.g. its bandit)."""
        return self.pillars.observe(decision, outcome) if self.pillars is not None else None

    def _cap(self, request: RouteRequest, proposed: RouteDecision | None) -> RouteDecision:
        raise NotImplementedError


class BudgetRouter(_CappedRouter):
    """``router-budget-<usd>``: the pillars' choice while its estimated cost fits, else the priciest
    model that fits, else the cheapest (see the module docstring)."""

    def __init__(self, pool: ModelPool, budget_usd: float, *, pillars: Router | None = None) -> None:
        super().__init__(pillars)
        self.pool = pool
        self.budget_usd = budget_usd

    def fingerprint(self) -> str:
        return f"budget:{self.budget_usd!r}{self._capped()}"

    def _cap(self, request: RouteRequest, proposed: RouteDecision | None) -> RouteDecision:
        input_tokens, output_tokens = estimate_tokens(request)
        tokens = f"{input_tokens}+{output_tokens} tokens"
        specs = self.pool.local() if _local_only(proposed) else list(self.pool)
        costs = {spec.name: spec.cost(input_tokens, output_tokens) for spec in specs}
        signals = proposed.signals if proposed is not None else ()
        # Stable sorts keep the pool file's order among equally priced models.
        fitting = sorted((s for s in specs if costs[s.name] <= self.budget_usd), key=_price, reverse=True)
        if proposed is not None and proposed.model in costs and costs[proposed.model] <= self.budget_usd:
            estimate = costs[proposed.model]
            reason = f"{proposed.reason}; budget ${self.budget_usd:g}: est. ${estimate:.6f} ({tokens}) fits"
            return RouteDecision(model=proposed.model, reason=reason, signals=signals, fallbacks=proposed.fallbacks)
        capped = f"{proposed.reason}; " if proposed is not None else ""
        if fitting:
            chosen = fitting[0].name
            reason = (
                f"{capped}budget ${self.budget_usd:g}: {chosen!r} est. ${costs[chosen]:.6f} "
                f"({tokens}) is the priciest that fits"
            )
            return RouteDecision(chosen, reason, signals, tuple(spec.name for spec in fitting[1:]))
        chosen = min(specs, key=_price).name
        reason = f"{capped}budget ${self.budget_usd:g}: no model fits (est. {tokens}); the cheapest"
        return RouteDecision(chosen, reason, signals)


class CloudShareRouter(_CappedRouter):
    """``router-cloud-share-<f>``: at most ``f`` of the requests go to the cloud, the hardest ones
    when the pillars give a difficulty (see the module docstring).

    The counters and the recent difficulties live as long as the server, one set per router name.
    """

    def __init__(self, pool: ModelPool, share: float, *, pillars: Router | None = None) -> None:
        super().__init__(pillars)
        self.pool = pool
        self.share = share
        local, cloud = pool.local(), pool.cloud()
        default = pool[pool.default_model()]
        self.local_model = (default if default.is_local else local[0]).name if local else None
        self.cloud_model = (default if not default.is_local else cloud[0]).name if cloud else None
        self.total = 0
        self.to_cloud = 0
        self.recent: deque[float] = deque(maxlen=DIFFICULTY_WINDOW)
        self._lock = threading.Lock()

    def fingerprint(self) -> str:
        return f"cloud-share:{self.share!r}{self._capped()}"

    def _cap(self, request: RouteRequest, proposed: RouteDecision | None) -> RouteDecision:
        signals = proposed.signals if proposed is not None else ()
        difficulty = getattr(proposed, "difficulty", None)
        if difficulty is None and self.pillars is not None:
            difficulty = UNKNOWN_DIFFICULTY
        with self._lock:
            self.total += 1
            if self.cloud_model is None or self.local_model is None or _local_only(proposed):
                return self._one_tier(proposed, signals)
            use_cloud = self.to_cloud + 1 <= self.share * self.total  # never ahead of the share
            why = f"cloud share {self.share:g}"
            if difficulty is not None:
                self.recent.append(difficulty)
                if use_cloud and len(self.recent) <= MIN_RANKED:
                    use_cloud = difficulty >= 1.0 - self.share
                    why += f": d={difficulty:.2f} {'≥' if use_cloud else '<'} {1.0 - self.share:.2f} (warming up)"
                elif use_cloud:
                    # Rank, not a quantile threshold: equally hard requests all count as the top
                    # share when fewer than the share are harder (rules give few distinct levels).
                    harder = float(np.mean(np.fromiter(self.recent, float) > difficulty))
                    use_cloud = harder < self.share
                    why += f": d={difficulty:.2f}, {harder:.0%} of the last {len(self.recent)} harder"
            self.to_cloud += int(use_cloud)
            why += f"; {self.to_cloud} of {self.total} requests to the cloud so far"
        tier = self.pool.cloud() if use_cloud else self.pool.local()
        proposed_model = proposed.model if proposed is not None else None
        chosen = proposed_model if proposed_model in {spec.name for spec in tier} else None
        chosen = chosen or (self.cloud_model if use_cloud else self.local_model)
        other = self.local_model if use_cloud else self.cloud_model
        assert chosen is not None and other is not None
        prefix = f"{proposed.reason}; " if proposed is not None else ""
        return RouteDecision(chosen, prefix + why, signals, (other,))

    def _one_tier(self, proposed: RouteDecision | None, signals: tuple[Signal, ...]) -> RouteDecision:
        if _local_only(proposed):
            assert proposed is not None
            return RouteDecision(proposed.model, f"{proposed.reason}; cloud share {self.share:g}: local only", signals)
        only = self.cloud_model or self.local_model
        assert only is not None
        return RouteDecision(only, f"cloud share {self.share:g}: the pool has one tier only", signals)
