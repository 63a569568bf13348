"""Which nodes are cached, for how long, keyed how — and turning that on without touching the app.

``optimize(graph, cache=CacheConfig(...))`` gives each selected node LangGraph's own
``CachePolicy`` on a copy of the compiled app (``app.copy`` / ``PregelNode.copy``), so the
user's app object is never modified. Every key starts with a hash of

* the graph's identity (``graph_identity``): two graphs sharing a node function and node name
  never read each other's entries — plain LangGraph namespaces keys by function and node
  name only;
* the node's code identity (its source, or its bytecode when the source is unavailable; for a
  subgraph, its structure and all its nodes' code): editing a node invalidates its entries.
  Helpers the node calls are not part of it — after changing one, clear the cache directory
  or give the node a key function that names a version;

followed by the node's input (LangGraph's default pickle of it, or a key function).

A node with side effects (it sends mail, writes a file, charges a card) must run every time:
mark it with ``@side_effect``, with node metadata ``{"side_effects": True}``, or list it in
``CacheConfig(side_effects=...)``. It is then never cached, and neither is a subgraph holding it
as a whole (its other nodes still are, under ``nodes="*"``).
"""

from __future__ import annotations

import hashlib
import inspect
import marshal
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

from langgraph.types import CachePolicy

from graphroute.errors import ConfigError
from graphroute.graph.identity import graph_identity

KeyFunc = Callable[..., str | bytes]
F = TypeVar("F", bound=Callable[..., Any])
SIDE_EFFECTS_ATTR = "__graphroute_side_effects__"
_DEFAULT_KEY: KeyFunc = CachePolicy().key_func  # LangGraph's: a pickle of the (frozen) input


def side_effect(func: F) -> F:
    """Mark a node function as having side effects: graphroute never caches it."""
    setattr(func, SIDE_EFFECTS_ATTR, True)
    return func


@dataclass(frozen=True)
class NodeCache:
    """How one node is cached: ``ttl`` seconds (None: until evicted); ``key`` maps the node's
    input to what identifies it (default: all of the input). A ``key`` that raises falls back
    to the whole input."""

    ttl: int | None = None
    key: KeyFunc | None = None


@dataclass(frozen=True)
class CacheConfig:
    """What ``optimize(graph, cache=...)`` caches.

    ``nodes``: ``"*"`` (every top-level node, a subgraph as a whole), node ids (``"parent:inner"``
    reaches into a subgraph), or ``{node id: NodeCache | ttl | None}``. ``ttl`` / ``key``: the
    defaults for listed nodes. ``path``: the cache directory (default ``<data dir>/cache``) or a
    ``redis://`` URL whose node and answer entries every worker shares;
    ``backend``: any LangGraph ``BaseCache`` to use for nodes instead (e.g. ``InMemoryCache()``).
    ``responses``: also cache model answers — deterministic (temperature-0) calls only, unless
    ``cache_nondeterministic``. ``semantic``: ``True`` or a ``SemanticCache`` to answer
    near-duplicate prompts (off by default; see ``cache/semantic.py``).

    Usage::

        optimize(graph, cache=CacheConfig(nodes={"research": 3600, "plan": None}, side_effects={"notify"}))
    """

    nodes: Literal["*"] | Collection[str] | Mapping[str, NodeCache | int | None] = "*"
    ttl: int | None = None
    key: KeyFunc | None = None
    side_effects: Collection[str] = ()
    path: Path | str | None = None
    backend: Any = None
    responses: bool = True
    response_ttl: float | None = None
    cache_nondeterministic: bool = False
    semantic: Any = False

    @classmethod
    def coerce(cls, value: Any) -> CacheConfig | None:
        """``None``/``False``: off; ``True``: defaults; a path: defaults there; a LangGraph cache: its backend."""
        from langgraph.cache.base import BaseCache

        if value is None or value is False:
            return None
        if value is True:
            return cls()
        if isinstance(value, cls):
            return value
        if isinstance(value, str | Path):
            return cls(path=value)
        if isinstance(value, BaseCache):
            return cls(backend=value)
        raise ConfigError(
            f"cache= takes True, a directory, a CacheConfig or a LangGraph BaseCache; got {type(value).__name__}"
        )

    def policy_for(self, node: str) -> NodeCache:
        nodes = self.nodes
        entry = nodes.get(node) if isinstance(nodes, Mapping) else None
        if isinstance(entry, NodeCache):
            return NodeCache(ttl=entry.ttl if entry.ttl is not None else self.ttl, key=entry.key or self.key)
        return NodeCache(ttl=entry if isinstance(entry, int) else self.ttl, key=self.key)


