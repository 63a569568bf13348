"""Open a store from what a user wrote: a path keeps the local default, a URL picks the shared backend.

=================  ======================  =====================================
what               local (path or None)     shared
=================  ======================  =====================================
traces             SQLite ``TraceStore``    ``postgresql://`` → PostgresTraceStore
node cache         ``DiskNodeCache``        ``redis://`` → RedisNodeCache
response cache     ``ResponseCache``        ``redis://`` → RedisResponseCache
bandit state       ``SQLiteBanditStore``    ``redis://`` → RedisBanditStore
budget spend       ``LocalLedger``          ``redis://`` → RedisSpendLedger
single flight      in process               ``redis://`` → RedisSingleFlight
=================  ======================  =====================================

An unknown scheme (or a backend that does not hold that kind of state) is a ``ConfigError``
naming the value, with any password hidden. Redis keys start with a prefix (``?prefix=`` in the
URL or ``prefix=``; default ``graphroute:``) so two apps can share one server.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from graphroute.errors import ConfigError
from graphroute.pillars.bandit import BanditStore, SQLiteBanditStore
from graphroute.planning.pacing import LocalLedger, SpendLedger
from graphroute.scaleout.urls import backend_of, is_url
from graphroute.traces.store import TraceStore, default_trace_path

Location = Path | str | None


def open_trace_store(location: TraceStore | Location = None) -> TraceStore:
    """A trace store: a ``TraceStore`` as is, a SQLite path (None: the data dir's), or ``postgresql://``."""
    if isinstance(location, TraceStore):
        return location
    if backend_of(location, what="traces", allowed=("local", "postgres")) == "postgres":
        from graphroute.scaleout.postgres import PostgresTraceStore

        return PostgresTraceStore(str(location))
    return TraceStore(location)


def open_existing_trace_store(location: TraceStore | Location = None) -> TraceStore:
    """``open_trace_store`` for reading what was recorded: a SQLite file must already exist.

    Opening a path that does not exist would create an empty database and then report "no runs"
    or "unknown run id" — a typo in the path would read as missing data.
    """
    if isinstance(location, TraceStore) or is_url(location):
        return open_trace_store(location)
    path = Path(location).expanduser() if location else default_trace_path()
    if not path.exists():
        raise ConfigError("trace database not found; point at the .sqlite file the runs were recorded in", path=path)
    return open_trace_store(path)


def open_node_cache(location: Location = None, *, prefix: str | None = None) -> Any:
    """A LangGraph node cache: a directory (None: the data dir's) or ``redis://``."""
    if backend_of(location, what="node cache", allowed=("local", "redis")) == "redis":
        from graphroute.scaleout.redis_cache import RedisNodeCache

        return RedisNodeCache(str(location), prefix=prefix)
    from graphroute.cache.nodes import DiskNodeCache

    return DiskNodeCache(location)


def open_response_cache(location: Location = None, *, ttl: float | None = None, prefix: str | None = None) -> Any:
    """A model-response cache (LangChain's interface): a directory (None: the data dir's) or ``redis://``."""
    if backend_of(location, what="response cache", allowed=("local", "redis")) == "redis":
        from graphroute.scaleout.redis_cache import RedisResponseCache

        return RedisResponseCache(str(location), prefix=prefix, ttl=ttl)
    from graphroute.cache.responses import ResponseCache

    return ResponseCache(location, ttl=ttl)


def open_bandit_store(location: BanditStore | Location = None, *, prefix: str | None = None) -> BanditStore:
    """Bandit state: a store as is, a SQLite path or ``":memory:"`` (None: the data dir's), or ``redis://``."""
    if isinstance(location, BanditStore):
        return location
    if backend_of(location, what="bandit state", allowed=("local", "redis")) == "redis":
        from graphroute.scaleout.redis_bandit import RedisBanditStore

        return RedisBanditStore(str(location), prefix=prefix)
    if location is None:
        from graphroute.paths import data_dir

        return SQLiteBanditStore(data_dir() / "bandit.sqlite")
    return SQLiteBanditStore(location)


def open_spend_ledger(
    location: SpendLedger | Location = None, *, name: str = "default", prefix: str | None = None
) -> SpendLedger:
    """Where a budget's spend is counted: this process (None) or ``redis://`` (shared by workers)."""
    if isinstance(location, SpendLedger):
        return location
    if location is None:
        return LocalLedger()
    backend_of(location, what="budget ledger", allowed=("redis",))
    from graphroute.scaleout.redis_ledger import RedisSpendLedger

    return RedisSpendLedger(str(location), name=name, prefix=prefix)


def open_single_flight(location: Location, *, prefix: str | None = None, lease_ms: int = 30_000) -> Any:
    """Cross-process single flight on ``redis://`` (in-process single flight needs no location)."""
    backend_of(location, what="single flight", allowed=("redis",))
    from graphroute.scaleout.redis_flight import RedisSingleFlight

    return RedisSingleFlight(str(location), prefix=prefix, lease_ms=lease_ms)
