"""``RoutedChatModel``: a LangChain chat model that routes every call to a pool model.

For users who meet graphroute inside a chain they already have (``prompt | model | parser``)
or who want routing without ``optimize``. It goes through exactly the code ``optimize`` uses
(``routing/dispatch.py``: one ``Router`` decision, the pool's client, one trace row), so a call
is routed, measured and recorded the same way wherever it is made.

Inside a LangGraph node the node is read from the run metadata and the router applies that
node's routing; in a plain chain every call is routed on its own. Inside an ``optimize``d run
the calls join that run's trace (the interception skips this model, so nothing is routed twice).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from operator import itemgetter
from pathlib import Path
from typing import Any, ClassVar, Literal

from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.language_models.chat_models import LangSmithParams
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.output_parsers import JsonOutputParser, PydanticOutputParser
from langchain_core.output_parsers.openai_tools import JsonOutputKeyToolsParser, PydanticToolsParser
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable, RunnableMap, RunnablePassthrough
from langchain_core.runnables.config import ensure_config
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_openai_tool
from langchain_core.utils.pydantic import is_basemodel_subclass
from pydantic import ConfigDict, Field, field_validator

from graphroute.errors import ConfigError
from graphroute.pillars.base import MAX_TOKENS_KEY
from graphroute.providers.pool import ModelPool
from graphroute.providers.structured_output import json_schema_format, openai_tool_choice
from graphroute.providers.tool_calls import ToolCallRecovery, recover_tool_calls
from graphroute.routing import dispatch
from graphroute.routing.base import Router
from graphroute.routing.capabilities import CapabilityGuard
from graphroute.routing.default import default_router
from graphroute.routing.prepared import redact
from graphroute.routing.session import RoutingSession, current_session
from graphroute.routing.static import StaticRouter
from graphroute.scaleout.factory import open_trace_store
from graphroute.scaleout.urls import is_url
from graphroute.traces.store import CallRecord, TraceStore, default_trace_path

StructuredOutputMethod = Literal["json_schema", "function_calling", "json_mode"]
RUN_LABEL = "RoutedChatModel"
_stores: dict[str, TraceStore] = {}
_stores_lock = threading.Lock()


@dataclass
class _JoinedSession(RoutingSession):
    """Our pool and router, recording into an ``optimize``d run's session (its run id and trace)."""

    parent: RoutingSession | None = field(default=None, repr=False)

    def record(self, call: CallRecord) -> None:
        assert self.parent is not None
        self.parent.record(call)


@dataclass
class _Scope:
    """The session of one call, and the trace run this model opened for it (if any)."""

    session: RoutingSession
    metadata: dict[str, Any]
    own_run: str | None = None

    def close(self, error: BaseException | None = None) -> None:
        store = self.session.store
        if self.own_run is None or store is None:
            return
        if error is None:
            store.end_run(self.own_run, "ok")
        elif isinstance(error, GeneratorExit | asyncio.CancelledError):
            store.end_run(self.own_run, "cancelled", "the caller stopped reading the stream")
        else:
            store.end_run(self.own_run, "error", dispatch.redact(f"{type(error).__name__}: {error}", self.session))


def _fingerprint(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:16]


def router_fingerprint(router: Router) -> str:
    """A stable description of a router's configuration, for LangChain's cache key.

    A router may define ``fingerprint()``; a ``StaticRouter`` is described by its pins; any
    other router by its identity in this process, so two configurations never share entries.
    """
    custom = getattr(router, "fingerprint", None)
    if callable(custom):
        return f"{type(router).__qualname__}:{custom()}"
    if isinstance(router, StaticRouter):
        return f"StaticRouter:{_fingerprint({'default': router.default, 'nodes': router.nodes})}"
    return f"{type(router).__module__}.{type(router).__qualname__}@{id(router):x}"


