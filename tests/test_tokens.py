"""Token refresh, expiry and retry backoff of TalkSession, against the embedded backend."""

from __future__ import annotations

import time

import pytest

from talkjs_components.auth import create_user_token
from talkjs_components.embedded import EmbeddedBackend
from talkjs_components.errors import AuthError, ChatError
from talkjs_components.models import User
from talkjs_components.session import Backoff, SessionStatus, TalkSession, token_expiry
from talkjs_components.session.tokens import MAX_FAILURES_AFTER_EXPIRY

from .waiting import wait_until

FAST_RETRY = Backoff(initial=0.01, maximum=0.05, jitter=0)


def test_token_expiry_reads_exp(backend: EmbeddedBackend) -> None:
    token = create_user_token(backend.app, "alice", expires_in=60, now=1_000_000.0)
    assert token_expiry(token) == 1_000_060.0


def test_token_expiry_without_exp(backend: EmbeddedBackend) -> None:
    assert token_expiry(create_user_token(backend.app, "alice", expires_in=None)) is None
    assert token_expiry("not a token") is None


def test_backoff_grows_and_caps() -> None:
    backoff = Backoff(initial=1, factor=2, maximum=5, jitter=0)
    assert [backoff.delay(attempt) for attempt in range(5)] == [1, 2, 4, 5, 5]


def test_backoff_jitter_stays_in_range() -> None:
    backoff = Backoff(initial=4, maximum=4, jitter=0.5)
    delays = [backoff.delay(0) for _ in range(200)]
    assert min(delays) >= 2
    assert max(delays) <= 4


def test_backoff_rejects_bad_settings() -> None:
    with pytest.raises(ValueError, match="initial delay"):
        Backoff(initial=0)
    with pytest.raises(ValueError, match="factor"):
        Backoff(factor=0.5)


async def test_expired_token_without_fetcher_ends_session(backend: EmbeddedBackend) -> None:
    token = create_user_token(backend.app, "alice", expires_in=1.5)
    session = TalkSession(backend.app.app_id, "alice", token=token)
    await session.wait_ready()
    await wait_until(lambda: session.status is SessionStatus.FAILED, timeout=5, what="expiry")
    assert session.error is not None
    assert session.error.code == "token_expired"
    assert "token_fetcher" in session.error.message
    assert not session.is_alive


async def test_fetcher_refreshes_before_expiry(backend: EmbeddedBackend) -> None:
    fetched: list[float] = []
    initial = create_user_token(backend.app, "alice", expires_in=2)
    expiry = token_expiry(initial)
    assert expiry is not None

    def fetch_token() -> str:
        fetched.append(time.time())
        return create_user_token(backend.app, "alice", expires_in=3600)

    session = TalkSession(backend.app.app_id, "alice", token=initial, token_fetcher=fetch_token)
    await session.wait_ready()
    await wait_until(lambda: bool(fetched), timeout=5, what="the refresh")
    assert fetched[0] < expiry
    await wait_until(lambda: time.time() > expiry + 0.5, timeout=5)
    assert session.status is SessionStatus.READY
    assert await session.has_valid_credentials()
    session.destroy()
    assert len(fetched) == 1


async def test_failed_refreshes_retry_then_recover(backend: EmbeddedBackend) -> None:
    calls: list[str] = []
    errors: list[ChatError] = []

    async def flaky_fetcher() -> str:
        calls.append("call")
        if len(calls) <= 2:
            raise ConnectionError("token endpoint unavailable")
        return create_user_token(backend.app, "alice", expires_in=3600)

    session = TalkSession(
        backend.app.app_id,
        "alice",
        token=create_user_token(backend.app, "alice", expires_in=1),
        token_fetcher=flaky_fetcher,
        retry_backoff=FAST_RETRY,
    )
    session.on_error(errors.append)
    await session.wait_ready()
    await wait_until(lambda: len(calls) == 3, timeout=5, what="the third fetch")
    await wait_until(lambda: len(errors) == 2, timeout=2, what="two reported errors")
    assert all(error.code == "token_fetch_failed" for error in errors)
    assert "ConnectionError" in errors[0].message
    assert session.status is SessionStatus.READY
    session.destroy()


