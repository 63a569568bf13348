"""Every error graphroute raises on purpose.

The tree, so a caller can catch as broadly or narrowly as it needs::

    GraphRouteError
    ├── ConfigError                 a pool / routing file or argument is wrong
    │   └── UnknownModelError       a name that is not in the pool
    ├── MissingExtraError           an optional feature's extra is not installed
    ├── MissingAPIKeyError          a model's ``api_key_env`` variable is unset
    ├── GraphInspectionError        the app's structure cannot be read
    ├── LocalModelError             a packaged local model is missing or corrupt
    ├── ProviderError               a model endpoint failed a call
    │   ├── EndpointUnreachableError  nothing answers at the model's URL
    │   ├── BatchExpiredError       a provider batch ended before answering the call
    │   ├── BatchRequestError       a provider batch answered the call with an error
    │   ├── LocalServerError        a managed llama.cpp server would not start
    │   └── AllModelsFailedError    every candidate failed (``graphroute.providers.resilience``)
    └── RoutingError                no model could be chosen for a call
        └── ContextWindowError      the prompt is longer than every usable model's context window

Every message names the thing to fix. No message ever contains a secret: errors carry
the *name* of an environment variable, never its value.
"""

from __future__ import annotations

from pathlib import Path


class GraphRouteError(Exception):
    """Base of every graphroute error; carries optional context for callers."""

    def __init__(
        self,
        message: str,
        *,
        model: str | None = None,
        node: str | None = None,
        run_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.model = model
        self.node = node
        self.run_id = run_id


class ConfigError(GraphRouteError):
    """A configuration file or argument is invalid."""

    def __init__(self, message: str, *, path: Path | str | None = None, entry: str | None = None) -> None:
        where = f"{path}: " if path else ""
        where += f"[{entry}] " if entry else ""
        super().__init__(where + message)
        self.path = Path(path) if path else None
        self.entry = entry


class UnknownModelError(ConfigError):
    """A model name was used that the pool does not define."""

    def __init__(
        self, name: str, known: list[str], *, path: Path | str | None = None, entry: str | None = None
    ) -> None:
        listing = ", ".join(sorted(known)) or "(the pool is empty)"
        super().__init__(
            f"unknown model {name!r}; the pool defines: {listing}. "
            "Add it under [models] in the pool file or use one of those names.",
            path=path,
            entry=entry,
        )
        self.model = name


class MissingExtraError(GraphRouteError, ImportError):
    """An optional dependency is missing; the message gives the pip line that adds it."""

    def __init__(self, feature: str, extra: str) -> None:
        super().__init__(f"{feature} needs the '{extra}' extra: pip install 'graphroute[{extra}]'")
        self.extra = extra


class MissingAPIKeyError(GraphRouteError):
    """A model needs a key from an environment variable that is not set."""

    def __init__(self, model: str, env_var: str, *, message: str | None = None) -> None:
        super().__init__(
            message
            or (
                f"model {model!r} reads its API key from ${env_var}, which is not set. "
                f"Export {env_var}=... or remove {model!r} from the routes that use it."
            ),
            model=model,
        )
        self.env_var = env_var


class GraphInspectionError(GraphRouteError):
    """The object given to ``optimize``/``inspect`` is not a LangGraph app we can read."""


class LocalModelError(GraphRouteError):
    """A packaged local model could not be found, assembled or verified."""


class ProviderError(GraphRouteError):
    """A call to a model endpoint failed."""


class EndpointUnreachableError(ProviderError):
    """Nothing answered at a model's base URL."""

    def __init__(self, model: str, base_url: str | None, cause: str) -> None:
        where = base_url or "its default URL"
        super().__init__(
            f"model {model!r}: no answer from {where} ({cause}). Start the server or fix base_url in the pool file.",
            model=model,
        )
        self.base_url = base_url


class BatchExpiredError(ProviderError):
    """A batch did not finish in time (``batch_timeout_s``, or the provider's completion window)."""

    def __init__(self, model: str, batch_id: str, why: str, *, hint: str = "") -> None:
        super().__init__(
            f"model {model!r}: batch {batch_id} {why}, so this call got no answer. {hint}"
            "Give the model a fallback in the pool file for work that cannot wait.",
            model=model,
        )
        self.batch_id = batch_id

    @classmethod
    def timed_out(cls, model: str, batch_id: str, status: str, timeout_s: float) -> BatchExpiredError:
        return cls(
            model,
            batch_id,
            f"was still {status!r} after batch_timeout_s={timeout_s:g} and was cancelled",
            hint="Raise batch_timeout_s if the provider may take longer. ",
        )

    @classmethod
    def expired(cls, model: str, batch_id: str) -> BatchExpiredError:
        return cls(model, batch_id, "expired at the provider (its completion window ended) before this call ran")


class BatchRequestError(ProviderError):
    """The provider answered one line of a batch with an error; only that call fails.

    ``status_code`` is the line's HTTP status, so a 429 or 5xx is retried like any call.
    """

    def __init__(self, model: str, batch_id: str, status_code: int | None, message: str) -> None:
        status = f"HTTP {status_code}" if status_code else "error"
        super().__init__(f"model {model!r}: batch {batch_id} answered this call with {status}: {message}", model=model)
        self.batch_id = batch_id
        self.status_code = status_code


class LocalServerError(ProviderError):
    """A managed llama.cpp server failed to start or died."""


class RoutingError(GraphRouteError):
    """No model could be chosen for a call."""


class ContextWindowError(RoutingError):
    """A prompt is longer than the context window of every model allowed to serve it.

    ``tokens`` is the prompt's estimate; ``largest_window`` the biggest window among those models.
    """

    def __init__(self, message: str, *, tokens: int, largest_window: int, node: str | None = None) -> None:
        super().__init__(message, node=node)
        self.tokens = tokens
        self.largest_window = largest_window
