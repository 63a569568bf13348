"""A flaky provider costs a retry, not a lost run: retries, breakers, fallbacks, privacy."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from langchain_core.messages import HumanMessage

from graphroute import EndpointUnreachableError, ModelPool, RoutedChatModel, RoutingError, Signal, StaticRouter
from graphroute.pillars.base import RouteRequest
from graphroute.providers.resilience import (
    AllModelsFailedError,
    BreakerBoard,
    CircuitBreaker,
    RetryPolicy,
    run_with_fallbacks,
)
from graphroute.routing import dispatch
from graphroute.routing.base import RouteDecision, Router
from graphroute.routing.session import RoutingSession
from graphroute.testing import Reply, Script, ScriptedProvider


@pytest.fixture(autouse=True)
def fresh_breakers() -> Iterator[None]:
    from graphroute.providers.resilience import BREAKERS

    BREAKERS.reset()
    yield
    BREAKERS.reset()


def routed_call(pool: ModelPool, router: Router) -> tuple[RoutingSession, object]:
    session = RoutingSession(pool=pool, router=router)
    messages = [HumanMessage("What is 2 + 2?")]
    call = dispatch.prepare(session, messages, {"langgraph_node": "solve"}, requested="gpt-4o")
    return session, dispatch.generate(call, None, messages, None, None, {})


def test_a_rate_limited_call_is_retried_honouring_retry_after() -> None:
    script = Script([Reply(status=429, retry_after="0"), Reply(status=503, retry_after="0"), Reply(content="4")])
    with ScriptedProvider(script) as provider:
        pool = ModelPool.from_dict({"models": {"cloud": provider.pool_entry(max_retries=2)}})

        session, result = routed_call(pool, StaticRouter("cloud"))

    assert result.generations[0].message.content == "4"
    assert len(provider.requests) == 3
    [record] = session.calls
    assert (record.model, record.retries, record.error) == ("cloud", 2, None)


def test_a_bad_request_is_not_retried() -> None:
    with ScriptedProvider(lambda request: Reply(status=400)) as provider:
        pool = ModelPool.from_dict({"models": {"cloud": provider.pool_entry(max_retries=3)}})

        with pytest.raises(Exception, match=r"model 'cloud' failed: .*Error code: 400"):
            routed_call(pool, StaticRouter("cloud"))

    assert len(provider.requests) == 1


def test_a_failing_model_falls_back_and_the_trace_says_so() -> None:
    with ScriptedProvider(lambda r: Reply(status=500)) as broken, ScriptedProvider(lambda r: Reply("4")) as backup:
        pool = ModelPool.from_dict(
            {
                "models": {
                    "primary": broken.pool_entry(max_retries=1, fallbacks=["backup"]),
                    "backup": backup.pool_entry(),
                }
            }
        )

        session, result = routed_call(pool, StaticRouter("primary"))

    assert result.generations[0].message.content == "4"
    [record] = session.calls
    assert record.model == "backup" and record.retries == 1
    assert "fell back to 'backup'" in record.reason and "primary" in record.reason
    assert "(failed: primary: " in record.reason and "500" in record.reason  # why, not only who


def test_an_answer_from_a_fallback_says_why_the_chosen_model_did_not_answer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """What a server client sees in the body's reason: the missing key is named, its value never."""
    monkeypatch.delenv("GRAPHROUTE_TEST_ABSENT_KEY", raising=False)
    with ScriptedProvider(lambda r: Reply("4")) as backup:
        pool = ModelPool.from_dict(
            {
                "models": {
                    "cloud": {**backup.pool_entry(fallbacks=["local"]), "api_key_env": "GRAPHROUTE_TEST_ABSENT_KEY"},
                    "local": backup.pool_entry(),
                }
            }
        )
        answer = RoutedChatModel(pool=pool, router=StaticRouter("cloud"), traces=False).invoke("2 + 2?")

    reason = answer.response_metadata["graphroute_reason"]
    assert answer.response_metadata["graphroute_model"] == "local"
    assert "fell back to 'local'" in reason and "GRAPHROUTE_TEST_ABSENT_KEY" in reason


