"""Node-state and model-response caches in Redis, shared by every worker of an app.

Why not LangGraph's own ``RedisCache``: it joins namespaces with ``:`` (so ``("a:b",)`` and
``("a", "b")`` collide), clears with ``KEYS`` (blocks the server), swallows every error, and
cannot report hits to graphroute's run scope. ``RedisNodeCache`` keeps the same
``langgraph.cache.base.BaseCache`` contract (the conformance suite runs both) and the same
value encoding as ``DiskNodeCache``.

Keys: ``<prefix>node:<namespace>\\x1f<key>`` and ``<prefix>resp:<sha256>``; the prefix (default
``graphroute:``) keeps two apps sharing one Redis apart. Prompts never appear in keys.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from typing import Any

from langchain_core.caches import RETURN_VAL_TYPE
from langchain_core.caches import BaseCache as LLMCache
from langgraph.cache.base import BaseCache, FullKey, Namespace
from langgraph.checkpoint.serde.base import SerializerProtocol

from graphroute.cache.nodes import decode_typed, encode_typed, namespace_prefix, node_entry_key
from graphroute.cache.responses import decode_generations, encode_generations, entry_key
from graphroute.cache.scope import current_scope
from graphroute.scaleout.urls import redact, redis_client, split_prefix

_GLOB_SPECIAL = "\\*?[]^-"


def _glob_escape(text: str) -> str:
    return "".join("\\" + char if char in _GLOB_SPECIAL else char for char in text)


def _delete_matching(client: Any, pattern: str) -> int:
    """Delete keys matching ``pattern`` with SCAN (never KEYS, which blocks the server)."""
    deleted, batch = 0, []
    for key in client.scan_iter(match=pattern, count=1000):
        batch.append(key)
        if len(batch) >= 500:
            deleted += client.unlink(*batch)
            batch.clear()
    if batch:
        deleted += client.unlink(*batch)
    return deleted


class RedisNodeCache(BaseCache[Any]):
    """LangGraph's node-cache contract on Redis: shared by processes and machines, with TTLs.

    Usage::

        app = builder.compile(cache=RedisNodeCache("redis://cache:6379/0?prefix=my-app"))
    """

    def __init__(self, url: str, *, prefix: str | None = None, serde: SerializerProtocol | None = None) -> None:
        super().__init__(serde=serde)
        plain, self.prefix = split_prefix(url, prefix)
        self.url = redact(plain)  # the client holds the credentials; nothing else keeps them
        self._client = redis_client(plain)

    def _key(self, namespace: Sequence[str], key: str) -> str:
        return f"{self.prefix}node:{node_entry_key(namespace, key)}"

    def get(self, keys: Sequence[FullKey]) -> dict[FullKey, Any]:
        """Cached values for the keys that are present and not expired."""
        if not keys:
            return {}
        started = time.perf_counter()
        blobs = self._client.mget([self._key(namespace, key) for namespace, key in keys])
        found = {
            (tuple(namespace), key): decode_typed(self.serde, blob)
            for (namespace, key), blob in zip(keys, blobs, strict=True)
            if blob is not None
        }
        scope = current_scope()
        if scope is not None:
            scope.node_lookups(keys, found, (time.perf_counter() - started) * 1000)
        return found

    async def aget(self, keys: Sequence[FullKey]) -> dict[FullKey, Any]:
        return await asyncio.to_thread(self.get, keys)

    def set(self, pairs: Mapping[FullKey, tuple[Any, int | None]]) -> None:
        """Store values; a ``None`` TTL keeps the entry until cleared (or evicted by Redis)."""
        if not pairs:
            return
        pipe = self._client.pipeline(transaction=True)
        for (namespace, key), (value, ttl) in pairs.items():
            pipe.set(self._key(namespace, key), encode_typed(self.serde, value), ex=ttl if ttl else None)
        pipe.execute()

    async def aset(self, pairs: Mapping[FullKey, tuple[Any, int | None]]) -> None:
        await asyncio.to_thread(self.set, pairs)

    def clear(self, namespaces: Sequence[Namespace] | None = None) -> None:
        """Remove the given namespaces' entries, or every node entry under this prefix."""
        base = _glob_escape(self.prefix) + "node:"
        if namespaces is None:
            _delete_matching(self._client, base + "*")
            return
        for namespace in namespaces:
            _delete_matching(self._client, base + _glob_escape(namespace_prefix(namespace)) + "*")

    async def aclear(self, namespaces: Sequence[Namespace] | None = None) -> None:
        await asyncio.to_thread(self.clear, namespaces)

    def __len__(self) -> int:
        return sum(1 for _ in self._client.scan_iter(match=_glob_escape(self.prefix) + "node:*", count=1000))

    def close(self) -> None:
        self._client.close()

    def __repr__(self) -> str:
        return f"RedisNodeCache({self.url!r}, prefix={self.prefix!r})"


class RedisResponseCache(LLMCache):
    """Model answers in Redis (LangChain's cache interface), same keys and encoding as ``ResponseCache``."""

    def __init__(self, url: str, *, prefix: str | None = None, ttl: float | None = None) -> None:
        plain, self.prefix = split_prefix(url, prefix)
        self.url = redact(plain)  # the client holds the credentials; nothing else keeps them
        self.ttl = ttl
        self._client = redis_client(plain)

    def _key(self, prompt: str, llm_string: str) -> str:
        return f"{self.prefix}resp:{entry_key(prompt, llm_string)}"

    def lookup(self, prompt: str, llm_string: str) -> RETURN_VAL_TYPE | None:
        blob = self._client.get(self._key(prompt, llm_string))
        return None if blob is None else decode_generations(blob.decode())

    def update(self, prompt: str, llm_string: str, return_val: RETURN_VAL_TYPE) -> None:
        ttl_ms = int(self.ttl * 1000) if self.ttl else None
        self._client.set(self._key(prompt, llm_string), encode_generations(return_val), px=ttl_ms)

    def clear(self, **kwargs: Any) -> None:
        _delete_matching(self._client, _glob_escape(self.prefix) + "resp:*")

    def __len__(self) -> int:
        return sum(1 for _ in self._client.scan_iter(match=_glob_escape(self.prefix) + "resp:*", count=1000))

    def close(self) -> None:
        self._client.close()

    def __repr__(self) -> str:
        return f"RedisResponseCache({self.url!r}, prefix={self.prefix!r})"
