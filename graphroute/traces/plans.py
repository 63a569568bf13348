"""What replay compares: plans, each a rule mapping a recorded call to the model it would use.

The seam is ``ReplayPlan``: a name, the pool that prices its models, and ``model_for(call)``.
Anything with those three replays, so the holistic planner's plan objects plug in as they are
(or through ``RouterPlan`` with any ``Router``, since routers already answer "which model for
this request").

A *plan file* is, for now, a pool TOML, optionally headed by a ``[plan]`` table::

    [plan]
    name = "cheap-drafts"                 # default: the file name
    description = "cloud only for planning"

    [routing]
    default = "local"
    [routing.nodes]
    plan = "cloud"                        # most specific pin wins; a subgraph pin covers its nodes

    [models.local]                        # models and prices; leave [models] out to use --pool's
    provider = "llamacpp"
    model = "qwen2.5-coder-0.5b-instruct"
    [models.cloud]
    provider = "openai"
    model = "gpt-4o-mini"
    api_key_env = "OPENAI_API_KEY"
    input_price = 0.15
    output_price = 0.60

Strategies are plans that need no file: ``recorded``, ``all-local``, ``all-cloud``,
``cheapest``, ``priciest`` (see ``STRATEGIES``).
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage

from graphroute.config import ModelSpec, parse_pool_config
from graphroute.errors import ConfigError
from graphroute.pillars.base import RouteRequest
from graphroute.providers.pool import ModelPool
from graphroute.routing.base import Router
from graphroute.routing.static import StaticRouter
from graphroute.traces.records import CallRecord


@runtime_checkable
class ReplayPlan(Protocol):
    """A plan as replay sees it."""

    @property
    def name(self) -> str:
        """Shown in the table and on the plot."""
        ...

    @property
    def pool(self) -> ModelPool | None:
        """Models, prices and locality; None means the recorded costs (``RecordedPlan`` only)."""
        ...

    def model_for(self, call: CallRecord) -> str:
        """The pool model this plan would have used for the recorded call."""
        ...


@dataclass
class RecordedPlan:
    """What actually ran: each call's recorded model at its recorded cost."""

    name: str = "recorded"
    pool: ModelPool | None = None

    def model_for(self, call: CallRecord) -> str:
        return call.model


def recorded_messages(call: CallRecord) -> list[BaseMessage]:
    """The call's request rebuilt from its stored prompt (empty when texts were not kept)."""
    if not call.prompt:
        return []
    kinds: dict[str, Callable[[str], BaseMessage]] = {
        "system": SystemMessage,
        "user": HumanMessage,
        "assistant": AIMessage,
        "tool": lambda text: ToolMessage(text, tool_call_id="replayed"),
    }
    try:
        items = json.loads(call.prompt)
    except ValueError:
        return [HumanMessage(call.prompt)]
    return [kinds.get(item.get("role", "user"), HumanMessage)(str(item.get("content", ""))) for item in items]


@dataclass
class RouterPlan:
    """Any ``Router`` as a plan: replay asks it to route each recorded request again."""

    name: str
    pool: ModelPool
    router: Router
    description: str = ""

    def model_for(self, call: CallRecord) -> str:
        request = RouteRequest(messages=recorded_messages(call), node=call.node, requested_model=call.requested_model)
        model = self.router.route(request).model
        if model not in self.pool:
            raise ConfigError(f"plan {self.name!r} routes to {model!r}, which its pool does not define")
        return model


def _pool_dict(pool: ModelPool) -> dict[str, Any]:
    return {name: pool[name].model_dump(exclude={"name"}, exclude_none=True) for name in pool.names}


def load_plan(path: Path | str, *, pool: ModelPool | None = None) -> RouterPlan:
    """Read a plan file (see the module docstring); ``pool`` supplies models the file leaves out."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError("plan file not found", path=path) from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"not valid TOML: {error}", path=path) from None
    header = data.pop("plan", {})
    unknown = set(header) - {"name", "description"}
    if unknown:
        raise ConfigError(f"unknown key(s) {', '.join(sorted(unknown))}; [plan] takes name, description", path=path)
    if "models" not in data:
        if pool is None:
            raise ConfigError(
                "the plan defines no [models]; add them, or pass --pool with the models it uses", path=path
            )
        data["models"] = _pool_dict(pool)
    model_pool = ModelPool(parse_pool_config(data, path=path), source=path)
    router = StaticRouter(model_pool.default_model(), model_pool.routing.nodes, known=model_pool.names)
    return RouterPlan(str(header.get("name") or path.stem), model_pool, router, str(header.get("description", "")))


def merged_pool(pools: Iterable[ModelPool]) -> ModelPool | None:
    """Every model the pools define (the first definition of a name wins): what strategies choose from."""
    models: dict[str, Any] = {}
    for pool in pools:
        for name, entry in _pool_dict(pool).items():
            models.setdefault(name, entry)
    return ModelPool(parse_pool_config({"models": models})) if models else None


def _price(spec: ModelSpec) -> float:
    return spec.input_price + spec.output_price


def _single(name: str, pool: ModelPool, choose: Callable[[list[ModelSpec]], ModelSpec | None], why: str) -> RouterPlan:
    spec = choose(list(pool))
    if spec is None:
        raise ConfigError(f"strategy {name!r} needs {why}; the pool has: {', '.join(pool.names)}")
    return RouterPlan(name, pool, StaticRouter(spec.name), f"every call on {spec.name}")


def _cheapest(specs: list[ModelSpec]) -> ModelSpec | None:
    return min(specs, key=_price) if specs else None


def _priciest(specs: list[ModelSpec]) -> ModelSpec | None:
    return max(specs, key=_price) if specs else None


STRATEGIES: dict[str, Callable[[ModelPool], ReplayPlan]] = {
    "recorded": lambda pool: RecordedPlan(),
    "all-local": lambda pool: _single(
        "all-local", pool, lambda s: _cheapest([x for x in s if x.is_local]), "a local model"
    ),
    # The priciest cloud model stands for the strongest one: prices are what the pool knows.
    "all-cloud": lambda pool: _single(
        "all-cloud", pool, lambda s: _priciest([x for x in s if not x.is_local]), "a cloud model"
    ),
    "cheapest": lambda pool: _single("cheapest", pool, _cheapest, "a model"),
    "priciest": lambda pool: _single("priciest", pool, _priciest, "a model"),
}
"""Named plans needing no file, built on a pool; planner baselines can be added here by name."""


def strategy(name: str, pool: ModelPool | None) -> ReplayPlan:
    """The strategy ``name`` over ``pool``'s models."""
    if name not in STRATEGIES:
        raise ConfigError(f"unknown strategy {name!r}; use one of: {', '.join(STRATEGIES)}")
    if pool is None and name != "recorded":
        raise ConfigError(f"strategy {name!r} needs models and prices: pass --pool (or a --plan file)")
    return STRATEGIES[name](pool)  # type: ignore[arg-type]
