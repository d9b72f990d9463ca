"""Credentials in database and broker URLs never reach a log line or error message."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from talkjs_components.broker.redis import describe_url as describe_redis_url
from talkjs_components.redaction import redact_url
from talkjs_components.server.config import describe_database
from talkjs_components.store.postgres.connect import describe_url as describe_postgres_url

MASKERS: list[Callable[[str], str]] = [
    redact_url,
    describe_postgres_url,
    describe_redis_url,
    describe_database,
]


@pytest.mark.parametrize("mask", MASKERS)
@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql://chat:hunter2@db:5432/chat", "postgresql://chat:***@db:5432/chat"),
        ("postgresql://db/chat?password=hunter2&sslmode=require", None),
        ("redis://:hunter2@cache:6379/0", "redis://:***@cache:6379/0"),
        ("rediss://cache:6380?passwd=hunter2", None),
        ("postgresql://db/chat", "postgresql://db/chat"),
    ],
)
def test_credentials_masked(mask: Callable[[str], str], url: str, expected: str | None) -> None:
    masked = mask(url)
    assert "hunter2" not in masked
    if expected is not None:
        assert masked == expected
    else:
        assert "***" in masked
