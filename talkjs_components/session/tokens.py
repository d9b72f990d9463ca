"""Keeping a session's user token valid: refresh before expiry, retry with backoff."""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import jwt

from ..errors import AuthError, ChatError
from .backoff import Backoff

__all__ = ["TokenFetcher", "TokenKeeper", "token_expiry"]

logger = logging.getLogger("talkjs_components.session")

TokenFetcher = Callable[[], str | Awaitable[str]]
"""Returns a fresh user token, synchronously or as an awaitable."""

FETCH_TIMEOUT = 10.0
"""Seconds a token fetcher may take before the attempt counts as failed."""

REFRESH_MARGIN = 60.0
"""Seconds before expiry at which a token is refreshed, at most 10 % of its lifetime.

The lifetime runs from the token's ``iat`` claim, or from when the session
first saw the token if it has none.
"""

MAX_FAILURES_AFTER_EXPIRY = 5
"""Failed refreshes tolerated once the current token has expired, before the session ends."""

_UNSET: Any = object()


def _claims(token: str) -> dict[str, Any]:
    try:
        claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        return {}
    return claims


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def token_expiry(token: str) -> float | None:
    """Return the ``exp`` claim of ``token`` in seconds, or ``None`` when it has none.

    The signature is not checked here: the value only schedules a refresh,
    and the backend verifies every token it receives.
    """
    return _number(_claims(token).get("exp"))


def _refresh_time(token: str, expiry: float) -> float:
    issued = _number(_claims(token).get("iat"))
    start = issued if issued is not None and issued < expiry else time.time()
    lifetime = max(0.0, expiry - start)
    return expiry - min(REFRESH_MARGIN, lifetime * 0.1)


def _require_later_expiry(token: str, current_expiry: float) -> None:
    """Raise unless ``token`` expires later than the token it replaces.

    A fetcher that hands back the same (cached) token would otherwise be
    called again at once, forever.
    """
    expiry = token_expiry(token)
    if expiry is not None and expiry <= current_expiry:
        raise AuthError(
            f"token_fetcher returned a token that expires at {_format(expiry)}, no later than "
            f"the current one ({_format(current_expiry)}): return a newly minted token",
            code="token_fetch_failed",
        )


def _format(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="seconds")


class TokenKeeper:
    """The current token of a session, and the loop that refreshes it.

    Args:
        token: The initial token, if any.
        fetcher: Called for a new token, synchronously or as a coroutine.
        backoff: Delays between failed refresh attempts.
    """

    def __init__(
        self,
        token: str | None,
        fetcher: TokenFetcher | None,
        *,
        backoff: Backoff | None = None,
    ) -> None:
        self._token = token
        self._fetcher = fetcher
        self._backoff = backoff or Backoff()
        self._changed = asyncio.Event()

    @property
    def token(self) -> str | None:
        """The token to present now."""
        return self._token

    @property
    def has_fetcher(self) -> bool:
        """Whether a new token can be fetched."""
        return self._fetcher is not None

    def update(self, token: str | None = _UNSET, fetcher: TokenFetcher | None = _UNSET) -> None:
        """Replace the token or the fetcher; the refresh loop reschedules at once."""
        if token is not _UNSET and token != self._token:
            self._token = token
            self._changed.set()
        if fetcher is not _UNSET:
            self._fetcher = fetcher
            self._changed.set()

    async def fetch(self) -> str:
        """Call the fetcher once and return its token.

        Raises:
            AuthError: There is no fetcher, it failed, timed out after
                ``FETCH_TIMEOUT`` seconds, or returned something other than a
                non-empty string.
        """
        fetcher = self._fetcher
        if fetcher is None:
            raise AuthError("no token_fetcher to get a new token from", code="token_fetch_failed")
        try:
            async with asyncio.timeout(FETCH_TIMEOUT):
                result = fetcher()
                token = await result if inspect.isawaitable(result) else result
        except TimeoutError as exc:
            raise AuthError(
                f"token_fetcher did not return within {FETCH_TIMEOUT:g} s",
                code="token_fetch_failed",
            ) from exc
        except ChatError:
            raise
        except Exception as exc:
            raise AuthError(
                f"token_fetcher raised {type(exc).__name__}: {exc}", code="token_fetch_failed"
            ) from exc
        if not isinstance(token, str) or not token:
            raise AuthError(
                f"token_fetcher must return a non-empty string, got {type(token).__name__}",
                code="token_fetch_failed",
            )
        return token

    async def keep_fresh(
        self,
        reauthenticate: Callable[[str], Awaitable[None]],
        report: Callable[[ChatError], None],
    ) -> None:
        """Refresh the token before it expires, for as long as the session lives.

        ``reauthenticate`` presents a new token to the backend; ``report``
        receives every failed attempt. Returns only by raising.

        Raises:
            AuthError: The token expired and there is no fetcher, or every
                refresh failed and the token has been expired for
                ``MAX_FAILURES_AFTER_EXPIRY`` attempts.
        """
        while True:
            self._changed.clear()
            expiry = token_expiry(self._token) if self._token else None
            if expiry is None:
                await self._changed.wait()
                continue
            if not self.has_fetcher:
                if await self._wait_until(expiry):
                    continue
                raise AuthError(
                    f"the session's token expired at {_format(expiry)}: pass a fresh token, "
                    "or a token_fetcher so the session can refresh it",
                    code="token_expired",
                )
            assert self._token is not None
            if await self._wait_until(_refresh_time(self._token, expiry)):
                continue
            await self._refresh(expiry, reauthenticate, report)

    async def _refresh(
        self,
        expiry: float,
        reauthenticate: Callable[[str], Awaitable[None]],
        report: Callable[[ChatError], None],
    ) -> None:
        failures_after_expiry = 0
        attempt = 0
        while True:
            try:
                token = await self.fetch()
                _require_later_expiry(token, expiry)
                await reauthenticate(token)
            except ChatError as error:
                report(error)
                if time.time() >= expiry:
                    failures_after_expiry += 1
                    if failures_after_expiry >= MAX_FAILURES_AFTER_EXPIRY:
                        raise AuthError(
                            f"the session's token expired at {_format(expiry)} and "
                            f"{failures_after_expiry} refreshes after that failed; "
                            f"last error: {error.message}",
                            code="token_refresh_failed",
                        ) from error
                delay = self._backoff.delay(attempt)
                attempt += 1
                logger.debug("token refresh failed (%s); retrying in %.1f s", error.code, delay)
                if await self._wait_for(delay):
                    return
                continue
            self._token = token
            return

    async def _wait_until(self, moment: float) -> bool:
        """Sleep until ``moment`` (epoch seconds); return True if the token or fetcher changed."""
        return await self._wait_for(moment - time.time())

    async def _wait_for(self, seconds: float) -> bool:
        if seconds <= 0:
            # Yield even when no wait is due, so this loop can never starve the event loop.
            await asyncio.sleep(0)
            return self._changed.is_set()
        try:
            async with asyncio.timeout(seconds):
                await self._changed.wait()
        except TimeoutError:
            return False
        return True
