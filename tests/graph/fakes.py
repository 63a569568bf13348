"""Pools of deterministic fake chat models, for routing a node to a copy of its own model.

A node builds its model itself (``FakeListChatModel(responses=[...])``); to route that node
"to the model it constructs", the pool gets an entry whose client is a fresh copy built by
the same factory, so the copy answers exactly what the original would have answered.

The entries use a ``fake`` provider registered through the public ``register_provider``, the
same path an outside package takes; the pool is then built and validated as in production.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, AIMessageChunk
from langchain_core.outputs import ChatGenerationChunk
from langchain_core.utils.function_calling import convert_to_openai_tool

from graphroute.config import ModelSpec
from graphroute.providers.base import register_provider
from graphroute.providers.pool import ModelPool

ModelFactory = Callable[[], BaseChatModel]
_factories: dict[str, ModelFactory] = {}
_keys = itertools.count()


def _drop_unset(spec: ModelSpec, params: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in params.items() if value is not None}


register_provider("fake", lambda spec: _factories[spec.model](), _drop_unset)


def mirror_pool(
    models: Mapping[str, ModelFactory], *, prices: Mapping[str, tuple[float, float]] | None = None
) -> ModelPool:
    """A pool whose entry ``name`` serves a fresh model from ``models[name]`` (priced per 1M tokens)."""
    entries = {}
    for name, factory in models.items():
        key = f"{name}#{next(_keys)}"
        _factories[key] = factory
        input_price, output_price = (prices or {}).get(name, (0.0, 0.0))
        entries[name] = {
            "provider": "fake",
            "model": key,
            "input_price": input_price,
            "output_price": output_price,
            "locality": "local",
        }
    return ModelPool.from_dict({"models": entries})


class ToolCallingFake(GenericFakeChatModel):
    """``GenericFakeChatModel`` that accepts ``bind_tools`` and streams tool calls too.

    (The base class needs neither for its own tests; ``create_react_agent`` needs both.)
    """

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> Any:
        return self.bind(tools=[convert_to_openai_tool(tool) for tool in tools], **kwargs)

    def _stream(self, messages: Any, stop: Any = None, run_manager: Any = None, **kwargs: Any) -> Iterator[Any]:
        message = self._generate(messages, stop=stop, **kwargs).generations[0].message
        chunk = AIMessageChunk(
            content=message.content,
            id=message.id,
            tool_call_chunks=[
                {"name": call["name"], "args": json.dumps(call["args"]), "id": call["id"], "index": index}
                for index, call in enumerate(getattr(message, "tool_calls", []))
            ],
        )
        if run_manager is not None:
            run_manager.on_llm_new_token(str(chunk.content), chunk=ChatGenerationChunk(message=chunk))
        yield ChatGenerationChunk(message=chunk)


def scripted(replies: Iterable[str | AIMessage], *, input_tokens: int = 0, output_tokens: int = 0) -> BaseChatModel:
    """A model answering ``replies`` in order, forever (with token usage when given)."""
    messages = [
        AIMessage(
            content=reply,
            usage_metadata={
                "input_tokens": input_tokens,
                "output_tokens": output_tokens,
                "total_tokens": input_tokens + output_tokens,
            },
        )
        if isinstance(reply, str) and (input_tokens or output_tokens)
        else reply
        for reply in replies
    ]
    return GenericFakeChatModel(
        messages=itertools.cycle([m.model_copy() if isinstance(m, AIMessage) else m for m in messages])
    )


# -- comparing two runs -------------------------------------------------------------------------
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|\b[0-9a-f]{32}\b")
_TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+\+00:00")


def normalise(event: Any) -> str:
    """An event's repr with what differs between *any* two runs (ids, times) blanked out."""
    return _TIMESTAMP.sub("<time>", _UUID.sub("<id>", repr(event)))