class RoutedChatModel(BaseChatModel):
    """A chat model whose every call goes to the pool model the router chooses.

    Usage::

        model = RoutedChatModel(pool="graphroute.toml", routes={"summarize": "cloud"}, max_tokens=256)
        chain = prompt | model | StrOutputParser()
        chain.invoke({"topic": "tides"})
        model.bind_tools([get_weather]).invoke("Weather in Oslo?")   # only tool-capable models
        model.with_structured_output(Answer).invoke("...")           # an Answer instance

    The answering model is named on each message: ``response_metadata["graphroute_model"]``.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)
    _graphroute_routes_itself: ClassVar[bool] = True

    pool: ModelPool = Field(default_factory=ModelPool.default, description="pool, pool TOML path, or the default")
    router: Router | None = Field(None, description="default: the pool's [routing] pins plus `routes`")
    routes: dict[str, str] = Field(default_factory=dict, description="node → model pins over the pool file's")
    traces: TraceStore | Path | str | bool | None = Field(
        None, description="a TraceStore or SQLite path; None: <data dir>/traces.sqlite; False: no trace file"
    )
    temperature: float | None = None
    max_tokens: int | None = None
    requested_model: str | None = Field(None, description="what the caller asked for; written to the trace")
    reroute_for_capabilities: bool = Field(True, description="False: fail instead of rerouting a tools call")
    run_label: str = Field(RUN_LABEL, description="the trace's run label for calls made outside optimize")

    @field_validator("pool", mode="before")
    @classmethod
    def _coerce_pool(cls, value: Any) -> ModelPool:
        return ModelPool.coerce(value)

    def model_post_init(self, context: Any) -> None:
        super().model_post_init(context)
        self.routing_router()  # unknown model names in `routes` fail now, not at the first call

    # -- configuration ------------------------------------------------------------------------
    @property
    def _llm_type(self) -> str:
        return "graphroute-routed"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        """Everything that changes answers: pool, router, sampling. Never a key (pools hold env names)."""
        pool_config = self.pool.config.model_dump(mode="json")
        return {
            "pool": _fingerprint(pool_config),
            "models": self.pool.names,
            "router": router_fingerprint(self.router) if self.router is not None else None,
            "routes": dict(sorted(self.routes.items())),
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
            "reroute_for_capabilities": self.reroute_for_capabilities,
        }

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        params = super()._get_ls_params(stop=stop, **kwargs)
        params["ls_provider"] = "graphroute"
        params["ls_model_name"] = self.requested_model or "router"
        return params

    def routing_router(self) -> Router:
        """The router every call goes through: the configured one behind the capability guard."""
        inner = self.router
        if inner is None:
            inner = default_router(self.pool, {**self.pool.routing.nodes, **self.routes})
        elif self.routes:
            raise ConfigError("pass either `router` or `routes` to RoutedChatModel, not both")
        return CapabilityGuard(inner, self.pool, reroute=self.reroute_for_capabilities)

    def trace_store(self) -> TraceStore | None:
        """The trace store, opened on first use (so building a model never touches the disk)."""
        if self.traces is False:
            return None
        if isinstance(self.traces, TraceStore):
            return self.traces
        location = default_trace_path() if self.traces in (None, True) else self.traces
        url = is_url(location)
        key = str(location) if url else str(Path(str(location)).resolve())
        with _stores_lock:  # one connection per file or database, shared by copies and threads
            store = _stores.get(key)
            if store is None:
                store = _stores[key] = open_trace_store(str(location) if url else Path(str(location)))
            return store

    # -- one call -----------------------------------------------------------------------------
    def _scope(self, run_manager: Any) -> _Scope:
        """Session and metadata for a call: joins an active ``optimize`` run, else opens a trace run."""
        if run_manager is not None:
            metadata = dict(run_manager.metadata or {})
        else:  # LangChain's stream() calls _stream without a run manager: read the ambient config
            metadata = dict(ensure_config().get("metadata") or {})
        router = self.routing_router()
        active = current_session()
        if active is not None:
            joined = _JoinedSession(pool=self.pool, router=router, run_id=active.run_id, parent=active)
            return _Scope(joined, metadata)
        run_id = str(getattr(run_manager, "run_id", None) or uuid.uuid4())
        store = self.trace_store()
        if store is not None:
            node = dispatch.node_from_metadata(metadata)
            store.start_run(run_id, self.run_label, {"node": node, "thread_id": metadata.get("thread_id")})
        return _Scope(RoutingSession(pool=self.pool, router=router, store=store, run_id=run_id), metadata, run_id)

    def _caller(self, kwargs: Mapping[str, Any]) -> tuple[RoutedChatModel, dict[str, Any]]:
        """Per-call ``max_tokens``/``temperature`` become this model's settings for the call.

        Passed raw they would reach the pool client untranslated (``ChatOpenAI`` renames
        ``max_tokens``, which local servers then ignore); as settings, the pool adapts them
        for whichever provider is chosen.
        """
        rest = dict(kwargs)
        update = {key: rest.pop(key) for key in ("max_tokens", "temperature") if rest.get(key) is not None}
        return (self.model_copy(update=update) if update else self), rest

    def _metadata(self, scope: _Scope, kwargs: Mapping[str, Any]) -> dict[str, Any]:
        """The run's metadata plus the call's output limit, which a router pricing the call needs.

        LangChain's ``stream``/``astream`` give the model no run manager, so the caller's config
        metadata may not reach this call; the limit set on the model (or passed) is known here.
        """
        limit = kwargs.get("max_tokens") or self.max_tokens
        if limit and MAX_TOKENS_KEY not in scope.metadata:
            return {**scope.metadata, MAX_TOKENS_KEY: limit}
        return scope.metadata

    def _prepare(
        self, scope: _Scope, messages: Sequence[BaseMessage], kwargs: Mapping[str, Any]
    ) -> dispatch.PreparedCall:
        try:
            return dispatch.prepare(
                scope.session,
                messages,
                self._metadata(scope, kwargs),
                requested=self.requested_model,
                tools=kwargs.get("tools") or (),
            )
        except BaseException as error:
            scope.close(error)
            raise

    async def _aprepare(
        self, scope: _Scope, messages: Sequence[BaseMessage], kwargs: Mapping[str, Any]
    ) -> dispatch.PreparedCall:
        try:
            return await dispatch.aprepare(
                scope.session,
                messages,
                self._metadata(scope, kwargs),
                requested=self.requested_model,
                tools=kwargs.get("tools") or (),
            )
        except BaseException as error:
            scope.close(error)
            raise

    def _generate(
        self, messages: list[BaseMessage], stop: list[str] | None = None, run_manager: Any = None, **kwargs: Any
    ) -> ChatResult:
        scope = self._scope(run_manager)
        call = self._prepare(scope, messages, kwargs)
        caller, rest = self._caller(kwargs)
        try:
            result = dispatch.generate(call, caller, messages, stop, run_manager, rest)
        except BaseException as error:
            scope.close(error)
            raise
        scope.close()
        return _finish_result(result, call, kwargs)

    async def _agenerate(
        self, messages: list[BaseMessage], stop: list[str] | None = None, run_manager: Any = None, **kwargs: Any
    ) -> ChatResult:
        scope = self._scope(run_manager)
        call = await self._aprepare(scope, messages, kwargs)
        caller, rest = self._caller(kwargs)
        try:
            result = await dispatch.agenerate(call, caller, messages, stop, run_manager, rest)
        except BaseException as error:
            scope.close(error)
            raise
        scope.close()
        return _finish_result(result, call, kwargs)

    def _stream(
        self, messages: list[BaseMessage], stop: list[str] | None = None, run_manager: Any = None, **kwargs: Any
    ) -> Iterator[ChatGenerationChunk]:
        """Chunks from the chosen model as it produces them; the first one names the model."""
        scope = self._scope(run_manager)
        call = self._prepare(scope, messages, kwargs)
        relay = _Relay(call, kwargs)
        caller, rest = self._caller(kwargs)
        try:
            # No callbacks on the pool client's own run: this model's run reports the tokens.
            for message in dispatch.stream(call, caller, messages, {"callbacks": []}, stop, rest):
                yield from relay.feed(message)
            yield from relay.close()
        except BaseException as error:
            scope.close(error)
            raise
        scope.close()

    async def _astream(
        self, messages: list[BaseMessage], stop: list[str] | None = None, run_manager: Any = None, **kwargs: Any
    ) -> AsyncIterator[ChatGenerationChunk]:
        scope = self._scope(run_manager)
        call = await self._aprepare(scope, messages, kwargs)
        relay = _Relay(call, kwargs)
        caller, rest = self._caller(kwargs)
        try:
            async for message in dispatch.astream(call, caller, messages, {"callbacks": []}, stop, rest):
                for chunk in relay.feed(message):
                    yield chunk
            for chunk in relay.close():
                yield chunk
        except BaseException as error:
            scope.close(error)
            raise
        scope.close()

    # -- tools and structured output ---------------------------------------------------------
    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool],
        *,
        tool_choice: str | bool | dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """Forward ``tools`` (OpenAI format) to the chosen model; only tool-capable models are chosen."""
        formatted = [convert_to_openai_tool(tool) for tool in tools]
        if tool_choice is not None and tool_choice is not False:
            kwargs["tool_choice"] = openai_tool_choice(tool_choice, formatted)
        return super().bind(tools=formatted, **kwargs)

    def with_structured_output(
        self,
        schema: dict[str, Any] | type,
        *,
        method: StructuredOutputMethod = "json_schema",
        include_raw: bool = False,
        strict: bool | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, dict[str, Any] | Any]:
        """Answers parsed into ``schema`` (a pydantic class → its instance; a JSON schema → a dict).

        ``json_schema`` (default) asks the model for JSON matching the schema through
        ``response_format``, which local llama.cpp servers enforce with a grammar;
        ``function_calling`` forces a tool call; ``json_mode`` asks for any JSON object.
        """
        if kwargs:
            raise ConfigError(f"with_structured_output got unsupported arguments: {sorted(kwargs)}")
        is_pydantic = isinstance(schema, type) and is_basemodel_subclass(schema)
        traced = {"ls_structured_output_format": {"kwargs": {"method": method}, "schema": schema}}
        parser: Runnable[Any, Any]
        if method == "function_calling":
            name = convert_to_openai_tool(schema)["function"]["name"]
            llm = self.bind_tools([schema], tool_choice=name, **traced)
            parser = (
                PydanticToolsParser(tools=[schema], first_tool_only=True)  # type: ignore[list-item]
                if is_pydantic
                else JsonOutputKeyToolsParser(key_name=name, first_tool_only=True)
            )
        elif method in ("json_schema", "json_mode"):
            json_only = {"type": "json_object"}
            response_format = json_schema_format(schema, strict) if method == "json_schema" else json_only
            llm = self.bind(response_format=response_format, **traced)
            parser = PydanticOutputParser(pydantic_object=schema) if is_pydantic else JsonOutputParser()  # type: ignore[arg-type]
        else:
            raise ConfigError(
                f"unknown structured output method {method!r}; use json_schema, function_calling or json_mode"
            )
        if not include_raw:
            return llm | parser
        parsed = RunnablePassthrough.assign(parsed=itemgetter("raw") | parser, parsing_error=lambda _: None)
        unparsed = RunnablePassthrough.assign(parsed=lambda _: None)
        return RunnableMap(raw=llm) | parsed.with_fallbacks([unparsed], exception_key="parsing_error")


def _reason(call: dispatch.PreparedCall) -> str:
    """The trace's reason, as the answer carries it: the decision, any note, any fallback and why."""
    return redact(call.explained(), call.session)


