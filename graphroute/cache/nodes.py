"""A persistent LangGraph node cache on diskcache (SQLite files in one directory).

LangGraph ships ``InMemoryCache`` (gone when the process ends) and ``RedisCache`` (needs a
server). ``DiskNodeCache`` implements the same ``langgraph.cache.base.BaseCache`` contract on a
directory, so a node's writes survive restarts and are shared by every process pointing at
the directory; diskcache serialises concurrent writers through SQLite's own locking.

Usage::

    from langgraph.types import CachePolicy

    builder.add_node("summarise", summarise, cache_policy=CachePolicy(ttl=3600))
    app = builder.compile(cache=DiskNodeCache("~/.cache/my-app/nodes"))

Entries are stored as raw bytes (``serde`` type tag + payload), never pickled by diskcache;
a namespace is a diskcache tag, so ``clear(namespaces)`` removes exactly those entries.
While an optimized run is active, each hit is reported to the run (see ``cache/scope.py``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from langgraph.cache.base import BaseCache, FullKey, Namespace
from langgraph.checkpoint.serde.base import SerializerProtocol

from graphroute.cache.scope import current_scope
from graphroute.errors import ConfigError
from graphroute.paths import data_dir

# Separators that cannot occur in LangGraph's namespaces (module paths, node names) or keys (hex).
_NS_SEP = "\x1e"
_KEY_SEP = "\x1f"
_TYPE_SEP = b"\x00"


def default_node_cache_path() -> Path:
    return data_dir() / "cache" / "nodes"


def namespace_tag(namespace: Sequence[str]) -> str:
    """One string per namespace; ``("a:b",)`` and ``("a", "b")`` stay apart."""
    return _NS_SEP.join(namespace)


def namespace_prefix(namespace: Sequence[str]) -> str:
    """What every entry key of ``namespace`` starts with (and no other namespace's key does)."""
    return namespace_tag(namespace) + _KEY_SEP


def node_entry_key(namespace: Sequence[str], key: str) -> str:
    """The store key of one node-cache entry; every node-cache backend uses this layout."""
    return namespace_prefix(namespace) + key


class DiskNodeCache(BaseCache[Any]):
    """LangGraph's node-cache contract on a directory: persistent, process-safe, with TTLs.

    ``size_limit`` (bytes) bounds the directory; least recently stored entries go first.
    """

    def __init__(
        self,
        path: Path | str | None = None,
        *,
        serde: SerializerProtocol | None = None,
        size_limit: int = 2**30,
        timeout_s: float = 60.0,
    ) -> None:
        import diskcache

        super().__init__(serde=serde)
        self.path = Path(path).expanduser() if path is not None else default_node_cache_path()
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            self._cache = diskcache.Cache(
                str(self.path),
                size_limit=size_limit,
                tag_index=True,
                timeout=timeout_s,
                eviction_policy="least-recently-stored",
            )
        except OSError as error:
            raise ConfigError(f"cannot open the node cache directory {self.path}: {error}") from error

    # -- the contract -------------------------------------------------------------------------
    def get(self, keys: Sequence[FullKey]) -> dict[FullKey, Any]:
        """Cached values for the keys that are present and not expired."""
        started = time.perf_counter()
        found: dict[FullKey, Any] = {}
        for namespace, key in keys:
            blob = self._cache.get(node_entry_key(namespace, key))
            if blob is None:
                continue
            found[(tuple(namespace), key)] = decode_typed(self.serde, blob)
        scope = current_scope()
        if scope is not None and keys:
            elapsed_ms = (time.perf_counter() - started) * 1000
            scope.node_lookups(keys, found, elapsed_ms)
        return found

    async def aget(self, keys: Sequence[FullKey]) -> dict[FullKey, Any]:
        # SQLite may wait on another writer's lock: keep the event loop free meanwhile.
        return await asyncio.to_thread(self.get, keys)

    def set(self, pairs: Mapping[FullKey, tuple[Any, int | None]]) -> None:
        """Store values; a ``None`` TTL keeps the entry until evicted or cleared."""
        if not pairs:
            return
        encoded = [
            (node_entry_key(namespace, key), encode_typed(self.serde, value), ttl, namespace_tag(namespace))
            for (namespace, key), (value, ttl) in pairs.items()
        ]
        with self._cache.transact():
            for disk_key, blob, ttl, tag in encoded:
                self._cache.set(disk_key, blob, expire=ttl, tag=tag)

    async def aset(self, pairs: Mapping[FullKey, tuple[Any, int | None]]) -> None:
        await asyncio.to_thread(self.set, pairs)

    def clear(self, namespaces: Sequence[Namespace] | None = None) -> None:
        """Remove the given namespaces' entries, or every entry."""
        if namespaces is None:
            self._cache.clear()
            return
        for namespace in namespaces:
            self._cache.evict(namespace_tag(namespace))

    async def aclear(self, namespaces: Sequence[Namespace] | None = None) -> None:
        await asyncio.to_thread(self.clear, namespaces)

    # -- extras -------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._cache)

    def expire(self) -> int:
        """Delete expired entries now (reads already skip them); returns how many went."""
        return int(self._cache.expire())

    def check(self) -> list[str]:
        """diskcache's consistency check of the directory: an empty list means healthy."""
        return [str(warning.message) for warning in self._cache.check()]

    def close(self) -> None:
        self._cache.close()

    def __enter__(self) -> DiskNodeCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"DiskNodeCache({str(self.path)!r})"


def encode_typed(serde: Any, value: Any) -> bytes:
    """One blob from LangGraph's typed serializer: the type tag, a NUL, the payload.

    Shared by every node-cache backend, so an entry means the same bytes wherever it is kept.
    """
    type_tag, payload = serde.dumps_typed(value)
    return type_tag.encode() + _TYPE_SEP + payload


def decode_typed(serde: Any, blob: bytes) -> Any:
    type_tag, _, payload = bytes(blob).partition(_TYPE_SEP)
    return serde.loads_typed((type_tag.decode(), payload))