def test_when_every_model_fails_one_error_names_each_and_why() -> None:
    with ScriptedProvider(lambda r: Reply(status=500)) as broken:
        pool = ModelPool.from_dict(
            {
                "models": {
                    "primary": broken.pool_entry(fallbacks=["dead"]),
                    "dead": {
                        "provider": "openai-compatible",
                        "model": "x",
                        "base_url": "http://127.0.0.1:9/v1",
                        "max_retries": 0,
                    },
                }
            }
        )

        with pytest.raises(AllModelsFailedError) as caught:
            routed_call(pool, StaticRouter("primary"))

    message = str(caught.value)
    assert "primary: model 'primary' failed:" in message and "Error code: 500" in message
    assert "dead: model 'dead': no answer from http://127.0.0.1:9/v1" in message
    assert caught.value.node == "solve"


def test_a_single_dead_endpoint_keeps_its_own_error() -> None:
    pool = ModelPool.from_dict(
        {
            "models": {
                "dead": {
                    "provider": "openai-compatible",
                    "model": "x",
                    "base_url": "http://127.0.0.1:9/v1",
                    "max_retries": 1,
                }
            }
        }
    )

    with pytest.raises(EndpointUnreachableError, match=r"'dead'.*127\.0\.0\.1:9"):
        routed_call(pool, StaticRouter("dead"))


class PrivateRouter(Router):
    """A router whose rules flagged the request as private but which still picked the cloud."""

    def route(self, request: RouteRequest) -> RouteDecision:
        return RouteDecision(
            "cloud",
            "cheapest",
            signals=(Signal("rules", local_only=True, reason="e-mail address"),),
            fallbacks=("local",),
        )


def test_a_private_request_never_reaches_a_cloud_model_even_through_fallbacks() -> None:
    with (
        ScriptedProvider(lambda r: Reply("cloud answer")) as cloud,
        ScriptedProvider(lambda r: Reply("local")) as local,
    ):
        pool = ModelPool.from_dict(
            {
                "models": {
                    "cloud": cloud.pool_entry(locality="cloud"),
                    "local": local.pool_entry(locality="local"),
                }
            }
        )

        _, result = routed_call(pool, PrivateRouter())

    assert result.generations[0].message.content == "local"
    assert cloud.requests == []


def test_a_private_request_with_no_local_option_fails_rather_than_leaks() -> None:
    with ScriptedProvider(lambda r: Reply("cloud answer")) as cloud:
        pool = ModelPool.from_dict({"models": {"cloud": cloud.pool_entry(locality="cloud")}})

        class OnlyCloud(PrivateRouter):
            def route(self, request: RouteRequest) -> RouteDecision:
                return RouteDecision("cloud", "x", signals=(Signal("rules", local_only=True, reason="card number"),))

        with pytest.raises(RoutingError, match=r"must stay local \(card number\)"):
            routed_call(pool, OnlyCloud())

    assert cloud.requests == []


def test_the_breaker_opens_probes_after_cool_down_and_closes_on_success() -> None:
    now = [0.0]
    breaker = CircuitBreaker(failure_threshold=3, cooldown_s=10, clock=lambda: now[0])

    for _ in range(3):
        breaker.record_failure()
    assert breaker.state == "open" and not breaker.allow()

    now[0] = 11
    assert breaker.state == "half_open"
    assert breaker.allow() and not breaker.allow()  # one probe at a time
    breaker.record_failure()
    assert breaker.state == "open"  # the failed probe restarts the cool-down

    now[0] = 22
    assert breaker.allow()
    breaker.record_success()
    assert breaker.state == "closed"


def test_an_open_breaker_skips_the_model_without_calling_it() -> None:
    board = BreakerBoard(failure_threshold=2, cooldown_s=60)
    calls: list[str] = []

    def attempt(model: str) -> str:
        calls.append(model)
        if model == "flaky":
            raise ConnectionError("refused")
        return "answer"

    for _ in range(3):
        run_with_fallbacks(
            ["flaky", "steady"], attempt, policy=lambda m: RetryPolicy(0), board=board, sleep=lambda s: None
        )

    assert calls == ["flaky", "steady", "flaky", "steady", "steady"]
    assert board.state("flaky") == "open"


def test_backoff_grows_exponentially_with_jitter_and_respects_retry_after() -> None:
    policy = RetryPolicy(base_delay_s=1, max_delay_s=5, jitter=0.5)

    assert 0.5 <= policy.delay(1) <= 1
    assert 1 <= policy.delay(2) <= 2
    assert 2.5 <= policy.delay(9) <= 5
    assert policy.delay(1, retry_after_s=3) == 3
    assert policy.delay(1, retry_after_s=60) == 5
