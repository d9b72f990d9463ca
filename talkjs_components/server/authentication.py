"""Authentication of REST calls: ``Authorization: Bearer <secret key or app token>``.

An app token is a JWT that :func:`~talkjs_components.auth.create_app_token`
makes: HS256, ``tokenType`` ``"app"``, ``iss`` the app id. The server also
requires an ``exp`` claim at most ``MAX_APP_TOKEN_LIFETIME`` seconds ahead,
so that a leaked token stops working soon. Failures raise ``ApiError`` 401,
and neither their reason nor the log ever contains the credential.
"""

from __future__ import annotations

import hmac
import logging
import time

from ..auth import App, verify_app_token
from ..errors import AuthError
from .errors import ApiError

__all__ = ["MAX_APP_TOKEN_LIFETIME", "AuthFailureLog", "authenticate_request"]

logger = logging.getLogger(__name__)

MAX_APP_TOKEN_LIFETIME = 3600
"""Seconds from now to an app token's ``exp`` beyond which the server rejects it."""

_HOW_TO = (
    "send 'Authorization: Bearer <secret key>' or 'Authorization: Bearer <app token>' "
    "with a token from create_app_token"
)


def authenticate_request(app: App, authorization: str | None, *, now: float | None = None) -> None:
    """Check the ``Authorization`` header of a REST call to ``app``.

    Raises:
        ApiError: 401, with the code of the failed check: ``credentials_missing``,
            ``credentials_malformed``, ``credentials_invalid``, a token code of
            :mod:`talkjs_components.auth`, ``token_expiry_missing`` or
            ``token_lifetime_too_long``.
    """
    if not authorization:
        raise ApiError(
            401, "credentials_missing", f"the Authorization header is missing: {_HOW_TO}"
        )
    scheme, _, credential = authorization.partition(" ")
    credential = credential.strip()
    if scheme.lower() != "bearer" or not credential:
        raise ApiError(
            401,
            "credentials_malformed",
            f"the Authorization header is not a bearer credential: {_HOW_TO}",
        )

    assert app.secret_key is not None, "hosted apps always have a secret key"
    if hmac.compare_digest(credential.encode(), app.secret_key.encode()):
        return
    if credential.count(".") != 2:
        raise ApiError(
            401,
            "credentials_invalid",
            f"the bearer credential is neither the secret key of app '{app.app_id}' nor a "
            f"JWT app token: {_HOW_TO}",
        )

    current = time.time() if now is None else now
    try:
        claims = verify_app_token(app, credential, now=current)
    except AuthError as exc:
        raise ApiError(401, exc.code, exc.message) from exc
    if claims.expires_at is None:
        raise ApiError(
            401,
            "token_expiry_missing",
            "the app token has no 'exp' claim: create app tokens with create_app_token, "
            f"which sets one, and a lifetime of at most {MAX_APP_TOKEN_LIFETIME} seconds",
        )
    if claims.expires_at - current > MAX_APP_TOKEN_LIFETIME:
        raise ApiError(
            401,
            "token_lifetime_too_long",
            f"the app token expires {claims.expires_at - current:.0f} seconds from now, over "
            f"the limit of {MAX_APP_TOKEN_LIFETIME}: create short-lived app tokens, one per "
            "request or per minute",
        )


class AuthFailureLog:
    """Logs authentication failures at WARNING, at most one line per app per interval.

    Repeats within the interval are counted and reported in the next line, so
    a client with a wrong key cannot flood the log.
    """

    def __init__(self, interval: float = 60.0) -> None:
        self.interval = interval
        # app id -> (monotonic time of the last line, failures not logged since)
        self._state: dict[str, tuple[float, int]] = {}

    def record(self, app_id: str, client: str, error: ApiError) -> None:
        """Log that a call to ``app_id`` from ``client`` failed authentication with ``error``."""
        now = time.monotonic()
        last_logged, suppressed = self._state.get(app_id, (-self.interval, 0))
        if now - last_logged < self.interval:
            self._state[app_id] = (last_logged, suppressed + 1)
            return
        self._state[app_id] = (now, 0)
        logger.warning(
            "REST authentication failed for app %r from %s: %s (%d similar failures not logged "
            "in the last %.0f s)",
            app_id,
            client,
            error.error_code,
            suppressed,
            self.interval,
        )
