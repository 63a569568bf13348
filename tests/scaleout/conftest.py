"""One Redis and one PostgreSQL server for the whole session, and a clean slate for each test.

Tests that need a server ask for ``redis_url`` or ``postgres_url``; when the Debian package is
not installed they skip, naming the package to install.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from tests.scaleout.servers import Server, ServerUnavailable, fresh_database, start_postgres, start_redis


@pytest.fixture(scope="session")
def redis_server() -> Iterator[Server]:
    try:
        server = start_redis()
    except ServerUnavailable as reason:
        pytest.skip(str(reason))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[Server]:
    try:
        server = start_postgres()
    except ServerUnavailable as reason:
        pytest.skip(str(reason))
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server: Server) -> Iterator[str]:
    """The session's Redis, emptied after the test."""
    import redis

    yield redis_server.url
    client = redis.Redis.from_url(redis_server.url)
    client.flushdb()
    client.close()


@pytest.fixture
def postgres_url(postgres_server: Server) -> str:
    """A new, empty database on the session's PostgreSQL."""
    return fresh_database(postgres_server.url, f"t_{uuid.uuid4().hex[:12]}")
