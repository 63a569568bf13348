"""Traces of the example research assistant, recorded through the real ``optimize`` path.

Two scripted OpenAI-compatible servers stand in for a small local model and a priced cloud
model, so runs are deterministic and take well under a second; the tests that need the real
local model use the ``local_pool`` fixture instead.
"""

from __future__ import annotations

import importlib.util
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import pytest

from graphroute import ModelPool, TraceStore, optimize
from graphroute.testing import ReceivedRequest, Reply, ScriptedProvider

EXAMPLE = Path(__file__).parents[2] / "examples" / "research_assistant.py"
QUESTIONS = [
    "Why is the sky blue, and why are sunsets red?",  # plan splits it: research × 2
    "What is the capital of France?",  # one sub-question: answer_directly
    "How do vaccines work, and why do some need boosters?",  # research × 2
]
SMALL_PRICES = (0.0, 0.0)
BIG_PRICES = (2.5, 10.0)


def load_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("traces_example_research_assistant", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def answer(request: ReceivedRequest, *, big: bool) -> Reply:
    """Deterministic answers shaped like the example's prompts; the big model writes more."""
    messages = request.body.get("messages", [])
    system = next((m["content"] for m in messages if m["role"] == "system"), "")
    question = str(messages[-1]["content"]) if messages else ""
    tokens = sum(len(str(m["content"]).split()) for m in messages) + 7
    if "sub-questions" in system:
        lines = "What is the capital of France?" if "capital" in question else "Why is it so?\nWhat follows from it?"
        return Reply(lines, prompt_tokens=tokens, completion_tokens=12)
    if "title" in system:
        return Reply("A Short Title", prompt_tokens=tokens, completion_tokens=4)
    text = "A careful, complete answer." if big else "An answer."
    return Reply(text, prompt_tokens=tokens, completion_tokens=40 if big else 25)


def pool_for(small: ScriptedProvider, big: ScriptedProvider, **routing: object) -> ModelPool:
    return ModelPool.from_dict(
        {
            "routing": {"default": "small", **routing},
            "models": {
                "small": small.pool_entry(locality="local"),
                "big": big.pool_entry(input_price=BIG_PRICES[0], output_price=BIG_PRICES[1], locality="cloud"),
            },
        }
    )


@dataclass
class Recorded:
    """A trace database of the example app, and the pool it was recorded with."""

    path: Path
    pool: ModelPool
    run_ids: list[str]

    def store(self) -> TraceStore:
        return TraceStore(self.path)


@pytest.fixture(scope="session")
def recorded_once(tmp_path_factory: pytest.TempPathFactory) -> Recorded:
    """Three runs of the example app: planning and report writing on ``big``, research on ``small``."""
    with (
        ScriptedProvider(lambda request: answer(request, big=False)) as small,
        ScriptedProvider(lambda request: answer(request, big=True)) as big,
    ):
        pool = pool_for(small, big, nodes={"plan": "big", "write_report": "big"})
        path = tmp_path_factory.mktemp("recorded") / "traces.sqlite"
        app = optimize(load_example().build_graph(), pool=pool, traces=path)
        run_ids = []
        for question in QUESTIONS:
            app.invoke({"question": question})
            assert app.last_run is not None
            run_ids.append(app.last_run.run_id)
        app.store.close()
    return Recorded(path, pool, run_ids)


@pytest.fixture
def recorded(recorded_once: Recorded, tmp_path: Path) -> Recorded:
    """A private copy of the recorded traces, free to add feedback to."""
    path = tmp_path / "traces.sqlite"
    shutil.copyfile(recorded_once.path, path)
    return Recorded(path, recorded_once.pool, list(recorded_once.run_ids))


PLAN_MODELS = f"""
[models.small]
provider = "openai-compatible"
model = "scripted"
base_url = "http://127.0.0.1:9/v1"
locality = "local"

[models.big]
provider = "openai-compatible"
model = "scripted"
base_url = "http://127.0.0.1:9/v1"
input_price = {BIG_PRICES[0]}
output_price = {BIG_PRICES[1]}
locality = "cloud"
"""


def write_plan(directory: Path, name: str, default: str, pins: dict[str, str]) -> Path:
    """A plan file as a user writes one: a [plan] header, routing, and the models' prices."""
    lines = ["[plan]", f'name = "{name}"', "", "[routing]", f'default = "{default}"', "[routing.nodes]"]
    lines += [f'"{node}" = "{model}"' for node, model in pins.items()]
    path = directory / f"{name}.toml"
    path.write_text("\n".join(lines) + "\n" + PLAN_MODELS, encoding="utf-8")
    return path
