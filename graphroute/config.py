"""The pool file (``graphroute.toml``): pydantic models, TOML loading, friendly errors.

Why pydantic: the file is written by hand, and a typo must fail loudly with the file, the
entry and the field named, not surface later as a wrong route. Every model forbids unknown
keys for that reason.

A complete file::

    [routing]
    default = "local"              # model for calls no rule below covers
    [routing.nodes]
    summarize = "cloud"            # pin a node (``parent:inner`` inside a subgraph)

    [models.local]
    provider = "llamacpp"
    model = "qwen2.5-coder-0.5b-instruct"   # packaged model, or a path to a .gguf file
    locality = "local"

    [models.cloud]
    provider = "openai"
    model = "gpt-4o-mini"
    api_key_env = "OPENAI_API_KEY"
    input_price = 0.15             # USD per 1M input tokens
    output_price = 0.60
    locality = "cloud"
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from graphroute.errors import ConfigError, UnknownModelError
from graphroute.pillars.rules import RulesConfig

# Built-ins; packages add their own through the ``graphroute.providers`` entry-point group.
BUILTIN_PROVIDERS = ("openai", "openai-compatible", "ollama", "llamacpp")
Locality = Literal["local", "cloud"]
Capability = Literal["tools", "json", "streaming", "vision"]

_PROVIDER_DEFAULT_LOCALITY: dict[str, Locality] = {
    "openai": "cloud",
    "openai-compatible": "cloud",
    "ollama": "local",
    "llamacpp": "local",
}

_BATCH_API_PROVIDERS = ("openai", "openai-compatible")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LlamaCppOptions(_Strict):
    """How a managed llama.cpp server is started (``provider = "llamacpp"`` only)."""

    context_size: int = Field(4096, gt=0, description="total context, shared by the slots")
    parallel: int = Field(8, gt=0, description="parallel slots (continuous batching)")
    threads: int | None = Field(None, gt=0, description="CPU threads; default: all cores")
    startup_timeout_s: float = Field(120.0, gt=0)


class ModelSpec(_Strict):
    """One routable model. Keys are never stored: only the name of their env variable."""

    name: str
    provider: str
    model: str = Field(description="provider's model id, or packaged model name / .gguf path")
    base_url: str | None = None
    api_key_env: str | None = None
    input_price: float = Field(0.0, ge=0, description="USD per 1M input tokens")
    output_price: float = Field(0.0, ge=0, description="USD per 1M output tokens")
    locality: Locality | None = None
    context_window: int = Field(4096, gt=0)
    capabilities: tuple[Capability, ...] = ("streaming", "tools", "json")
    timeout_s: float = Field(120.0, gt=0)
    max_retries: int = Field(2, ge=0, description="retries on 429/5xx/connection errors, with backoff")
    retry_delay_s: float = Field(0.5, ge=0, description="first backoff delay; doubles per retry, with jitter")
    label: str | None = Field(None, description="shown beside the name in reports")
    fallbacks: tuple[str, ...] = Field((), description="models to try, in order, when this one fails")
    llamacpp: LlamaCppOptions | None = None
    # Opt-in provider Batch API (openai / openai-compatible): cheaper, answers within hours.
    batch_api: bool = Field(False, description="send calls through the provider's Batch API, not one by one")
    batch_window_ms: float = Field(200.0, ge=0, le=600_000, description="how long calls are collected per batch")
    batch_max_requests: int = Field(1000, ge=1, le=50_000, description="a batch is sent as soon as it holds this many")
    batch_poll_s: float = Field(10.0, gt=0, description="seconds between batch status checks")
    batch_timeout_s: float = Field(86_400.0, gt=0, description="a batch not finished by then fails its calls")

    @field_validator("provider")
    @classmethod
    def _known_provider(cls, provider: str) -> str:
        from graphroute.providers.base import known_providers  # the registry imports this module

        known = known_providers()
        if provider not in known:
            raise ValueError(f"unknown provider {provider!r}; use one of {', '.join(repr(p) for p in known)}")
        return provider

    @model_validator(mode="after")
    def _fill_and_check(self) -> ModelSpec:
        if self.locality is None:
            object.__setattr__(self, "locality", _PROVIDER_DEFAULT_LOCALITY.get(self.provider, "cloud"))
        if self.provider == "openai-compatible" and not self.base_url:
            raise ValueError("provider 'openai-compatible' needs base_url (e.g. http://127.0.0.1:8000/v1)")
        if self.provider == "openai" and not self.api_key_env:
            raise ValueError("provider 'openai' needs api_key_env (e.g. api_key_env = \"OPENAI_API_KEY\")")
        if self.llamacpp is not None and self.provider != "llamacpp":
            raise ValueError('[llamacpp] options only apply to provider = "llamacpp"')
        if self.provider == "llamacpp":
            # A managed server splits its context among its slots: one request sees only its share.
            options = self.llamacpp or LlamaCppOptions()
            per_slot = options.context_size // options.parallel
            if "context_window" not in self.model_fields_set:
                object.__setattr__(self, "context_window", per_slot)
            elif self.context_window > per_slot:
                raise ValueError(
                    f"context_window = {self.context_window} exceeds what one request gets from the managed "
                    f"server ([llamacpp] context_size {options.context_size} / parallel {options.parallel} = "
                    f"{per_slot}); raise context_size or lower parallel or context_window"
                )
        if self.batch_api and self.provider not in _BATCH_API_PROVIDERS:
            raise ValueError(
                f"batch_api = true needs a provider with a Batch API ('openai' or 'openai-compatible'), "
                f"not {self.provider!r}; remove batch_api or change the provider"
            )
        # Only options that differ from their defaults count: a dumped-and-reloaded spec sets them all.
        stray = sorted(
            name
            for name in self.model_fields_set
            if name.startswith("batch_") and name != "batch_api" and getattr(self, name) != _BATCH_DEFAULTS[name]
        )
        if stray and not self.batch_api:
            verb = "applies" if len(stray) == 1 else "apply"
            raise ValueError(f"{', '.join(stray)} {verb} only with batch_api = true; set it or remove them")
        return self

    @property
    def is_local(self) -> bool:
        return self.locality == "local"

    def cost(self, input_tokens: int, output_tokens: int) -> float:
        """USD for one call at this model's prices."""
        return (input_tokens * self.input_price + output_tokens * self.output_price) / 1_000_000