def code_identity(obj: Any) -> str:
    """A hash of what a node runs: changes when its code changes, stable across processes."""
    from langgraph.pregel import Pregel

    if isinstance(obj, Pregel):
        parts = [graph_identity(obj)] + [f"{name}={code_identity(node)}" for name, node in sorted(obj.nodes.items())]
        return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]
    target = node_callable(obj)
    if target is None:
        described = f"{type(obj).__module__}.{type(obj).__qualname__}"
        return hashlib.sha256(described.encode()).hexdigest()[:16]
    name = f"{getattr(target, '__module__', '?')}.{getattr(target, '__qualname__', '?')}"
    try:
        body = inspect.getsource(target).encode()
    except (OSError, TypeError):
        code = getattr(target, "__code__", None)
        body = marshal.dumps(code) if code is not None else repr(type(target)).encode()
    return hashlib.sha256(name.encode() + b"\n" + body).hexdigest()[:16]


def node_callable(obj: Any) -> Any:
    """The user's function behind a node (a ``PregelNode``, a runnable, or the function itself)."""
    from langgraph._internal._runnable import RunnableCallable, RunnableSeq
    from langgraph.pregel._read import PregelNode

    if isinstance(obj, PregelNode):
        obj = obj.bound
    if isinstance(obj, RunnableSeq):
        obj = obj.steps[0]
    if isinstance(obj, RunnableCallable):
        obj = obj.func or obj.afunc
    return obj if callable(obj) and hasattr(obj, "__code__") else None


def subgraph_of(node: Any) -> Any:
    """The compiled subgraph a ``PregelNode`` runs, or None for a plain node."""
    from langgraph.pregel import Pregel

    bound = getattr(node, "bound", None)
    return bound if isinstance(bound, Pregel) else None


def has_side_effects(node: Any, name: str, declared: Collection[str], prefix: str = "") -> bool:
    """Marked by decorator, node metadata or config — or, for a subgraph, any node inside it."""
    node_id = f"{prefix}{name}"
    if node_id in declared:
        return True
    if (getattr(node, "metadata", None) or {}).get("side_effects"):
        return True
    if getattr(node_callable(node), SIDE_EFFECTS_ATTR, False):
        return True
    sub = subgraph_of(node)
    if sub is not None:
        return any(
            has_side_effects(inner, inner_name, declared, f"{node_id}:")
            for inner_name, inner in sub.nodes.items()
            if not inner_name.startswith("__")
        )
    return False


def keyed(graph_id: str, node_id: str, code_id: str, key: KeyFunc | None) -> KeyFunc:
    """A key function whose keys start with the graph, node and code identities."""
    prefix = hashlib.sha256(f"{graph_id}\n{node_id}\n{code_id}".encode()).hexdigest().encode() + b"|"
    inner = key or _DEFAULT_KEY

    def key_func(*args: Any, **kwargs: Any) -> bytes:
        try:
            part = inner(*args, **kwargs)
        except Exception:
            # LangGraph also calls key functions on placeholder input when it draws the graph;
            # a user function that cannot read it falls back to the whole input: a narrower
            # key, never a wrong hit.
            part = b"whole-input|" + _as_bytes(_DEFAULT_KEY(*args, **kwargs))
        return prefix + _as_bytes(part)

    key_func.__qualname__ = f"graphroute_key[{node_id}]"
    return key_func


def _as_bytes(part: str | bytes) -> bytes:
    return part.encode() if isinstance(part, str) else bytes(part)


