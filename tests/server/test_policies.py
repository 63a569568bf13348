"""router-<policy> names: parsing, and the budget and cloud-share caps on the pool's routing (no model is called)."""

from __future__ import annotations

from collections import Counter

import pytest
from langchain_core.messages import HumanMessage

from graphroute import ConfigError, ModelPool, RouteRequest
from graphroute.pillars.bandit import Outcome
from graphroute.pillars.base import Pillar, Signal
from graphroute.routing.base import RouteDecision
from graphroute.routing.cascade import CascadeRouter
from graphroute.routing.static import StaticRouter
from graphroute.server.policies import (
    MAX_TOKENS_KEY,
    MIN_RANKED,
    BudgetRouter,
    CloudShareRouter,
    Policy,
    parse_policy,
    router_for,
)

POOL = ModelPool.from_dict(
    {
        "routing": {"default": "local"},
        "models": {
            "local": {"provider": "ollama", "model": "qwen2.5:0.5b"},
            "mini": {
                "provider": "openai",
                "model": "gpt-4o-mini",
                "api_key_env": "OPENAI_API_KEY",
                "input_price": 0.15,
                "output_price": 0.60,
            },
            "big": {
                "provider": "openai",
                "model": "gpt-4o",
                "api_key_env": "OPENAI_API_KEY",
                "input_price": 2.50,
                "output_price": 10.0,
            },
        },
    }
)


def request(text: str = "hello", max_tokens: int | None = None) -> RouteRequest:
    return RouteRequest(messages=[HumanMessage(text)], metadata={MAX_TOKENS_KEY: max_tokens})


@pytest.mark.parametrize(
    ("name", "policy"),
    [
        ("router-default", Policy("default")),
        ("router-budget-0.002", Policy("budget", 0.002)),
        ("router-cloud-share-0.3", Policy("cloud-share", 0.3)),
        ("router-cloud-share-0", Policy("cloud-share", 0.0)),
        ("gpt-4o", None),
    ],
)
def test_router_names_parse(name: str, policy: Policy | None) -> None:
    assert parse_policy(name) == policy


def test_a_parsed_policy_prints_back_as_its_name() -> None:
    assert Policy("budget", 0.002).name == "router-budget-0.002"


@pytest.mark.parametrize(
    "name", ["router-", "router-fast", "router-budget-0", "router-budget-x", "router-cloud-share-1.5"]
)
def test_malformed_router_names_say_which_forms_exist(name: str) -> None:
    with pytest.raises(ConfigError, match="router-budget-<usd per request>"):
        parse_policy(name)


def test_router_default_is_the_pools_own_routing() -> None:
    router = router_for(Policy("default"), POOL)

    assert router.route(request()).model == "local"


def test_router_default_asks_the_pillars_the_pool_file_names() -> None:
    pool = ModelPool.from_dict({**POOL.config.model_dump(), "routing": {"default": "local", "pillars": ["rules"]}})
    router = router_for(Policy("default"), pool)

    hard = router.route(request("Prove that the square root of two is irrational, step by step."))
    assert hard.model != "local" and "rules 0.80" in hard.reason
    assert router.route(request("hi")).model == "local"


def test_a_budget_buys_the_priciest_model_that_fits() -> None:
    router = BudgetRouter(POOL, budget_usd=0.002)

    short = router.route(request("What is 2+2?", max_tokens=50))  # gpt-4o: ~$0.0005
    long = router.route(request("x" * 4000, max_tokens=1000))  # gpt-4o: ~$0.0125, mini: ~$0.0008

    assert (short.model, short.fallbacks) == ("big", ("mini", "local"))
    assert long.model == "mini"
    assert "priciest that fits" in long.reason


def test_a_budget_nothing_fits_gets_the_cheapest() -> None:
    pool = POOL.replace("local", input_price=1.0, output_price=1.0)

    decision = BudgetRouter(pool, budget_usd=1e-9).route(request())

    assert decision.model in ("local", "mini") and "no model fits" in decision.reason


def test_cloud_share_paces_requests_to_the_fraction() -> None:
    router = CloudShareRouter(POOL, share=0.3)

    models = [router.route(request()).model for _ in range(10)]

    assert Counter(models) == {"local": 7, "mini": 3}
    assert models[:3] == ["local", "local", "local"]  # never ahead of the share


def test_cloud_share_zero_and_one() -> None:
    assert {CloudShareRouter(POOL, 0.0).route(request()).model for _ in range(5)} == {"local"}
    assert {CloudShareRouter(POOL, 1.0).route(request()).model for _ in range(5)} == {"mini"}


WITH_RULES = ModelPool.from_dict({**POOL.config.model_dump(), "routing": {"default": "local", "pillars": ["rules"]}})
HARD = "Prove that the square root of two is irrational, step by step, and derive the general case for primes."
EASY = "hi"
PRIVATE = "Prove, step by step, that the invoice sent to jane.doe@acme-corp.com was paid twice."


