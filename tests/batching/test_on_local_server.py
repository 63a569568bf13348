"""On the real llama.cpp server: duplicates in a fan-out are sent once, the rest go out together."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from graphroute import ModelPool, optimize
from graphroute.batching import BatchConfig
from tests.batching.test_routed_batching import fan_graph


def test_a_fan_out_to_the_local_server_sends_unique_requests_in_one_batch(
    local_pool: ModelPool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-app-key")  # the app builds a ChatOpenAI; routing never uses it
    topics = ["France", "Japan", "France", "Italy", "Japan", "France"]
    app = optimize(fan_graph(), pool=local_pool, batching=BatchConfig(window_ms=50), traces=tmp_path / "t.sqlite")

    result = app.invoke({"topics": topics})

    calls = app.store.calls(run_id=app.last_run.run_id)
    sent = [call for call in calls if not call.deduped]
    assert len(sent) == 3 and all(call.batched and call.output_tokens > 0 for call in sent)
    assert sum(call.deduped for call in calls) == 3
    answers: dict[str, set[str]] = {}
    for topic, answer in result["answers"]:
        answers.setdefault(topic, set()).add(answer)
    assert all(len(texts) == 1 for texts in answers.values())  # a duplicate gets exactly its twin's answer
    assert Counter(topic for topic, _ in result["answers"]) == Counter(topics)
    assert "paris" in " ".join(answers["France"]).lower()
