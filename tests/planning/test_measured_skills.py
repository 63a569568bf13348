"""The planner reads feedback: scored calls in the traces replace the price-rank prior."""

from __future__ import annotations

from pathlib import Path

import pytest

from graphroute import ModelPool, TraceStore, feedback, optimize
from graphroute.planning.live import measured_skills, plan_app
from graphroute.planning.pricing import PoolPrices
from graphroute.planning.profiles import prior_skills
from graphroute.testing import Reply, ScriptedProvider
from tests.planning.test_router import chain


@pytest.fixture
def provider():
    with ScriptedProvider(lambda request: Reply("ok", prompt_tokens=500, completion_tokens=100)) as server:
        yield server


def test_feedback_on_a_models_runs_lowers_its_skill_in_the_next_plan(provider, tmp_path: Path) -> None:
    pool = ModelPool.from_dict({
        "routing": {"default": "mid"},
        "models": {
            "local": provider.pool_entry(locality="local"),
            "mid": provider.pool_entry(locality="cloud", input_price=1.0, output_price=4.0),
            "cloud": provider.pool_entry(locality="cloud", input_price=10.0, output_price=40.0),
        },
    })  # fmt: skip
    store = TraceStore(tmp_path / "traces.sqlite")
    app = optimize(chain(), pool=pool, traces=store)
    for index in range(10):
        app.invoke({"question": f"question {index}", "notes": []})
        feedback(app.last_run.run_id, 0.0, traces=store)  # every answer of "mid" was wrong

    prices = PoolPrices.from_pool(pool)
    skills, scored = measured_skills(store, prices)
    plan = plan_app(chain().compile(), pool, budget_usd=0.01, traces=store)

    assert scored == 30 and set(skills) == {"mid"}  # 10 runs × 3 nodes; unscored models keep the prior
    assert skills["mid"] == pytest.approx(5 * prior_skills(prices)["mid"] / 35)
    assert any("measured on 30 scored calls" in note for note in plan.notes)
    assert any("price-rank prior" in note for note in plan_app(chain().compile(), pool, budget_usd=0.01).notes)
