"""Storage locations as users write them: a path (local default) or a ``redis://`` / ``postgresql://`` URL.

Why one parser: the scheme decides the backend everywhere (caches, bandit, pacer, traces), and
every place that echoes a location must hide its password the same way.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from graphroute.errors import ConfigError, MissingExtraError

Backend = Literal["local", "redis", "postgres"]

REDIS_SCHEMES = ("redis", "rediss", "unix")
POSTGRES_SCHEMES = ("postgresql", "postgres")
DEFAULT_PREFIX = "graphroute:"


def backend_of(location: Path | str | None, *, what: str, allowed: tuple[Backend, ...]) -> Backend:
    """Which backend a location names; a scheme outside ``allowed`` is a ``ConfigError`` naming it."""
    if location is None or isinstance(location, Path) or "://" not in str(location):
        backend: Backend = "local"
        scheme = ""
    else:
        scheme = urlsplit(str(location)).scheme.lower()
        if scheme in REDIS_SCHEMES:
            backend = "redis"
        elif scheme in POSTGRES_SCHEMES:
            backend = "postgres"
        else:
            raise ConfigError(
                f"{what}: unknown URL scheme {scheme!r} in {redact(str(location))!r}; "
                f"use a path or one of: {', '.join(_schemes(allowed))}"
            )
    if backend not in allowed:
        raise ConfigError(
            f"{what}: {scheme or 'a local path'} is not supported here ({redact(str(location))!r}); "
            f"use one of: {', '.join(_schemes(allowed))}"
        )
    return backend


def _schemes(allowed: tuple[Backend, ...]) -> list[str]:
    names = {"local": "a local path", "redis": "redis://", "postgres": "postgresql://"}
    return [names[backend] for backend in allowed]


def is_url(location: Any) -> bool:
    return isinstance(location, str) and "://" in location


def redact(url: str) -> str:
    """The URL with any password replaced by ``***`` (safe for logs, errors and reports)."""
    if "://" not in url:
        return url
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        credentials, host = netloc.rsplit("@", 1)
        user = credentials.split(":", 1)[0]
        netloc = f"{user}:***@{host}" if ":" in credentials else f"{user}@{host}"
    query = urlencode([(k, "***" if "pass" in k.lower() else v) for k, v in parse_qsl(parts.query)])
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def split_prefix(url: str, prefix: str | None = None) -> tuple[str, str]:
    """``(url without ?prefix=..., key prefix)``: the prefix namespaces one app's keys in a shared Redis."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query)
    found = [value for key, value in query if key == "prefix"]
    rest = urlencode([(key, value) for key, value in query if key != "prefix"])
    chosen = prefix or (found[-1] if found else DEFAULT_PREFIX)
    if not chosen.endswith(":"):
        chosen += ":"
    return urlunsplit((parts.scheme, parts.netloc, parts.path, rest, parts.fragment)), chosen


def redis_client(url: str) -> Any:
    """A ``redis.Redis`` for ``url`` (the ``prefix`` query argument removed)."""
    try:
        import redis
    except ImportError:
        raise MissingExtraError("a redis:// backend", "scale") from None
    plain, _ = split_prefix(url)
    try:
        return redis.Redis.from_url(plain, socket_timeout=30, health_check_interval=30)
    except ValueError as error:
        raise ConfigError(f"invalid Redis URL {redact(url)!r}: {error}") from None


class StoreLocation(str):
    """A database URL shown with its password hidden; ``.name`` is the database name.

    Stands where a SQLite store has its ``Path``: printed in reports and errors, never leaking.
    """

    def __new__(cls, url: str) -> StoreLocation:
        return super().__new__(cls, redact(url))

    @property
    def name(self) -> str:
        return urlsplit(str(self)).path.lstrip("/") or str(self)