def _finish_result(result: ChatResult, call: dispatch.PreparedCall, kwargs: Mapping[str, Any]) -> ChatResult:
    generations = []
    for generation in result.generations:
        message = generation.message
        if isinstance(message, AIMessage) and (calls := recover_tool_calls(message, kwargs)):
            metadata = {**message.response_metadata, "finish_reason": "tool_calls"}
            message = message.model_copy(update={"content": "", "tool_calls": calls, "response_metadata": metadata})
        message.response_metadata["graphroute_model"] = call.model
        message.response_metadata["graphroute_reason"] = _reason(call)
        generations.append(ChatGeneration(message=message, generation_info=generation.generation_info))
    return ChatResult(generations=generations, llm_output=result.llm_output)


class _Relay:
    """Pool-client chunks → this model's chunks: tool calls recovered, the first chunk naming the model."""

    def __init__(self, call: dispatch.PreparedCall, kwargs: Mapping[str, Any]) -> None:
        self.call = call
        self.recovery = ToolCallRecovery(kwargs)
        self.named = False

    def feed(self, message: AIMessageChunk) -> list[ChatGenerationChunk]:
        return [self._ours(ready) for ready in self.recovery.feed(message)]

    def close(self) -> list[ChatGenerationChunk]:
        return [self._ours(ready) for ready in self.recovery.close()]

    def _ours(self, message: AIMessageChunk) -> ChatGenerationChunk:
        if message.id and message.id.startswith("lc_"):
            message.id = None  # the pool client's run id; LangChain gives it this model's run id
        if not self.named:  # only once: metadata strings are concatenated when chunks add up
            message.response_metadata["graphroute_model"] = self.call.model
            message.response_metadata["graphroute_reason"] = _reason(self.call)
            self.named = True
        return ChatGenerationChunk(message=message)
