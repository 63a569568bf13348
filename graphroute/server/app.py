"""The FastAPI app: OpenAI's chat-completions API in front of a graphroute pool.

Every request goes through a ``RoutedChatModel``, so the server routes, falls back and traces
exactly like ``optimize`` and the chat model do. ``model`` in a request is a pool model name
(used as is) or a ``router-<policy>`` name (graphroute chooses); the answer names the model
that answered in the ``x-graphroute-model`` header, in ``model`` and in a ``graphroute`` field.

Imported only through ``graphroute.server.create_app``, which checks for the ``server`` extra.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from langchain_core.messages import AIMessage, AIMessageChunk
from langchain_core.runnables import RunnableConfig
from starlette.exceptions import HTTPException as StarletteHTTPException

from graphroute.chat_model import RoutedChatModel
from graphroute.errors import (
    ConfigError,
    GraphRouteError,
    LocalServerError,
    MissingAPIKeyError,
    ProviderError,
    RoutingError,
)
from graphroute.providers.pool import ModelPool
from graphroute.routing.base import Router
from graphroute.routing.static import StaticRouter
from graphroute.server import policies, validation, wire
from graphroute.traces.store import TraceStore

log = logging.getLogger("graphroute.server")
MODEL_HEADER = "x-graphroute-model"
RUN_LABEL = "server"
MAX_REMEMBERED_MODELS = 1024


class ModelNotFoundError(validation.RequestError):
    """A request named a model that is neither in the pool nor a router name."""

    def __init__(self, message: str) -> None:
        super().__init__(message, param="model")


class ServerState:
    """The pool, the trace store and one ``RoutedChatModel`` per model name asked for."""

    def __init__(self, pool: ModelPool, store: TraceStore | None, default_router: Router | None = None) -> None:
        self.pool = pool
        self.store = store
        self.default_router = default_router
        self.models: dict[str, RoutedChatModel] = {}
        self._lock = threading.Lock()

    def model_for(self, name: str) -> RoutedChatModel:
        """Built once per name, so a pacing router keeps its counts across requests."""
        with self._lock:
            model = self.models.get(name)
            if model is None:
                model = self._build(name)
                if len(self.models) < MAX_REMEMBERED_MODELS:  # endless router names cannot fill memory
                    self.models[name] = model
            return model

    def _build(self, name: str) -> RoutedChatModel:
        common: dict[str, Any] = {"pool": self.pool, "traces": self.store or False, "run_label": RUN_LABEL}
        try:
            policy = policies.parse_policy(name)
        except ConfigError as error:
            raise ModelNotFoundError(str(error)) from None
        if policy is not None:
            router = policies.router_for(policy, self.pool, base=self.default_router)
            return RoutedChatModel(router=router, requested_model=policy.name, **common)
        if name not in self.pool:
            raise ModelNotFoundError(
                f"the model {name!r} does not exist here; use a pool model ({', '.join(self.pool.names)}) "
                "or a router (router-default, router-budget-<usd>, router-cloud-share-<fraction>)"
            )
        # Pass-through: exactly that model; a call it cannot serve fails instead of being rerouted.
        router = StaticRouter(name, known=self.pool.names)
        return RoutedChatModel(router=router, requested_model=name, reroute_for_capabilities=False, **common)

    def listing(self) -> list[dict[str, Any]]:
        routers = dict.fromkeys(["router-default", *(n for n in self.models if n.startswith(policies.PREFIX))])
        entries = [{"id": name, "object": "model", "created": 0, "owned_by": "graphroute"} for name in routers]
        for spec in self.pool:
            entries.append(
                {
                    "id": spec.name,
                    "object": "model",
                    "created": 0,
                    "owned_by": spec.provider,
                    "graphroute": {
                        "locality": spec.locality,
                        "input_price": spec.input_price,
                        "output_price": spec.output_price,
                        "capabilities": list(spec.capabilities),
                    },
                }
            )
        return entries


def error_response(error: BaseException) -> JSONResponse:
    """Our errors → OpenAI's error shape and a fitting status. Messages never hold a key."""
    status, kind, code = _classify(error)
    if status >= 500 and not isinstance(error, GraphRouteError):
        log.exception("unexpected error while serving a request", exc_info=error)
        message = f"internal error ({type(error).__name__}); see the server log"
    else:
        message = str(error)
    param = getattr(error, "param", None)
    return JSONResponse(wire.error_body(message, kind, code, param), status_code=status)


