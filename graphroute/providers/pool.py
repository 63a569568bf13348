"""``ModelPool``: the models a user can route to, and their live clients.

Clients are built lazily, on a model's first call, so a pool file may list a cloud model
whose key is not set in this shell: only routing a call to it raises ``MissingAPIKeyError``.
``check()`` builds every client up front for those who prefer to fail at start-up.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from langchain_core.language_models import BaseChatModel

import graphroute.providers.builtin  # noqa: F401  (registers the built-in providers)
from graphroute.config import ModelSpec, PoolConfig, RoutingConfig, load_pool_config, parse_pool_config
from graphroute.errors import ConfigError, UnknownModelError
from graphroute.providers.base import adapt_call, build_client
from graphroute.providers.local_models import DEFAULT_LOCAL_MODEL


class ModelPool:
    """The routable models, loaded from a TOML file or built in code.

    Usage::

        pool = ModelPool.from_toml("graphroute.toml")
        pool["local"].cost(1200, 300)      # USD at the entry's prices
        client = pool.client("local")      # a real LangChain chat model
    """

    def __init__(self, config: PoolConfig, *, source: Path | str | None = None) -> None:
        self.config = config
        self.source = Path(source) if source else None
        self._clients: dict[str, BaseChatModel] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_toml(cls, path: Path | str) -> ModelPool:
        return cls(load_pool_config(path), source=path)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelPool:
        """Same schema as the TOML file, already parsed (handy in tests and notebooks)."""
        return cls(parse_pool_config(data))

    @classmethod
    def default(cls) -> ModelPool:
        """The embedded local default: the packaged Qwen2.5-Coder-0.5B on a managed llama.cpp server."""
        return cls.from_dict({"models": {"local": {"provider": "llamacpp", "model": DEFAULT_LOCAL_MODEL}}})

    @classmethod
    def coerce(cls, pool: ModelPool | Path | str | None) -> ModelPool:
        """Accept what ``optimize(pool=...)`` accepts: a pool, a path, or None for the default."""
        if pool is None:
            return cls.default()
        if isinstance(pool, ModelPool):
            return pool
        if not isinstance(pool, str | Path):
            raise ConfigError(
                f"pool must be a ModelPool, the path of a pool TOML file, or None (the embedded local default); "
                f"got {type(pool).__name__}"
            )
        return cls.from_toml(pool)

    # -- lookup -----------------------------------------------------------------------------
    @property
    def names(self) -> list[str]:
        return list(self.config.models)

    @property
    def routing(self) -> RoutingConfig:
        return self.config.routing

    def __contains__(self, name: object) -> bool:
        return name in self.config.models

    def __iter__(self) -> Iterator[ModelSpec]:
        return iter(self.config.models.values())

    def __len__(self) -> int:
        return len(self.config.models)

    def __getitem__(self, name: str) -> ModelSpec:
        try:
            return self.config.models[name]
        except KeyError:
            raise UnknownModelError(name, self.names, path=self.source) from None

    def local(self) -> list[ModelSpec]:
        return [spec for spec in self if spec.is_local]

    def cloud(self) -> list[ModelSpec]:
        return [spec for spec in self if not spec.is_local]

    def default_model(self) -> str:
        """``routing.default``, else the first local model, else the first model."""
        if self.routing.default:
            return self.routing.default
        local = self.local()
        return (local[0] if local else next(iter(self))).name

    def replace(self, name: str, **changes: Any) -> ModelPool:
        """A new pool with one entry changed (e.g. pointing the cloud tier at a stand-in)."""
        spec = self[name]
        updated = ModelSpec.model_validate({**spec.model_dump(exclude_unset=True), "name": name, **changes})
        models = {**self.config.models, name: updated}
        return ModelPool(PoolConfig(models=models, routing=self.config.routing), source=self.source)

    # -- clients ----------------------------------------------------------------------------
    def client(self, name: str) -> BaseChatModel:
        """The shared client for ``name``, built (and its local server started) on first use."""
        spec = self[name]
        with self._lock:
            client = self._clients.get(name)
            if client is None:
                client = build_client(spec)
                self._clients[name] = client
            return client

    def call_kwargs(self, name: str, **params: Any) -> dict[str, Any]:
        """Neutral per-call parameters translated for ``name``'s client."""
        return adapt_call(self[name], params)

    def check(self) -> None:
        """Build every client now: missing keys and dead local servers surface at start-up."""
        for name in self.names:
            self.client(name)
