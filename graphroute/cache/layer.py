"""An optimized app's reuse layer: node cache, response caches and batcher, wired into runs.

``optimize(graph, cache=..., batching=...)`` builds one ``CacheLayer`` per app. It installs
the node cache on a copy of the compiled app, and every run activates a ``RunScope`` so that

* node-cache hits are counted and written to the trace (``cache/scope.py``);
* each routed model call (``routing/dispatch.py``) goes: response cache → semantic cache →
  batcher (single flight + window) → provider, and its trace row says ``cache_hit``,
  ``deduped`` or ``batched``.

Answers handed out from a cache or a shared flight are copies with the caller's own message
id, so LangGraph's message reducers never see two messages with one id.
"""

from __future__ import annotations

import asyncio
import copy
import json
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from langchain_core.messages import BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult, Generation
from langchain_core.utils.utils import LC_ID_PREFIX

from graphroute.batching.batcher import BatchConfig, Batcher
from graphroute.cache.keys import RequestIdentity, describe_request
from graphroute.cache.policy import CacheConfig, select_nodes, with_node_cache
from graphroute.cache.responses import decode_generations, encode_generations
from graphroute.cache.scope import RunScope, active_scope
from graphroute.cache.semantic import SemanticCache
from graphroute.cache.stats import CacheStats
from graphroute.config import LlamaCppOptions
from graphroute.paths import data_dir
from graphroute.providers.pool import ModelPool
from graphroute.scaleout.factory import open_node_cache, open_response_cache, open_single_flight
from graphroute.scaleout.urls import is_url