def _classify(error: BaseException) -> tuple[int, str, str | None]:
    if isinstance(error, ModelNotFoundError):
        return 404, "invalid_request_error", "model_not_found"
    if isinstance(error, RoutingError | ConfigError):
        return 400, "invalid_request_error", None
    if isinstance(error, MissingAPIKeyError | LocalServerError):
        return 503, "server_error", "model_unavailable"
    if isinstance(error, ProviderError):
        upstream = getattr(error.__cause__, "status_code", None)
        if isinstance(upstream, int) and 400 <= upstream < 500 and upstream != 429:
            return upstream, "invalid_request_error", "upstream_rejected"
        return 502, "server_error", "upstream_error"
    if isinstance(error, GraphRouteError):
        return 500, "server_error", None
    return 500, "server_error", None


def build_app(
    pool: ModelPool,
    *,
    store: TraceStore | None = None,
    token: str | None = None,
    warm: bool = False,
    router: Router | None = None,
    stop_local_servers: bool = False,
) -> FastAPI:
    """The app for ``pool``; with ``token``, every ``/v1`` request must bear it; ``router`` serves router-default;
    ``stop_local_servers``: stop the managed llama.cpp servers at shutdown (see ``create_app``)."""
    state = ServerState(pool, store, router)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if warm:  # start the local servers before the first request instead of during it
            for spec in pool.local():
                try:
                    await asyncio.to_thread(pool.client, spec.name)
                except GraphRouteError as error:
                    log.warning("model %s is not ready: %s", spec.name, error)
        yield
        if stop_local_servers:
            from graphroute.providers import llamacpp

            await asyncio.to_thread(llamacpp.stop_all)

    app = FastAPI(title="graphroute", summary="OpenAI-compatible router over a graphroute pool", lifespan=lifespan)
    app.state.graphroute = state

    @app.middleware("http")
    async def require_token(request: Request, call_next: Callable[[Request], Any]) -> Any:
        if token and request.url.path.startswith("/v1"):
            scheme, _, given = request.headers.get("authorization", "").partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token.encode()):
                body = wire.error_body(
                    "missing or wrong API key: send 'Authorization: Bearer <token>' with the server's token",
                    "invalid_request_error",
                    "invalid_api_key",
                )
                return JSONResponse(body, status_code=401)
        return await call_next(request)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, error: RequestValidationError) -> JSONResponse:
        message, param = validation.describe(error.errors())
        return JSONResponse(wire.error_body(message, "invalid_request_error", None, param), status_code=400)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        body = wire.error_body(str(error.detail), "invalid_request_error")
        return JSONResponse(body, status_code=error.status_code)

    @app.get("/health")
    async def health() -> dict[str, Any]:
        return {"status": "ok", "models": len(pool)}

    @app.get("/v1/models")
    async def list_models() -> dict[str, Any]:
        return {"object": "list", "data": state.listing()}

    @app.get("/v1/models/{name}")
    async def get_model(name: str) -> Any:
        try:
            state.model_for(name)
        except ConfigError as error:
            return error_response(error)
        return next(entry for entry in state.listing() if entry["id"] == name)

    @app.post("/v1/chat/completions")
    async def chat_completions(body: wire.ChatCompletionRequest) -> Any:
        try:
            body.check()
            model = state.model_for(body.model)
            messages = wire.to_messages(body.messages)
        except GraphRouteError as error:
            return error_response(error)
        per_request = {"temperature": body.temperature, "max_tokens": body.output_limit}
        routed = model.model_copy(update={key: value for key, value in per_request.items() if value is not None})
        runnable = routed.bind(**body.call_kwargs())
        config = RunnableConfig(metadata={policies.MAX_TOKENS_KEY: body.output_limit}, run_name="graphroute-server")
        if not body.stream:
            try:
                answer = await runnable.ainvoke(messages, config, stop=body.stop_words)
            except Exception as error:
                return error_response(error)
            assert isinstance(answer, AIMessage)
            result = wire.completion(answer, body.model)
            return JSONResponse(result, headers={MODEL_HEADER: result["model"]})
        return await _stream(runnable.astream(messages, config, stop=body.stop_words), body)

    return app


async def _stream(chunks: AsyncIterator[Any], body: wire.ChatCompletionRequest) -> Any:
    """Wait for the first chunk (it names the model, for the header), then stream the rest as SSE."""
    iterator = chunks.__aiter__()
    try:
        first: AIMessageChunk | None = await iterator.__anext__()
    except StopAsyncIteration:
        first = None
    except Exception as error:
        return error_response(error)
    answered = (first.response_metadata.get("graphroute_model") if first else None) or body.model
    writer = wire.ChunkWriter(body.model, answered, body.include_usage)

    async def events() -> AsyncIterator[str]:
        try:
            if first is not None:
                if event := writer.chunk(first):
                    yield event
                async for chunk in iterator:
                    if event := writer.chunk(chunk):
                        yield event
        except Exception as error:
            response = error_response(error)
            yield wire.error_event(json.loads(bytes(response.body)))
            return
        for event in writer.end():
            yield event

    return StreamingResponse(events(), media_type="text/event-stream", headers={MODEL_HEADER: answered})
