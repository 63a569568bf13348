"""The packaged local model answers through the managed llama.cpp server and ChatOpenAI."""

from __future__ import annotations

from pathlib import Path

from langchain_openai import ChatOpenAI

from graphroute import ModelPool
from graphroute.providers.local_models import QWEN_05B


def test_a_short_factual_question_gets_a_correct_short_answer(local_pool: ModelPool) -> None:
    client = local_pool.client("local")

    reply = client.invoke(
        "What is the capital of France? Reply with the city name only.",
        temperature=0,
        extra_body={"max_tokens": 8},
    )

    assert isinstance(client, ChatOpenAI)  # the same client code as a cloud model
    assert "paris" in str(reply.content).lower()
    assert reply.usage_metadata is not None and reply.usage_metadata["output_tokens"] <= 8


def test_the_model_is_assembled_outside_the_repo_and_verified(local_pool: ModelPool, session_home: Path) -> None:
    path = session_home / "models" / QWEN_05B.filename

    assert path.stat().st_size == QWEN_05B.size
    assert path.with_suffix(".verified").read_text().split()[0] == QWEN_05B.sha256
    assert not (Path(__file__).parents[1] / QWEN_05B.filename).exists()


def test_one_server_per_model_is_shared_by_the_process(local_pool: ModelPool) -> None:
    a, b = local_pool.client("local"), local_pool.client("local-b")

    assert a.openai_api_base == b.openai_api_base  # two pool names, one llama-server
    assert str(a.openai_api_base).startswith("http://127.0.0.1:")