class CacheLayer:
    """The caches and batcher of one optimized app (see the module docstring)."""

    def __init__(self, pool: ModelPool, cache: CacheConfig | None, batching: BatchConfig | None) -> None:
        self.pool = pool
        self.config = cache
        # A redis:// location shares node state and answers between workers; the semantic
        # cache's vectors stay on this machine (the data dir's cache).
        location = (cache.path or pool.config.storage.cache) if cache is not None else None
        self.shared = str(location) if is_url(location) else None
        root = Path(location).expanduser() if location and not self.shared else data_dir() / "cache"
        self.root = root
        self.node_backend: Any = None
        self.responses: Any = None  # LangChain's BaseCache: ResponseCache or RedisResponseCache
        self.semantic: SemanticCache | None = None
        if cache is not None and cache.responses:
            self.responses = open_response_cache(self.shared or root / "responses", ttl=cache.response_ttl)
        if cache is not None and cache.semantic:
            semantic = cache.semantic
            self.semantic = semantic if isinstance(semantic, SemanticCache) else SemanticCache(path=root / "semantic")
        self.batcher = Batcher(batching, capacity_for=self._capacity) if batching is not None else None
        # Workers sharing answers also share flights: an identical request in flight on another
        # worker is waited for, not sent again (a short Redis lock per request digest).
        self.flights = open_single_flight(self.shared) if self.shared and self.responses is not None else None
        self._namespaces: dict[tuple[str, str], str] = {}
        self._short_names: dict[str, str] = {}

    @classmethod
    def build(cls, pool: ModelPool, cache: Any, batching: Any) -> CacheLayer | None:
        """A layer for ``optimize``'s ``cache=`` / ``batching=`` arguments; None when both are off."""
        cache_config = CacheConfig.coerce(cache)
        batch_config = BatchConfig.coerce(batching)
        if cache_config is None and batch_config is None:
            return None
        return cls(pool, cache_config, batch_config)

    def _capacity(self, model: str) -> int | None:
        """How many requests a model serves at once: a managed llama.cpp server's slots, a Batch API
        model's batch size (``max_in_flight`` must not split its batches), else unknown."""
        spec = self.pool[model]
        if spec.provider == "llamacpp":
            return (spec.llamacpp or LlamaCppOptions()).parallel
        if spec.batch_api:
            return spec.batch_max_requests
        return None

    # -- node cache ---------------------------------------------------------------------------
    def install(self, app: Any, graph_id: str) -> Any:
        """The app with node caching on (a copy), or the app itself when node caching is off."""
        if self.config is None:
            return app
        selected = select_nodes(app, self.config)
        if not selected:
            return app
        self.node_backend = self.config.backend or open_node_cache(self.shared or self.root / "nodes")
        cached_app, self._namespaces = with_node_cache(app, graph_id, selected, self.node_backend)
        self._short_names = {short: node for (_, short), node in self._namespaces.items()}
        return cached_app

    @property
    def cached_nodes(self) -> list[str]:
        return sorted(self._namespaces.values())

    def node_id(self, namespace: Sequence[str]) -> str:
        """Our node id (``parent:inner``) for LangGraph's cache namespace ``(kind, function, name)``."""
        function, name = (namespace[1], namespace[2]) if len(namespace) >= 3 else ("", namespace[-1])
        return self._namespaces.get((function, name)) or self._short_names.get(name) or name

    @contextmanager
    def activate(self, stats: CacheStats, store: Any = None, run_id: str | None = None) -> Iterator[RunScope]:
        with active_scope(RunScope(layer=self, stats=stats, store=store, run_id=run_id)) as scope:
            yield scope

    # -- model calls --------------------------------------------------------------------------
    def describe(
        self, call: Any, caller: Any, messages: Sequence[BaseMessage], stop: Any, kwargs: Any
    ) -> RequestIdentity:
        model = call.decision.model
        params = call.kwargs(caller, kwargs, model)
        return describe_request(self.pool[model], messages, stop, params, node=call.request.node)

    def _cacheable(self, request: RequestIdentity) -> bool:
        return self.config is not None and (request.deterministic or self.config.cache_nondeterministic)

    def _flight_key(self, request: RequestIdentity) -> str | None:
        assert self.batcher is not None
        dedupe_any = self.batcher.config.dedupe_nondeterministic
        return request.digest if (request.deterministic or dedupe_any) else None

    def _cached(self, scope: RunScope, request: RequestIdentity) -> tuple[list[Generation], str] | None:
        """A stored answer for ``request`` (exact first, then semantic), counting the outcome."""
        if self.responses is None or not self._cacheable(request):
            return None
        generations = self.responses.lookup(request.prompt, request.llm_string)
        if generations:
            scope.stats.add(response_hits=1)
            return generations, "answered from the response cache"
        if self.semantic is not None:
            hit = self.semantic.lookup(request)
            if hit is not None:
                scope.stats.add(response_hits=1, semantic_hits=1)
                return hit.generations, f"answered from the semantic cache (similarity {hit.similarity:.3f})"
        scope.stats.add(response_misses=1)
        return None

    def _store(self, call: Any, request: RequestIdentity, result: ChatResult) -> None:
        """Keep an answer of the chosen model (the key names it; a fallback's answer is not kept)."""
        if self.responses is None or not self._cacheable(request) or not result.generations:
            return
        if call.model != call.decision.model:
            return
        self.responses.update(request.prompt, request.llm_string, result.generations)
        if self.semantic is not None:
            self.semantic.update(request, list(result.generations))

    def generate(
        self, scope: RunScope, call: Any, send: Callable[[], ChatResult], request: RequestIdentity, run_manager: Any
    ) -> ChatResult:
        """Serve ``call`` from a cache, a shared flight, or by sending it (``send`` traces it)."""
        if (cached := self._cached(scope, request)) is not None:
            return self._serve(call, cached[0], run_manager, cache_hit=True, note=cached[1])
        if self.batcher is None:
            return self._send_once(scope, call, send, request, run_manager)

        def work(batched: bool) -> ChatResult:
            call.batched = batched
            return self._send_once(scope, call, send, request, run_manager)

        outcome = self.batcher.run(call.decision.model, self._flight_key(request), work, share=_shared(call))
        return self._settle(scope, call, outcome, run_manager)

    async def agenerate(
        self,
        scope: RunScope,
        call: Any,
        send: Callable[[], Awaitable[ChatResult]],
        request: RequestIdentity,
        run_manager: Any,
    ) -> ChatResult:
        if (cached := await self._off_loop(self._cached, scope, request)) is not None:
            return self._serve(call, cached[0], run_manager, cache_hit=True, note=cached[1])
        if self.batcher is None:
            return await self._asend_once(scope, call, send, request, run_manager)

        async def work(batched: bool) -> ChatResult:
            call.batched = batched
            return await self._asend_once(scope, call, send, request, run_manager)

        outcome = await self.batcher.arun(call.decision.model, self._flight_key(request), work, share=_shared(call))
        return self._settle(scope, call, outcome, run_manager)

    def _send_once(
        self, scope: RunScope, call: Any, send: Callable[[], ChatResult], request: RequestIdentity, run_manager: Any
    ) -> ChatResult:
        """Send and keep the answer — or share it when another worker is sending the same request."""

        def lead() -> ChatResult:
            result = send()
            self._store(call, request, result)  # before the flight lands: no gap for a duplicate
            return result

        if self.flights is None or not self._cacheable(request):
            return lead()
        landing = self.flights.run(request.digest, lead, encode=lambda result: _flight_blob(call, result))
        if landing.shared is None:
            return landing.value  # type: ignore[return-value]  # we led: our own answer
        return self._serve_shared(scope, call, landing.shared, run_manager)

    async def _asend_once(
        self,
        scope: RunScope,
        call: Any,
        send: Callable[[], Awaitable[ChatResult]],
        request: RequestIdentity,
        run_manager: Any,
    ) -> ChatResult:
        async def lead() -> ChatResult:
            result = await send()
            await self._off_loop(self._store, call, request, result)
            return result

        if self.flights is None or not self._cacheable(request):
            return await lead()
        landing = await self.flights.arun(request.digest, lead, encode=lambda result: _flight_blob(call, result))
        if landing.shared is None:
            return landing.value  # type: ignore[return-value]  # we led: our own answer
        return self._serve_shared(scope, call, landing.shared, run_manager)

    def _serve_shared(self, scope: RunScope, call: Any, blob: str, run_manager: Any) -> ChatResult:
        """Another worker's answer to the identical request, as this call's own (deduped, no tokens)."""
        shared = json.loads(blob)
        call.model = shared["model"]
        scope.stats.add(deduped=1)
        generations = decode_generations(shared["generations"])
        return self._serve(
            call, generations, run_manager, deduped=True, note="shared an identical call in flight on another worker"
        )

    async def _off_loop(self, function: Callable[..., Any], *args: Any) -> Any:
        """Embedding a prompt takes milliseconds of CPU: keep the event loop free meanwhile."""
        if self.semantic is None:
            return function(*args)
        return await asyncio.to_thread(function, *args)

    def _settle(self, scope: RunScope, call: Any, outcome: Any, run_manager: Any) -> ChatResult:
        if not outcome.deduped:
            if outcome.batched:
                scope.stats.add(batched=1)
            return outcome.value
        scope.stats.add(deduped=1)
        if outcome.error is not None:
            call.deduped = True
            call.note = "waited for an identical call in flight, which failed"
            call.finish(None, outcome.error)
            raise outcome.error
        result, call.model = outcome.value  # the leader's answer and the model that gave it
        return self._serve(
            call, result.generations, run_manager, deduped=True, note="shared an identical call in flight"
        )

    def _serve(
        self,
        call: Any,
        generations: Sequence[Generation],
        run_manager: Any,
        *,
        cache_hit: bool = False,
        deduped: bool = False,
        note: str = "",
    ) -> ChatResult:
        """Hand out a stored or shared answer as this call's own, and trace it (no tokens spent)."""
        result = copy_result(ChatResult(generations=list(generations)))
        for index, generation in enumerate(result.generations):
            if isinstance(generation, ChatGeneration):
                generation.message.id = f"{LC_ID_PREFIX}-{run_manager.run_id}-{index}" if run_manager else None
        call.cache_hit, call.deduped, call.note = cache_hit, deduped, note
        first = result.generations[0] if result.generations else None
        call.finish(first.message if isinstance(first, ChatGeneration) else None)
        return result


def copy_result(result: ChatResult) -> ChatResult:
    """A deep copy: callers (and LangChain after them) mutate the messages they receive."""
    generations = [
        ChatGeneration(message=g.message.model_copy(deep=True), generation_info=copy.deepcopy(g.generation_info))
        if isinstance(g, ChatGeneration)
        else Generation(text=g.text, generation_info=copy.deepcopy(g.generation_info))
        for g in result.generations
    ]
    return ChatResult(generations=generations, llm_output=copy.deepcopy(result.llm_output))


def _flight_blob(call: Any, result: ChatResult) -> str:
    """What a cross-process flight publishes: the answer and the model that gave it."""
    return json.dumps({"model": call.model, "generations": encode_generations(result.generations)})


def _shared(call: Any) -> Callable[[Any], tuple[ChatResult, str]]:
    """What a flight's followers get: a copy of the leader's answer and the model that gave it."""

    def share(answer: ChatResult | tuple[ChatResult, str]) -> tuple[ChatResult, str]:
        result, model = answer if isinstance(answer, tuple) else (answer, call.model)
        return copy_result(result), model

    return share
