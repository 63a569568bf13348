"""How a pool entry becomes a real LangChain chat model, one builder per provider.

Builders are looked up in a registry keyed by provider name; outside packages add their own
through the ``graphroute.providers`` entry-point group, and the built-ins register the same
way (see ``providers/builtin.py``), so no closed if/elif decides what a provider is.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Any

from langchain_core.language_models import BaseChatModel

from graphroute.config import BUILTIN_PROVIDERS, ModelSpec
from graphroute.errors import ConfigError

ClientBuilder = Callable[[ModelSpec], BaseChatModel]
CallAdapter = Callable[[ModelSpec, dict[str, Any]], dict[str, Any]]

_builders: dict[str, ClientBuilder] = {}
_adapters: dict[str, CallAdapter] = {}
_loaded_entry_points = False
# Chat models are unhashable pydantic objects: key by id, hold weakly so ids are never stale.
_pool_clients: weakref.WeakValueDictionary[int, BaseChatModel] = weakref.WeakValueDictionary()


def register_provider(name: str, builder: ClientBuilder, adapter: CallAdapter | None = None) -> None:
    """Register how to build a client for ``provider = name`` and adapt per-call parameters."""
    _builders[name] = builder
    if adapter is not None:
        _adapters[name] = adapter


def _load_entry_points() -> None:
    global _loaded_entry_points
    if _loaded_entry_points:
        return
    _loaded_entry_points = True
    for entry in entry_points(group="graphroute.providers"):
        entry.load()  # importing the module registers its providers


def known_providers() -> list[str]:
    """Every provider name a pool file may use: built-ins first, then registered ones."""
    import graphroute.providers.builtin  # noqa: F401  (registers the built-ins)

    _load_entry_points()
    return list(dict.fromkeys([*BUILTIN_PROVIDERS, *_builders]))


def build_client(spec: ModelSpec) -> BaseChatModel:
    """A fresh client for ``spec``; raises ``ConfigError`` for an unregistered provider.

    The client is remembered (weakly) as a pool client, so the interception of node code
    never re-routes a call that routing itself made.
    """
    _load_entry_points()
    builder = _builders.get(spec.provider)
    if builder is None:
        raise ConfigError(f"no client builder registered for provider {spec.provider!r}", entry=f"models.{spec.name}")
    client = builder(spec)
    _pool_clients[id(client)] = client
    return client


def is_pool_client(model: BaseChatModel) -> bool:
    return _pool_clients.get(id(model)) is model


def adapt_call(spec: ModelSpec, params: dict[str, Any]) -> dict[str, Any]:
    """Translate neutral per-call parameters (temperature, max_tokens) into client kwargs."""
    _load_entry_points()
    adapter = _adapters.get(spec.provider)
    return adapter(spec, params) if adapter else params