_BATCH_DEFAULTS = {name: field.default for name, field in ModelSpec.model_fields.items() if name.startswith("batch_")}


class RoutingConfig(_Strict):
    """The foundation's per-node policy: pins plus a default."""

    default: str | None = Field(None, description="model for unpinned calls; default: first local model")
    nodes: dict[str, str] = Field(default_factory=dict, description="node name → model name")
    pillars: list[str] | None = Field(
        None,
        description="pillars asked for each call's difficulty, in order (rules, semantic, judge, a plug-in's "
        "name): unpinned calls are routed by them (under a budget: they pick each call's rung); unset: the "
        "default model (under a budget: the rules alone)",
    )

    @field_validator("pillars")
    @classmethod
    def _known_pillars(cls, pillars: list[str] | None) -> list[str] | None:
        from graphroute.pillars.registry import available

        if pillars is None:
            return None
        if not pillars:
            raise ValueError("name at least one pillar, or leave pillars out")
        installed = available()
        for name in pillars:
            if name not in installed:
                raise ValueError(f"unknown pillar {name!r}; installed pillars: {', '.join(installed)}")
        return pillars


class StorageConfig(_Strict):
    """Where an app's state lives: a path keeps the local default, a URL a backend many workers share."""

    traces: str | None = Field(default=None, description="trace store: a SQLite path or a postgresql:// URL")
    cache: str | None = Field(
        default=None, description="node and answer caches (when caching is on): a directory or redis://"
    )


