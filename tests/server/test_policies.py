"""router-<policy> names: parsing, and the interim budget and cloud-share routers (no model is called)."""

from __future__ import annotations

from collections import Counter

import pytest
from langchain_core.messages import HumanMessage

from graphroute import ConfigError, ModelPool, RouteRequest
from graphroute.server.policies import (
    MAX_TOKENS_KEY,
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
