"""A password in a backend URL reaches the client that needs it and nothing else: no repr,
attribute, error message or key shows it."""

from __future__ import annotations

import pytest

from graphroute import ConfigError
from graphroute.scaleout import (
    open_bandit_store,
    open_node_cache,
    open_response_cache,
    open_single_flight,
    open_spend_ledger,
    redact,
)

SECRET = "s3cret-redis-pw-4242"
UNREACHABLE = f"redis://default:{SECRET}@127.0.0.1:1/0?prefix=my-app"  # port 1: nothing listens


def test_redact_hides_passwords_in_credentials_and_query_arguments() -> None:
    assert redact("postgresql://me:pw@db:5432/traces") == "postgresql://me:***@db:5432/traces"
    assert redact("redis://:pw@cache:6379/0") == "redis://:***@cache:6379/0"
    assert redact("postgresql://db/traces?password=pw&sslmode=require") == (
        "postgresql://db/traces?password=%2A%2A%2A&sslmode=require"
    )
    assert redact("redis://cache:6379/0") == "redis://cache:6379/0"
    assert redact("/var/lib/graphroute/traces.sqlite") == "/var/lib/graphroute/traces.sqlite"


@pytest.mark.parametrize(
    "opener", [open_node_cache, open_response_cache, open_bandit_store, open_spend_ledger, open_single_flight]
)
def test_no_shared_backend_object_shows_the_password(opener) -> None:  # type: ignore[no-untyped-def]
    backend = opener(UNREACHABLE)

    shown = [repr(backend), *(str(value) for name, value in vars(backend).items() if name != "_client")]

    assert not any(SECRET in text for text in shown)
    assert "***" in repr(backend) and backend.prefix == "my-app:"


def test_a_failing_connection_does_not_echo_the_password() -> None:
    cache = open_response_cache(UNREACHABLE)
    with pytest.raises(Exception) as caught:
        cache.lookup("prompt", "llm")
    assert SECRET not in str(caught.value) and SECRET not in repr(caught.value)


def test_an_unknown_scheme_names_the_value_without_the_password() -> None:
    with pytest.raises(ConfigError) as caught:
        open_node_cache(f"memcached://user:{SECRET}@cache:11211")
    assert "memcached" in str(caught.value) and SECRET not in str(caught.value)
