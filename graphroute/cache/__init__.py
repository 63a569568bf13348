"""Caches: LangGraph node state on disk, model responses, and (optionally) near-duplicate prompts.

* ``DiskNodeCache`` — LangGraph's ``BaseCache`` contract on a directory (persistent, process-safe).
* ``CacheConfig`` / ``NodeCache`` / ``side_effect`` — what ``optimize(graph, cache=...)`` caches.
* ``ResponseCache`` — LangChain's ``BaseCache`` for model answers, keyed by model, parameters
  and messages.
* ``SemanticCache`` — off by default; near-duplicate prompts within one node and template,
  guarded against negated and reversed questions.
"""

from __future__ import annotations

from graphroute.cache.keys import RequestIdentity, describe_request
from graphroute.cache.layer import CacheLayer
from graphroute.cache.nodes import DiskNodeCache
from graphroute.cache.policy import CacheConfig, NodeCache, code_identity, side_effect
from graphroute.cache.responses import ResponseCache
from graphroute.cache.semantic import SemanticCache, SemanticHit
from graphroute.cache.stats import CacheStats, trace_stats

__all__ = [
    "CacheConfig",
    "CacheLayer",
    "CacheStats",
    "DiskNodeCache",
    "NodeCache",
    "RequestIdentity",
    "ResponseCache",
    "SemanticCache",
    "SemanticHit",
    "code_identity",
    "describe_request",
    "side_effect",
    "trace_stats",
]
