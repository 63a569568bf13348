"""What identifies a model request: the chosen model, its parameters and the messages.

The response cache, the semantic cache and single flight all key on this description, so
"the same request" means the same thing everywhere. It is canonical JSON (sorted keys, no
object addresses), hashed with SHA-256 before anything touches a disk, and it never contains a
secret: parameter names that hold keys or credentials are dropped, and the model is named by
its pool entry (name, provider, model id), not by a URL or a client object.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from langchain_core.messages import BaseMessage
from pydantic import BaseModel, SecretStr

from graphroute.config import ModelSpec

# Never part of a key: credentials, transport details and LangChain's own plumbing.
_DROPPED = frozenset(
    {
        "api_key",
        "openai_api_key",
        "authorization",
        "headers",
        "default_headers",
        "extra_headers",
        "default_query",
        "extra_query",
        "http_client",
        "http_async_client",
        "callbacks",
        "run_manager",
        "metadata",
        "tags",
        "timeout",
        "max_retries",
        "stream_usage",
    }
)
_SECRET_WORDS = ("api_key", "apikey", "secret", "password", "authorization", "bearer", "credential")


def _dropped(name: str) -> bool:
    lowered = name.lower()
    return lowered in _DROPPED or any(word in lowered for word in _SECRET_WORDS)


def canonical(value: Any) -> Any:
    """A JSON-ready, order-independent form of ``value``; no object address ever appears."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, SecretStr):
        return "[secret]"
    if isinstance(value, Mapping):
        return {str(key): canonical(item) for key, item in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, list | tuple):
        return [canonical(item) for item in value]
    if isinstance(value, set | frozenset):
        return sorted((canonical(item) for item in value), key=lambda item: json.dumps(item, sort_keys=True))
    if isinstance(value, BaseMessage):
        return message_form(value)
    if isinstance(value, type) and issubclass(value, BaseModel):
        return {"json_schema": value.model_json_schema()}
    if isinstance(value, BaseModel):
        return canonical(value.model_dump(mode="json"))
    if isinstance(value, bytes):
        return {"sha256": hashlib.sha256(value).hexdigest()}
    named = getattr(value, "__qualname__", None)
    kind = value if named else type(value)
    return f"{getattr(kind, '__module__', '?')}.{getattr(kind, '__qualname__', type(kind).__name__)}"


def message_form(message: BaseMessage) -> dict[str, Any]:
    """What of a message reaches the model: role, content, name, tool calls and their ids.

    The message's own ``id`` is left out: LangChain gives each run's messages fresh ids, and
    they are never sent to a provider.
    """
    form: dict[str, Any] = {"role": message.type, "content": canonical(message.content)}
    if message.name:
        form["name"] = message.name
    tool_calls = getattr(message, "tool_calls", None)
    if tool_calls:
        form["tool_calls"] = [
            {"name": call["name"], "args": canonical(call["args"]), "id": call.get("id")} for call in tool_calls
        ]
    tool_call_id = getattr(message, "tool_call_id", None)
    if tool_call_id:
        form["tool_call_id"] = tool_call_id
    return form


def dump(value: Any) -> str:
    return json.dumps(canonical(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def temperature_of(params: Mapping[str, Any]) -> float | None:
    """The sampling temperature a request will use, wherever the provider expects it."""
    temperature = params.get("temperature")
    if temperature is None:
        temperature = (params.get("options") or {}).get("temperature")  # Ollama
    return None if temperature is None else float(temperature)


@dataclass(frozen=True)
class RequestIdentity:
    """One model request, described for caching and deduplication.

    ``llm_string`` (model + parameters + stop words) and ``prompt`` (the messages) are the two
    halves LangChain's cache contract takes; ``digest`` hashes both. ``template`` is the prompt
    with the final user text blanked and ``text`` that text: the semantic cache compares texts
    only between requests with the same ``node`` and ``template``.
    """

    model: str
    llm_string: str
    prompt: str
    digest: str
    deterministic: bool
    node: str | None
    template: str
    text: str


def describe_request(
    spec: ModelSpec,
    messages: Sequence[BaseMessage],
    stop: Sequence[str] | None,
    params: Mapping[str, Any],
    *,
    node: str | None = None,
) -> RequestIdentity:
    """The identity of sending ``messages`` to the pool model ``spec`` with ``params``."""
    model = {"name": spec.name, "provider": spec.provider, "model": spec.model}
    sent = {name: value for name, value in params.items() if not _dropped(str(name))}
    llm_string = dump({"model": model, "params": sent, "stop": list(stop or [])})
    forms = [message_form(message) for message in messages]
    prompt = dump(forms)
    last_user = max((i for i, form in enumerate(forms) if form["role"] == "human"), default=None)
    text = ""
    if last_user is not None:
        content = forms[last_user]["content"]
        text = content if isinstance(content, str) else dump(content)
        forms[last_user] = {**forms[last_user], "content": "{text}"}
    digest = hashlib.sha256(f"{llm_string}\n{prompt}".encode()).hexdigest()
    return RequestIdentity(
        model=spec.name,
        llm_string=llm_string,
        prompt=prompt,
        digest=digest,
        deterministic=temperature_of(params) == 0.0,
        node=node,
        template=dump({"node": node, "llm": llm_string, "messages": forms}),
        text=text,
    )
