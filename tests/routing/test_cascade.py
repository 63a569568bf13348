"""CascadeRouter: early exit, difficulty → ladder, hard privacy constraints, pins, one-line reasons."""

from __future__ import annotations

import pytest
from langchain_core.messages import HumanMessage

from graphroute import ModelPool, RouteRequest, RoutingError, Signal, UnknownModelError
from graphroute.pillars.bandit import BanditPillar, BanditSignal, Outcome
from graphroute.pillars.base import Pillar
from graphroute.pillars.rules import RulesPillar
from graphroute.routing.cascade import CascadeDecision, CascadeRouter, Ladder, price_ladder

POOL = {
    "models": {
        # Listed out of price order on purpose: the default ladder sorts by price.
        "cloud": {
            "provider": "openai",
            "model": "gpt-4o",
            "api_key_env": "OPENAI_API_KEY",
            "input_price": 2.5,
            "output_price": 10.0,
        },
        "local": {"provider": "llamacpp", "model": "qwen2.5-coder-0.5b-instruct"},
        "cloud-mini": {
            "provider": "openai",
            "model": "gpt-4o-mini",
            "api_key_env": "OPENAI_API_KEY",
            "input_price": 0.15,
            "output_price": 0.6,
        },
    },
}


class Opinion(Pillar):
    """A user-written pillar with a fixed verdict; counts how often it is asked."""

    def __init__(self, name: str, difficulty: float | None, confidence: float, **extra: object) -> None:
        self.name = name
        self.verdict = Signal(name, difficulty=difficulty, confidence=confidence, **extra)  # type: ignore[arg-type]
        self.calls = 0

    def score(self, request: RouteRequest) -> Signal:
        self.calls += 1
        return self.verdict


def ask(text: str, node: str | None = "plan") -> RouteRequest:
    return RouteRequest(messages=[HumanMessage(text)], node=node)


@pytest.fixture
def pool() -> ModelPool:
    return ModelPool.from_dict(POOL)


def test_the_default_ladder_runs_from_cheapest_to_dearest(pool: ModelPool) -> None:
    ladder = price_ladder(pool)
    assert ladder.models == ("local", "cloud-mini", "cloud")
    assert ladder.thresholds == pytest.approx((1 / 3, 2 / 3))
    assert [ladder.rung(d) for d in (0.0, 0.34, 0.66, 0.67, 1.0)] == [0, 1, 1, 2, 2]


def test_a_confident_pillar_ends_the_cascade(pool: ModelPool) -> None:
    sure, later = Opinion("sure", 0.9, 0.95), Opinion("later", 0.1, 0.9)
    router = CascadeRouter(pool, [sure, later])

    decision = router.route(ask("Prove the four-colour theorem."))

    assert decision.model == "cloud"
    assert later.calls == 0
    assert [s.pillar for s in decision.signals] == ["sure"]
    assert "sure 0.90@0.95 exit" in decision.explain()


def test_unsure_pillars_are_averaged_by_confidence(pool: ModelPool) -> None:
    router = CascadeRouter(pool, [Opinion("a", 0.2, 0.4), Opinion("b", 0.8, 0.6), Opinion("c", None, 0.0)])

    decision = router.route(ask("Summarise this paragraph."))

    assert decision.difficulty == pytest.approx(0.56)  # (0.2·0.4 + 0.8·0.6) / 1.0
    assert decision.model == "cloud-mini"
    assert [s.pillar for s in decision.signals] == ["a", "b", "c"]
    assert decision.fallbacks == ("cloud", "local")  # stronger first, then weaker


def test_every_signal_is_kept_with_its_latency_and_the_reason_is_one_line(pool: ModelPool) -> None:
    router = CascadeRouter(pool, [RulesPillar(), Opinion("semantic", 0.5, 0.5)], bandit=BanditPillar(store=":memory:"))

    decision = router.route(ask("What is the capital of Peru?"))

    assert isinstance(decision, CascadeDecision)
    assert [s.pillar for s in decision.signals] == ["rules", "semantic", "bandit"]
    assert all(getattr(s, "latency_ms", None) is not None for s in decision.signals)
    assert decision.latency_ms >= sum(s.latency_ms for s in decision.signals[:2])  # type: ignore[attr-defined]
    assert "\n" not in decision.explain()
    assert decision.explain().startswith(f"{decision.model} for plan: rules ")


def test_an_email_address_never_gets_a_cloud_model_whatever_the_others_say(pool: ModelPool) -> None:
    confident_hard = Opinion("semantic", 1.0, 1.0, model="cloud")  # even names the cloud model
    bandit = BanditPillar(store=":memory:", seed=0)
    for _ in range(50):  # and the bandit has only ever seen the cloud models do well
        bandit.update(bandit.context("plan", 1.0), 1.0, model="cloud")
    router = CascadeRouter(pool, [RulesPillar(), confident_hard], bandit=bandit, pins={"plan": "cloud"})

    for text in (
        "Write to jane.doe@example.org and prove the Riemann hypothesis.",
        "Contact: ops@acme.io. Step by step, derive the Navier-Stokes equations.",
    ):
        decision = router.route(ask(text))
        assert decision.model == "local"
        assert pool[decision.model].is_local
        assert all(pool[m].is_local for m in decision.fallbacks)
        assert "local only" in decision.explain() and "pin cloud ignored" in decision.explain()


