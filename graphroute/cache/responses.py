"""A persistent model-response cache implementing LangChain's ``BaseCache`` on diskcache.

Inside an optimized run, graphroute consults it for every routed call whose request is
deterministic (temperature 0) unless told to cache every call; the key is the request's
identity (``cache/keys.py``: chosen model, parameters, tools, response format, messages).
It is also a drop-in LLM cache for plain LangChain code::

    from langchain_core.globals import set_llm_cache
    set_llm_cache(ResponseCache("~/.cache/my-app/responses"))

Only the SHA-256 of ``(llm_string, prompt)`` is stored as the key, so prompts never land on
disk; the value is the answer (messages as LangChain's plain message dicts, no pickle).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from langchain_core.caches import RETURN_VAL_TYPE, BaseCache
from langchain_core.messages import message_to_dict, messages_from_dict
from langchain_core.outputs import ChatGeneration, Generation

from graphroute.errors import ConfigError
from graphroute.paths import data_dir


def default_response_cache_path() -> Path:
    return data_dir() / "cache" / "responses"


def entry_key(prompt: str, llm_string: str) -> str:
    return hashlib.sha256(f"{llm_string}\n{prompt}".encode()).hexdigest()


def encode_generations(generations: Sequence[Generation]) -> str:
    """Generations as JSON; a message's run-specific ``id`` is dropped (each hit gets its own)."""
    items: list[dict[str, Any]] = []
    for generation in generations:
        item: dict[str, Any] = {"text": generation.text, "info": generation.generation_info}
        if isinstance(generation, ChatGeneration):
            message = message_to_dict(generation.message)
            message["data"]["id"] = None
            item["message"] = message
        items.append(item)
    return json.dumps(items)


def decode_generations(blob: str) -> list[Generation]:
    generations: list[Generation] = []
    for item in json.loads(blob):
        if "message" in item:
            [message] = messages_from_dict([item["message"]])
            generations.append(ChatGeneration(message=message, generation_info=item["info"]))
        else:
            generations.append(Generation(text=item["text"], generation_info=item["info"]))
    return generations


class ResponseCache(BaseCache):
    """Model answers on disk, shared by processes, optionally expiring after ``ttl`` seconds."""

    def __init__(self, path: Path | str | None = None, *, ttl: float | None = None, size_limit: int = 2**30) -> None:
        import diskcache

        self.path = Path(path).expanduser() if path is not None else default_response_cache_path()
        self.ttl = ttl
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            self._cache = diskcache.Cache(str(self.path), size_limit=size_limit, timeout=60)
        except OSError as error:
            raise ConfigError(f"cannot open the response cache directory {self.path}: {error}") from error

    def lookup(self, prompt: str, llm_string: str) -> RETURN_VAL_TYPE | None:
        blob = self._cache.get(entry_key(prompt, llm_string))
        return None if blob is None else decode_generations(blob)

    def update(self, prompt: str, llm_string: str, return_val: RETURN_VAL_TYPE) -> None:
        self._cache.set(entry_key(prompt, llm_string), encode_generations(return_val), expire=self.ttl)

    def clear(self, **kwargs: Any) -> None:
        self._cache.clear()

    def __len__(self) -> int:
        return len(self._cache)

    def close(self) -> None:
        self._cache.close()

    def __repr__(self) -> str:
        return f"ResponseCache({str(self.path)!r})"