async def test_refresh_gives_up_after_expiry(backend: EmbeddedBackend) -> None:
    calls: list[str] = []

    def broken_fetcher() -> str:
        calls.append("call")
        raise RuntimeError("boom")

    session = TalkSession(
        backend.app.app_id,
        "alice",
        token=create_user_token(backend.app, "alice", expires_in=1),
        token_fetcher=broken_fetcher,
        retry_backoff=FAST_RETRY,
    )
    await session.wait_ready()
    await wait_until(lambda: session.status is SessionStatus.FAILED, timeout=5, what="giving up")
    assert session.error is not None
    assert session.error.code == "token_refresh_failed"
    assert "boom" in session.error.message
    # Bounded retries: at most a few dozen attempts in about a second, never a spin.
    assert MAX_FAILURES_AFTER_EXPIRY <= len(calls) < 200


async def test_rejected_token_replaced_on_connect(backend: EmbeddedBackend) -> None:
    long_expired = create_user_token(backend.app, "alice", expires_in=60, now=time.time() - 600)
    fresh_tokens: list[str] = []

    def fetch_token() -> str:
        fresh_tokens.append(create_user_token(backend.app, "alice"))
        return fresh_tokens[-1]

    session = TalkSession(
        backend.app.app_id,
        "alice",
        token=long_expired,
        token_fetcher=fetch_token,
        retry_backoff=FAST_RETRY,
    )
    await session.wait_ready()
    assert len(fresh_tokens) == 1
    session.destroy()


async def test_rejected_token_without_fetcher_fails(backend: EmbeddedBackend) -> None:
    long_expired = create_user_token(backend.app, "alice", expires_in=60, now=time.time() - 600)
    session = TalkSession(backend.app.app_id, "alice", token=long_expired)
    with pytest.raises(AuthError) as caught:
        await session.wait_ready()
    assert caught.value.code == "token_expired"


async def test_update_credentials_without_reconnect(backend: EmbeddedBackend) -> None:
    session = TalkSession(
        backend.app.app_id, "alice", token=create_user_token(backend.app, "alice")
    )
    await session.wait_ready()
    assert await session.has_valid_credentials()
    session.update_credentials(token=create_user_token(backend.app, "bob"))
    assert not await session.has_valid_credentials()
    session.update_credentials(token=create_user_token(backend.app, "alice"))
    assert await session.has_valid_credentials()
    assert session.status is SessionStatus.READY
    session.destroy()
    assert not await session.has_valid_credentials()


async def test_update_me_writes_fields(backend: EmbeddedBackend) -> None:
    session = TalkSession(
        backend.app.app_id, "alice", token=create_user_token(backend.app, "alice")
    )
    await session.wait_ready()
    stored = await session.update_me(User(id="alice", name="Alice B.", locale=None))
    assert stored.name == "Alice B."
    assert (await backend.service.get_user("alice")).name == "Alice B."
    with pytest.raises(ValueError, match="bob"):
        await session.update_me(User(id="bob", name="Mallory"))
    session.destroy()


async def test_cached_token_fetcher_does_not_spin(backend: EmbeddedBackend) -> None:
    """A fetcher that returns the same token again is a failed refresh, retried with backoff."""
    token = create_user_token(backend.app, "alice", expires_in=2)
    calls: list[str] = []
    errors: list[ChatError] = []

    def cached_fetcher() -> str:
        calls.append("call")
        return token

    session = TalkSession(
        backend.app.app_id, "alice", token=token, token_fetcher=cached_fetcher,
        retry_backoff=FAST_RETRY,
    )  # fmt: skip
    session.on_error(errors.append)
    await session.wait_ready()
    await wait_until(lambda: session.status is SessionStatus.FAILED, timeout=8, what="giving up")
    assert session.error is not None
    assert session.error.code == "token_refresh_failed"
    assert "no later than" in errors[0].message
    assert len(calls) < 200