class PoolConfig(_Strict):
    """The whole file."""

    models: dict[str, ModelSpec]
    routing: RoutingConfig = RoutingConfig()
    rules: RulesConfig = RulesConfig()
    storage: StorageConfig = StorageConfig()

    @model_validator(mode="before")
    @classmethod
    def _names_from_keys(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("models"), dict):
            models = {}
            for key, entry in data["models"].items():
                if isinstance(entry, dict):
                    if "name" in entry and entry["name"] != key:
                        raise ValueError(f"models.{key}: name {entry['name']!r} differs from its table key")
                    entry = {**entry, "name": key}
                models[key] = entry
            data = {**data, "models": models}
        return data


def _describe(error: ValidationError) -> tuple[str | None, str]:
    """First validation problem as (entry, human message)."""
    first = error.errors()[0]
    loc = [str(part) for part in first["loc"]]
    entry = ".".join(loc[:2]) if loc[:1] == ["models"] and len(loc) >= 2 else ".".join(loc[:1]) or None
    field = loc[-1] if loc else ""
    kind = first["type"]
    if kind == "extra_forbidden":
        message = f"unknown key {field!r}; check its spelling against the pool file reference in the README"
    elif kind == "missing" and loc == ["models"]:
        entry = None
        message = (
            "no models: a pool needs at least one [models.<name>] table, e.g. [models.local] with "
            'provider = "llamacpp" and model = "qwen2.5-coder-0.5b-instruct"'
        )
    elif kind == "missing":
        message = f"missing required key {field!r}"
    elif kind == "literal_error" and field == "provider":
        message = (
            f"unknown provider {first.get('input')!r}; use one of 'openai', 'openai-compatible', 'ollama', 'llamacpp'"
        )
    else:
        message = f"{'.'.join(loc[2:]) or field}: {first['msg']}"
    more = len(error.errors()) - 1
    if more:
        message += f" (and {more} more problem{'s' if more > 1 else ''})"
    return entry, message


def parse_pool_config(data: dict[str, Any], *, path: Path | str = "<pool>") -> PoolConfig:
    """Validate an already-parsed mapping; errors name ``path`` and the entry."""
    try:
        config = PoolConfig.model_validate(data)
    except ValidationError as error:
        entry, message = _describe(error)
        raise ConfigError(message, path=path, entry=entry) from None
    except ValueError as error:  # raised by the key-name check before field validation
        raise ConfigError(str(error), path=path) from None
    if not config.models:
        raise ConfigError("the pool defines no models; add at least one [models.<name>] table", path=path)
    known = list(config.models)
    if config.routing.default is not None and config.routing.default not in config.models:
        raise UnknownModelError(config.routing.default, known, path=path, entry="routing.default")
    for node, model in config.routing.nodes.items():
        if model not in config.models:
            raise UnknownModelError(model, known, path=path, entry=f"routing.nodes.{node}")
    _check_storage(config.storage, path)
    for spec in config.models.values():
        for fallback in spec.fallbacks:
            if fallback not in config.models:
                raise UnknownModelError(fallback, known, path=path, entry=f"models.{spec.name}.fallbacks")
    return config


def _check_storage(storage: StorageConfig, path: Path | str) -> None:
    """A storage URL with a scheme its backend cannot be: named now, not at the first run."""
    from graphroute.scaleout.urls import backend_of

    for field, allowed in (("traces", ("local", "postgres")), ("cache", ("local", "redis"))):
        try:
            backend_of(getattr(storage, field), what=field, allowed=allowed)  # type: ignore[arg-type]
        except ConfigError as error:
            raise ConfigError(str(error), path=path, entry=f"storage.{field}") from None


def load_pool_config(path: Path | str) -> PoolConfig:
    """Read and validate a pool TOML file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError("file not found; pass the path of an existing pool TOML file", path=path) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"not valid TOML: {error}", path=path) from None
    return parse_pool_config(data, path=path)