def test_a_local_only_call_fails_clearly_when_the_pool_has_no_local_model() -> None:
    cloud_only = ModelPool.from_dict({"models": {k: v for k, v in POOL["models"].items() if k != "local"}})
    router = CascadeRouter(cloud_only, [RulesPillar()])

    with pytest.raises(RoutingError, match=r"must stay on a local model.*add a local model"):
        router.route(ask("My card is 4111 1111 1111 1111, is that safe?"))


def test_pins_win_and_a_subgraph_uses_its_parents_ladder(pool: ModelPool) -> None:
    router = CascadeRouter(
        pool,
        [Opinion("semantic", 0.5, 0.9)],
        ladders={"report": Ladder(("local", "cloud"), thresholds=(0.4,))},
        pins={"triage": "cloud-mini"},
    )

    assert router.route(ask("x", node="report:draft")).model == "cloud"  # 0.5 ≥ 0.4 on report's ladder
    assert router.route(ask("x", node="plan")).model == "cloud-mini"  # default ladder: middle rung
    assert router.route(ask("x", node="triage:sub")).model == "cloud-mini"
    assert "node pinned to cloud-mini" in router.route(ask("x", node="triage")).explain()


def test_without_any_difficulty_the_pools_default_model_is_used(pool: ModelPool) -> None:
    decision = CascadeRouter(pool, [Opinion("quiet", None, 0.0)]).route(ask("hello"))
    assert decision.model == pool.default_model() == "local"
    assert "no difficulty" in decision.explain()


def test_the_bandit_chooses_between_the_target_rung_and_the_next_one(pool: ModelPool) -> None:
    bandit = BanditPillar(store=":memory:", seed=0)
    router = CascadeRouter(pool, [Opinion("semantic", 0.5, 0.9)], bandit=bandit)
    context = bandit.context("plan", 0.5)
    for _ in range(30):  # the middle rung keeps failing; the next one up works
        bandit.update(context, -0.8, model="cloud-mini")
        bandit.update(context, 0.7, model="cloud")

    decision = router.route(ask("Plan a three-city trip."))

    picked = [s for s in decision.signals if isinstance(s, BanditSignal)]
    assert picked and picked[0].context == "plan|medium"
    assert decision.model == "cloud" and "bandit → cloud" in decision.explain()
    assert router.observe(decision, Outcome()) == 1.0  # a success, fed back to the bandit


async def test_aroute_matches_route(pool: ModelPool) -> None:
    router = CascadeRouter(pool, [RulesPillar(), Opinion("semantic", 0.7, 0.9)])
    request = ask("Derive the quadratic formula.")
    assert (await router.aroute(request)).model == router.route(request).model == "cloud"


def test_pillars_can_be_named_and_mistakes_are_named_back(pool: ModelPool) -> None:
    router = CascadeRouter(pool, ["rules", "bandit"])
    assert isinstance(router.pillars[0], RulesPillar)
    assert isinstance(router.bandit, BanditPillar)  # a bandit among the pillars acts last

    with pytest.raises(UnknownModelError, match="cloud-max"):
        CascadeRouter(pool, ["rules"], ladder=["local", "cloud-max"])
    with pytest.raises(UnknownModelError, match="nope"):
        CascadeRouter(pool, ["rules"], pins={"plan": "nope"})


def test_rules_named_by_the_cascade_follow_the_pools_rules_table() -> None:
    """A node the pool file keeps local (``[rules.nodes.payroll] local_only = true``) stays local."""
    pool = ModelPool.from_dict({**POOL, "rules": {"nodes": {"payroll": {"local_only": True}}}})
    router = CascadeRouter(pool, ["rules", Opinion("sure", 1.0, 1.0)])
    assert router.route(ask("Sum these salaries.", node="payroll")).model == "local"
    assert router.route(ask("Sum these salaries.", node="plan")).model == "cloud"


def test_the_recommended_cascade_leaves_the_judge_out(pool: ModelPool) -> None:
    router = CascadeRouter.recommended(pool)
    names = [p.name for p in router.pillars]
    assert names[0] == "rules" and "judge" not in names
    assert set(names) <= {"rules", "semantic"}


def test_the_fingerprint_names_the_configuration_not_the_instance(pool: ModelPool) -> None:
    first = CascadeRouter(pool, [RulesPillar()], pins={"plan": "cloud"})
    same = CascadeRouter(pool, [RulesPillar()], pins={"plan": "cloud"})
    other = CascadeRouter(pool, [RulesPillar()], ladder=["local", "cloud"])
    assert first.fingerprint() == same.fingerprint() != other.fingerprint()
    assert "local<0.33≤cloud-mini<0.67≤cloud" in first.fingerprint()