def select_nodes(app: Any, config: CacheConfig) -> dict[str, NodeCache]:
    """Node id → how it is cached; a side-effect node is never selected, and naming one is an error."""
    declared = set(config.side_effects)
    for node_id in declared:
        _resolve(app, node_id, "side_effects")
    if config.nodes == "*":
        selected: dict[str, NodeCache] = {}

        def walk(graph: Any, prefix: str) -> None:
            for name, node in graph.nodes.items():
                if name.startswith("__"):
                    continue
                node_id = prefix + name
                if not has_side_effects(node, name, declared, prefix):
                    selected[node_id] = config.policy_for(node_id)
                elif (sub := subgraph_of(node)) is not None:
                    walk(sub, node_id + ":")

        walk(app, "")
        return selected
    selected = {}
    for node_id in config.nodes:
        node = _resolve(app, node_id, "nodes")
        name = node_id.rsplit(":", 1)[-1]
        prefix = node_id[: len(node_id) - len(name)]
        if has_side_effects(node, name, declared, prefix):
            raise ConfigError(
                f"node {node_id!r} is marked as having side effects (or contains such a node), so it is never "
                "cached; remove it from CacheConfig(nodes=...) or drop the side-effect mark",
                entry=f"cache.nodes.{node_id}",
            )
        selected[node_id] = config.policy_for(node_id)
    return selected


def _resolve(app: Any, node_id: str, entry: str) -> Any:
    graph, node = app, None
    for depth, name in enumerate(node_id.split(":")):
        nodes = {} if graph is None else {n: v for n, v in graph.nodes.items() if not n.startswith("__")}
        if name not in nodes:
            where = ":".join(node_id.split(":")[:depth]) or "the graph"
            raise ConfigError(
                f"node {node_id!r} is not in the graph; {where} has: {', '.join(sorted(nodes)) or '(no nodes)'}",
                entry=f"cache.{entry}",
            )
        node = nodes[name]
        graph = subgraph_of(node)
    return node


def with_node_cache(app: Any, graph_id: str, selected: Mapping[str, NodeCache], backend: Any) -> tuple[Any, dict]:
    """A copy of ``app`` whose selected nodes carry a ``CachePolicy`` and which uses ``backend``.

    Also returns the map from LangGraph's cache namespace ``(function id, node name)`` to our
    node id, so a hit can be traced to the right node, inside subgraphs too.
    """
    namespaces: dict[tuple[str, str], str] = {}
    policies: dict[str, CachePolicy] = {}
    for node_id, how in selected.items():
        node = _resolve(app, node_id, "nodes")
        key = keyed(graph_id, node_id, code_identity(node), how.key)
        policies[node_id] = CachePolicy(key_func=key, ttl=how.ttl)
        namespaces[(_function_id(node), node_id.rsplit(":", 1)[-1])] = node_id
    return _copy_with(app, policies, backend), namespaces


def _copy_with(graph: Any, policies: Mapping[str, CachePolicy], backend: Any) -> Any:
    top: dict[str, CachePolicy] = {}
    nested: dict[str, dict[str, CachePolicy]] = {}
    for node_id, policy in policies.items():
        head, _, rest = node_id.partition(":")
        if rest:
            nested.setdefault(head, {})[rest] = policy
        else:
            top[head] = policy
    nodes = dict(graph.nodes)
    for name, policy in top.items():
        nodes[name] = nodes[name].copy(update={"cache_policy": policy})
    for name, inner in nested.items():
        sub = _copy_with(subgraph_of(nodes[name]), inner, backend)
        nodes[name] = nodes[name].copy(update={"bound": sub, "subgraphs": [sub]})
    return graph.copy(update={"nodes": nodes, "cache": backend})


def _function_id(node: Any) -> str:
    """LangGraph's namespace entry for a node: ``module.qualname`` of what it runs."""
    try:
        from langgraph.pregel._call import identifier

        return identifier(node) or "__dynamic__"
    except ImportError:  # a LangGraph without it: fall back to our own reading
        target = node_callable(node) or node
        return f"{getattr(target, '__module__', '?')}.{getattr(target, '__qualname__', '?')}"
