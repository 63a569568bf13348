"""Pillars are found by name through the ``graphroute.pillars`` entry-point group, built-ins included."""

from __future__ import annotations

import textwrap
import tomllib
from pathlib import Path

import pytest
from langchain_core.messages import HumanMessage

from graphroute import ConfigError, ModelPool, RouteRequest
from graphroute.pillars import registry
from graphroute.pillars.bandit import BanditPillar
from graphroute.pillars.judge import JudgePillar
from graphroute.pillars.rules import RulesPillar
from graphroute.pillars.semantic import SemanticPillar
from graphroute.routing.cascade import CascadeRouter

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def outside_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An installed third-party distribution declaring one pillar, as pip would lay it out."""
    (tmp_path / "acme_pillars.py").write_text(
        textwrap.dedent('''
        from graphroute.pillars.base import Pillar, Signal

        class ShoutPillar(Pillar):
            """Capital letters everywhere: somebody is upset, send it to the strongest model."""
            name = "shout"

            def __init__(self, threshold: float = 0.5) -> None:
                self.threshold = threshold

            def score(self, request):
                text = request.last_user_text
                upper = sum(c.isupper() for c in text) / max(1, sum(c.isalpha() for c in text))
                return Signal(self.name, difficulty=1.0 if upper > self.threshold else None, confidence=0.9)
    ''')
    )
    info = tmp_path / "acme_pillars-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-pillars\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[graphroute.pillars]\nshout = acme_pillars:ShoutPillar\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def test_the_built_ins_are_found_by_name() -> None:
    assert {"rules", "semantic", "judge", "bandit"} <= set(registry.available())
    assert registry.load("rules") is RulesPillar
    assert registry.load("semantic") is SemanticPillar
    assert registry.load("judge") is JudgePillar
    assert registry.load("bandit") is BanditPillar


def test_the_built_ins_are_declared_in_pyproject_like_any_other_pillar() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = project.get("entry-points", {}).get(registry.GROUP)
    if declared is None:
        pytest.skip('pyproject.toml has no [project.entry-points."graphroute.pillars"] table yet')
    assert declared == registry.BUILTINS


def test_an_outside_package_adds_a_pillar_through_its_entry_point(outside_package: Path) -> None:
    assert "shout" in registry.available()
    pillar = registry.create("shout", threshold=0.6)

    signal = pillar.score(RouteRequest(messages=[HumanMessage("WHY IS MY ORDER LATE AGAIN")]))

    assert type(pillar).__name__ == "ShoutPillar" and signal.difficulty == 1.0
    pool = ModelPool.from_dict({"models": {"local": {"provider": "llamacpp", "model": "qwen2.5-coder-0.5b-instruct"}}})
    router = CascadeRouter(pool, ["shout", "rules"])
    assert [p.name for p in router.pillars] == ["shout", "rules"]


def test_pillars_registered_in_code_and_factories_that_need_the_pool() -> None:
    registry.register("always-easy", lambda: RulesPillar())
    try:
        assert isinstance(registry.create("always-easy"), RulesPillar)
    finally:
        registry.unregister("always-easy")
    pool = ModelPool.from_dict({"models": {"local": {"provider": "llamacpp", "model": "qwen2.5-coder-0.5b-instruct"}}})
    judge = CascadeRouter(pool, ["judge"]).pillars[0]
    assert isinstance(judge, JudgePillar) and judge.pool is pool and judge.model == "local"


def test_unknown_or_broken_pillars_are_named() -> None:
    with pytest.raises(ConfigError, match=r"unknown pillar 'sematic'; installed pillars: .*semantic"):
        registry.load("sematic")
    registry.register("not-a-pillar", lambda: object())
    try:
        with pytest.raises(ConfigError, match="built a object, which is not a graphroute Pillar"):
            registry.create("not-a-pillar")
    finally:
        registry.unregister("not-a-pillar")