def test_with_pillars_a_budget_caps_their_choice_instead_of_buying_the_priciest_model() -> None:
    router = router_for(Policy("budget", 0.01), WITH_RULES)

    easy = router.route(request(EASY, max_tokens=50))
    hard = router.route(request(HARD, max_tokens=50))
    tight = router_for(Policy("budget", 0.0002), WITH_RULES).route(request(HARD, max_tokens=50))

    assert easy.model == "local"  # the budget could pay for gpt-4o; the rules say it is not needed
    assert hard.model == "big" and "fits" in hard.reason
    assert tight.model == "mini" and "priciest that fits" in tight.reason  # gpt-4o would cost ~$0.0006


def test_a_budget_never_overrides_a_privacy_rule() -> None:
    decision = router_for(Policy("budget", 1.0), WITH_RULES).route(request(PRIVATE))

    assert decision.model == "local" and all(name == "local" for name in decision.fallbacks)


def test_with_pillars_the_cloud_share_goes_to_the_hardest_requests() -> None:
    router = router_for(Policy("cloud-share", 0.3), WITH_RULES)
    prompts = [EASY, "What is 2+2?", HARD] * 20  # a third are hard

    models = [router.route(request(text)).model for text in prompts]

    to_cloud = [text for text, model in zip(prompts, models, strict=True) if model != "local"]
    assert len(to_cloud) <= 0.3 * len(prompts)  # never more than the share
    assert to_cloud.count(HARD) >= 0.25 * len(prompts)  # used where there is hard work for it
    assert set(to_cloud) == {HARD}  # and only the hard ones


def test_the_cloud_share_never_overrides_a_privacy_rule() -> None:
    router = router_for(Policy("cloud-share", 1.0), WITH_RULES)

    assert router.route(request(PRIVATE)).model == "local"
    assert router.route(request(HARD)).model != "local"


class WordCount(Pillar):
    """A difficulty of 0.1 a word: a pillar whose scale the traffic below never tops."""

    name = "words"

    def score(self, request: RouteRequest) -> Signal:
        return Signal(self.name, difficulty=min(1.0, 0.1 * len(request.text.split())), confidence=1.0)


def test_the_cloud_share_learns_what_is_hard_on_this_servers_traffic() -> None:
    """No request here is hard on the 0–1 scale; once ranked, the relatively hardest use the share."""
    router = CloudShareRouter(POOL, 0.3, pillars=CascadeRouter(POOL, [WordCount()]))
    short, longer = "two words", "five words in this one"  # difficulty 0.2 and 0.5
    prompts = [short, longer] * 40

    models = [router.route(request(text)).model for text in prompts]

    assert set(models[:MIN_RANKED]) == {"local"}  # warming up: nothing reaches 1 − 0.3
    to_cloud = [text for text, model in zip(prompts, models, strict=True) if model != "local"]
    assert set(to_cloud) == {longer} and len(to_cloud) >= 0.2 * len(prompts)


def test_a_servers_own_default_router_is_what_a_budget_caps() -> None:
    """``create_app(router=...)`` routes router-default; a budget caps that router, not the pool's."""
    base = CascadeRouter(POOL, [WordCount()])  # local < 0.33 ≤ mini < 0.67 ≤ big
    router = router_for(Policy("budget", 1.0), POOL, base=base)

    assert router.route(request("one")).model == "local"
    assert router.route(request("a b c d e f g h")).model == "big"
    assert router_for(Policy("default"), POOL, base=base) is base


class Learning(StaticRouter):
    """A router-default that remembers what it was told about the calls it routed."""

    def __init__(self) -> None:
        super().__init__("local", known=POOL.names)
        self.told: list[tuple[str, Outcome]] = []

    def observe(self, decision: RouteDecision, outcome: Outcome) -> float | None:
        self.told.append((decision.model, outcome))
        return None


@pytest.mark.parametrize("policy", [Policy("budget", 0.01), Policy("cloud-share", 0.5)])
def test_the_capped_router_still_learns_from_every_call(policy: Policy) -> None:
    base = Learning()
    router = router_for(policy, POOL, base=base)
    decision = router.route(request())

    router.observe(decision, Outcome(error="Timeout"))

    assert base.told == [(decision.model, Outcome(error="Timeout"))]


def test_a_capped_routers_fingerprint_names_what_it_caps() -> None:
    """Cache keys carry the fingerprint: answers routed by other pillars are not reused."""
    plain = router_for(Policy("budget", 0.01), POOL)
    with_rules = router_for(Policy("budget", 0.01), WITH_RULES)

    assert plain.fingerprint() == "budget:0.01"
    assert with_rules.fingerprint().startswith("budget:0.01|") and "rules" in with_rules.fingerprint()
