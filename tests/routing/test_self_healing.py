"""Acceptance: a provider that starts failing loses its traffic within a few calls and wins it back.

Three models on a scripted OpenAI-compatible server (real HTTP, real ``ChatOpenAI`` clients);
the cheapest one fails every call from call 50 to call 149. The cascade routes each call
(rules → ladder → bandit) and every outcome is fed back through ``CascadeRouter.observe``,
which is what dispatch does after each call.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from langchain_core.messages import HumanMessage

from graphroute import ModelPool, RouteRequest
from graphroute.pillars.bandit import BanditPillar, Outcome
from graphroute.pillars.rules import RulesPillar
from graphroute.routing.cascade import CascadeRouter
from graphroute.testing import ReceivedRequest, Reply, ScriptedProvider

FAIL_FROM, RECOVER_AT, CALLS = 50, 150, 300


class Outage:
    """Answers every model, except ``cheap`` while ``failing`` is set (HTTP 500)."""

    def __init__(self) -> None:
        self.failing = False

    def __call__(self, request: ReceivedRequest) -> Reply:
        if self.failing and request.body.get("model") == "cheap":
            return Reply(status=500, content="upstream exploded")
        return Reply(content="Hello!", prompt_tokens=1000, completion_tokens=500)


@pytest.fixture
def outage() -> Iterator[tuple[Outage, ScriptedProvider]]:
    script = Outage()
    with ScriptedProvider(script) as provider:
        yield script, provider


def share(models: list[str], start: int, end: int, model: str = "cheap") -> float:
    window = models[start:end]
    return window.count(model) / len(window)


@pytest.mark.parametrize("policy", ["epsilon", "thompson"])
def test_a_failing_provider_loses_its_traffic_and_regains_it(
    policy: str, outage: tuple[Outage, ScriptedProvider]
) -> None:
    script, provider = outage
    pool = ModelPool.from_dict(
        {
            "models": {
                "cheap": provider.pool_entry(model="cheap", input_price=0.1, output_price=0.4),
                "mid": provider.pool_entry(model="mid", input_price=1.0, output_price=4.0),
                "dear": provider.pool_entry(model="dear", input_price=5.0, output_price=20.0),
            }
        }
    )
    router = CascadeRouter(pool, [RulesPillar()], bandit=BanditPillar(policy=policy, store=":memory:", seed=0))
    request = RouteRequest(messages=[HumanMessage("Say hello.")], node="greet")

    routed: list[str] = []
    for call in range(CALLS):
        script.failing = FAIL_FROM <= call < RECOVER_AT
        decision = router.route(request)
        routed.append(decision.model)
        try:
            reply = pool.client(decision.model).invoke(request.messages)
        except Exception as error:  # what dispatch sees: the provider's own exception
            outcome = Outcome.from_reply(None, error=error)
        else:
            usage = reply.usage_metadata or {}
            cost = pool[decision.model].cost(usage.get("input_tokens", 0), usage.get("output_tokens", 0))
            outcome = Outcome.from_reply(str(reply.content), cost_usd=cost)
        router.observe(decision, outcome)

    before, failing, after = share(routed, 20, FAIL_FROM), share(routed, 70, RECOVER_AT), share(routed, 200, CALLS)
    assert before > 0.3  # the cheap model carried real traffic while it worked
    assert failing <= 0.1 * before  # lost ≥ 90 % of it from call 70 on
    assert after >= 0.5 * before and after > failing  # traffic back after the recovery
    sent = [r.body["model"] for r in provider.requests]
    assert sent.count("cheap") == routed.count("cheap")  # every decision was a real HTTP call
    assert set(routed) <= {"cheap", "mid"}  # an easy request never climbs to the dearest rung
