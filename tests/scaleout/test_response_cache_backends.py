"""The model-response cache contract, over diskcache and Redis: what a worker stores, every worker reads."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import AIMessage
from langchain_core.outputs import ChatGeneration, Generation

from graphroute.scaleout import open_response_cache

LLM = "gpt-4o|temperature=0"
PROMPT = '[{"role": "user", "content": "Capital of France?"}]'


@pytest.fixture(params=["diskcache", "redis"])
def location(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return str(tmp_path / "responses") if request.param == "diskcache" else request.getfixturevalue("redis_url")


@pytest.fixture
def cache(location: str) -> Iterator[Any]:
    opened = open_response_cache(location)
    yield opened
    opened.close()


def test_an_answer_round_trips_with_its_message(cache: Any) -> None:
    answer = ChatGeneration(message=AIMessage("Paris", id="run-1"), generation_info={"finish_reason": "stop"})
    assert cache.lookup(PROMPT, LLM) is None

    cache.update(PROMPT, LLM, [answer])

    [found] = cache.lookup(PROMPT, LLM)
    assert found.message.content == "Paris" and found.generation_info == {"finish_reason": "stop"}
    assert found.message.id is None  # each hit gets its own id from the caller
    assert cache.lookup(PROMPT, "gpt-4o|temperature=0.7") is None


def test_plain_text_generations_round_trip_too(cache: Any) -> None:
    cache.update(PROMPT, LLM, [Generation(text="Paris")])
    assert [g.text for g in cache.lookup(PROMPT, LLM)] == ["Paris"]


def test_a_second_handle_on_the_same_location_sees_the_answer(cache: Any, location: str) -> None:
    cache.update(PROMPT, LLM, [Generation(text="Paris")])
    other = open_response_cache(location)  # another worker
    assert [g.text for g in other.lookup(PROMPT, LLM)] == ["Paris"]
    other.clear()
    assert cache.lookup(PROMPT, LLM) is None and len(cache) == 0
    other.close()


def test_answers_expire_after_the_ttl(location: str) -> None:
    cache = open_response_cache(location, ttl=1)
    cache.update(PROMPT, LLM, [Generation(text="Paris")])
    assert cache.lookup(PROMPT, LLM) is not None
    time.sleep(1.1)
    assert cache.lookup(PROMPT, LLM) is None
    cache.close()


def test_redis_keys_hold_neither_the_prompt_nor_the_model_string(redis_url: str) -> None:
    import redis

    cache = open_response_cache(redis_url)
    cache.update(PROMPT, LLM, [Generation(text="Paris")])
    keys = [key.decode() for key in redis.Redis.from_url(redis_url).keys("*")]
    assert len(keys) == 1 and keys[0].startswith("graphroute:resp:")
    assert "France" not in keys[0] and "gpt-4o" not in keys[0]
