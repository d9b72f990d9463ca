"""Secret keys, JWT tokens and signatures that prove which user connects to an app.

The formats follow TalkJS (https://talkjs.com/docs/Features/Security_Settings/Authentication
and https://talkjs.com/docs/Features/Security_Settings/Identity_Verification):

- A **user token** is a JWT signed with HS256 and the app's secret key, with the claims
  ``{"tokenType": "user", "iss": <app id>, "sub": <user id>, "iat": ..., "exp": ...}``.
  ``exp`` is optional. Times are integer seconds since the Unix epoch.
- An **app token** authenticates a REST call. It is a JWT of the same kind with the
  claims ``{"tokenType": "app", "iss": <app id>, "exp": ...}``.
- A **signature** is the hex-encoded HMAC-SHA256 of the UTF-8 user id, keyed with the
  secret key. TalkJS calls this (older) scheme identity verification. Verification
  accepts upper- and lower-case hex digits, because TalkJS's own example upper-cases them.

:func:`verify_user_token` and :func:`verify_app_token` run these checks in this order.
Each failure raises :class:`~talkjs_components.errors.AuthError` with its own ``code``:

=======================  ================================================================
code                     failed check
=======================  ================================================================
``token_malformed``      the token is not a compact JWT with a JSON object payload, or a
                         time claim (``exp``, ``nbf``, ``iat``) is not a number
``token_algorithm``      the header's ``alg`` is not ``HS256``, which rejects ``none``
``token_signature``      the signature does not match the app's secret key
``token_issuer``         ``iss`` is missing or is not the app id
``token_type``           ``tokenType`` is missing or is not ``"user"`` (``"app"`` for
                         app tokens)
``token_subject``        user tokens only: ``sub`` is missing, or is not the expected user
``token_expired``        ``now >= exp + leeway``
``token_not_yet_valid``  ``nbf > now + leeway`` or ``iat > now + leeway``
=======================  ================================================================

PyJWT verifies the structure, the algorithm and the signature. This module checks the
claims itself, the time claims included, because PyJWT reads the system clock and
cannot be given ``now``. The time checks use ``now`` when it is given and
:func:`time.time` otherwise, and apply PyJWT's comparisons with ``leeway``.

:func:`authenticate` is the single check a session runs when a client connects. It
combines the token and signature checks with the app's identity verification setting.

Error messages, log lines and reprs never contain the secret key or the token. They do
contain app ids, user ids and, shortened, the claim values read from a token.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
import re
import secrets
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Literal

import jwt
from jwt.types import Options

from .errors import AuthError, InvalidInput

__all__ = [
    "DEFAULT_LEEWAY",
    "MIN_SECRET_KEY_LENGTH",
    "TOKEN_ALGORITHM",
    "App",
    "AppClaims",
    "UserClaims",
    "authenticate",
    "create_app_token",
    "create_signature",
    "create_user_token",
    "generate_secret_key",
    "verify_app_token",
    "verify_signature",
    "verify_user_token",
]

logger = logging.getLogger(__name__)

DEFAULT_LEEWAY = 30.0
"""Seconds of clock difference allowed for a token's ``exp``, ``nbf`` and ``iat`` by default."""

MIN_SECRET_KEY_LENGTH: Final = 32
"""Minimum length of a secret key, in characters.

RFC 7518, section 3.2, requires HS256 keys of at least 256 bits, and PyJWT warns
(``InsecureKeyLengthWarning``) on shorter keys.
"""

TOKEN_ALGORITHM: Final = "HS256"
"""The only JWT algorithm that tokens may use."""

_SIGNATURE_PATTERN: Final = re.compile(r"[0-9a-fA-F]{64}")

_MAX_SHOWN_LENGTH: Final = 80
"""Maximum length of a claim value quoted in an error message, in characters."""

# PyJWT verifies only the structure, the algorithm and the signature. This module checks
# the claims, times included, so that ``now`` applies and each failure gets its own code.
_DECODE_OPTIONS: Final[Options] = {
    "verify_signature": True,
    "require": [],
    "verify_aud": False,
    "verify_exp": False,
    "verify_iat": False,
    "verify_iss": False,
    "verify_jti": False,
    "verify_nbf": False,
    "verify_sub": False,
}

TokenType = Literal["user", "app"]


@dataclass(frozen=True)
class App:
    """A chat app: its id, its secret key and whether it requires identity verification.

    Attributes:
        app_id: Non-empty id without whitespace. It is the ``iss`` claim of the app's tokens.
        secret_key: Key that signs and verifies tokens and signatures, at least
            :data:`MIN_SECRET_KEY_LENGTH` characters. ``None`` for an app without
            one, which cannot create or verify credentials. It is left out of ``repr``.
        identity_verification: Whether a connecting user must prove their identity.
            ``None`` (the default) turns it on exactly when the app has a secret key.

    Raises:
        InvalidInput: If a field breaks the rules above. The message never contains the
            secret key.
    """

    app_id: str
    secret_key: str | None = field(default=None, repr=False)
    identity_verification: bool | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.app_id, str) or not self.app_id:
            raise InvalidInput(f"app_id must be a non-empty string, got {self.app_id!r}")
        if any(character.isspace() for character in self.app_id):
            raise InvalidInput(f"app_id {self.app_id!r} is invalid because it contains whitespace")

        if self.secret_key is not None:
            if not isinstance(self.secret_key, str):
                raise InvalidInput(
                    f"secret_key of app {self.app_id!r} must be a string, "
                    f"got {type(self.secret_key).__name__}"
                )
            if len(self.secret_key) < MIN_SECRET_KEY_LENGTH:
                raise InvalidInput(
                    f"secret_key of app {self.app_id!r} is {len(self.secret_key)} characters "
                    f"long, but the minimum is {MIN_SECRET_KEY_LENGTH}. "
                    "Create one with generate_secret_key()."
                )

        if self.identity_verification is True and self.secret_key is None:
            raise InvalidInput(
                f"App {self.app_id!r} has identity_verification=True but no secret_key, "
                "which it needs to verify tokens and signatures. Pass secret_key=..., "
                "or leave identity_verification unset."
            )

    @property
    def verifies_identity(self) -> bool:
        """Whether connecting users must present a valid token or signature."""
        if self.identity_verification is not None:
            return self.identity_verification
        return self.secret_key is not None


@dataclass(frozen=True)
class UserClaims:
    """Verified claims of a user token.

    Attributes:
        user_id: The ``sub`` claim.
        expires_at: The ``exp`` claim in seconds since the Unix epoch, or ``None``
            for a token that does not expire.
        issued_at: The ``iat`` claim in seconds since the Unix epoch, or ``None``.
    """

    user_id: str
    expires_at: float | None
    issued_at: float | None


@dataclass(frozen=True)
class AppClaims:
    """Verified claims of an app token.

    Attributes:
        expires_at: The ``exp`` claim in seconds since the Unix epoch, or ``None``
            for a token that does not expire.
        issued_at: The ``iat`` claim in seconds since the Unix epoch, or ``None``.
    """

    expires_at: float | None
    issued_at: float | None


def generate_secret_key() -> str:
    """Generate a random secret key: ``"sk_"`` and 32 random bytes, base64url-encoded."""
    return "sk_" + secrets.token_urlsafe(32)


def create_user_token(
    app: App,
    user_id: str,
    *,
    expires_in: timedelta | float | None = timedelta(days=1),
    now: float | None = None,
) -> str:
    """Create a user token that lets ``user_id`` connect to ``app``.

    Args:
        app: The app. It must have a secret key.
        user_id: The user the token is for, stored in the ``sub`` claim.
        expires_in: Token lifetime, as a timedelta or in seconds. ``None`` omits
            ``exp``, so the token never expires.
        now: Current time in seconds since the Unix epoch. Defaults to :func:`time.time`.

    Returns:
        An HS256 JWT with the claims ``tokenType``, ``iss``, ``sub``, ``iat`` and,
        unless ``expires_in`` is ``None``, ``exp``.

    Raises:
        InvalidInput: If the app has no secret key, ``user_id`` is empty, or
            ``expires_in`` or ``now`` is not a positive or finite number.
    """
    secret_key = _require_secret_key(app, "create user tokens")
    _check_user_id(user_id, "user_id")
    issued_at = int(_current_time(now))
    claims: dict[str, Any] = {
        "tokenType": "user",
        "iss": app.app_id,
        "sub": user_id,
        "iat": issued_at,
    }
    if expires_in is not None:
        claims["exp"] = issued_at + math.ceil(_lifetime_seconds(expires_in))
    return jwt.encode(claims, secret_key, algorithm=TOKEN_ALGORITHM)


def create_app_token(
    app: App,
    *,
    expires_in: timedelta | float = timedelta(seconds=30),
    now: float | None = None,
) -> str:
    """Create an app token that authenticates a REST call to ``app``.

    Args:
        app: The app. It must have a secret key.
        expires_in: Token lifetime, as a timedelta or in seconds.
        now: Current time in seconds since the Unix epoch. Defaults to :func:`time.time`.

    Returns:
        An HS256 JWT with the claims ``tokenType``, ``iss`` and ``exp``.

    Raises:
        InvalidInput: If the app has no secret key, or ``expires_in`` or ``now`` is
            not a positive or finite number.
    """
    secret_key = _require_secret_key(app, "create app tokens")
    expires_at = int(_current_time(now)) + math.ceil(_lifetime_seconds(expires_in))
    claims = {"tokenType": "app", "iss": app.app_id, "exp": expires_at}
    return jwt.encode(claims, secret_key, algorithm=TOKEN_ALGORITHM)


def create_signature(app: App, user_id: str) -> str:
    """Compute the signature of ``user_id``: the lower-case hex HMAC-SHA256 of the id.

    Raises:
        InvalidInput: If the app has no secret key or ``user_id`` is empty.
    """
    secret_key = _require_secret_key(app, "create signatures")
    _check_user_id(user_id, "user_id")
    digest = hmac.new(secret_key.encode(), user_id.encode(), hashlib.sha256)
    return digest.hexdigest()


def verify_signature(app: App, user_id: str, signature: str) -> None:
    """Check that ``signature`` is the signature of ``user_id`` for ``app``.

    Hex digits may be upper or lower case. The comparison takes constant time.

    Raises:
        AuthError: ``signature_malformed`` if the signature is not 64 hex digits, or
            ``signature_mismatch`` if it is not the signature of ``user_id``.
        InvalidInput: If the app has no secret key or ``user_id`` is empty.
    """
    expected = create_signature(app, user_id)
    if not isinstance(signature, str) or _SIGNATURE_PATTERN.fullmatch(signature) is None:
        length = f"{len(signature)} characters" if isinstance(signature, str) else "not a string"
        raise AuthError(
            f"The signature for user {user_id!r} is malformed. It must be 64 hex digits "
            f"(an HMAC-SHA256 digest), but it is {length}. "
            "Compute it on your server with create_signature(app, user_id).",
            code="signature_malformed",
        )
    if not hmac.compare_digest(signature.lower(), expected):
        raise AuthError(
            f"The signature for user {user_id!r} does not match. It was made with a "
            "different secret key or for a different user id. Compute it on your server "
            "with create_signature(app, user_id).",
            code="signature_mismatch",
        )


def verify_user_token(
    app: App,
    token: str,
    *,
    expected_user_id: str | None = None,
    leeway: float = DEFAULT_LEEWAY,
    now: float | None = None,
) -> UserClaims:
    """Verify a user token of ``app`` and return its claims.

    Args:
        app: The app. It must have a secret key.
        token: The JWT, as :func:`create_user_token` returns it.
        expected_user_id: If given, the ``sub`` claim must equal it.
        leeway: Allowed clock difference in seconds for ``exp``, ``nbf`` and ``iat``.
        now: Current time in seconds since the Unix epoch. Defaults to :func:`time.time`.

    Raises:
        AuthError: With the code of the first failed check, as listed in the module
            docstring.
        InvalidInput: If the app has no secret key, or ``expected_user_id``,
            ``leeway`` or ``now`` is invalid.
    """
    if expected_user_id is not None:
        _check_user_id(expected_user_id, "expected_user_id")
    _check_leeway(leeway)
    current = _current_time(now)
    claims = _decode_token(app, token, "user")

    user_id = claims.get("sub")
    if user_id is None:
        raise AuthError(
            "The user token has no 'sub' claim, so it names no user. "
            "Create user tokens with create_user_token(app, user_id).",
            code="token_subject",
        )
    if not isinstance(user_id, str) or not user_id:
        raise AuthError(
            f"The user token's 'sub' claim is {_shorten(user_id)}, but it must be a "
            "non-empty user id string. Create user tokens with create_user_token(app, user_id).",
            code="token_subject",
        )
    if expected_user_id is not None and user_id != expected_user_id:
        raise AuthError(
            f"The user token is for user {_shorten(user_id)}, but the connection is for "
            f"user {expected_user_id!r}. Create a token for user {expected_user_id!r}.",
            code="token_subject",
        )

    expires_at, issued_at = _check_times(
        claims,
        "user",
        leeway=leeway,
        current=current,
        remedy="Fetch a new user token from your server (create_user_token) and connect again.",
    )
    return UserClaims(user_id=user_id, expires_at=expires_at, issued_at=issued_at)


def verify_app_token(
    app: App,
    token: str,
    *,
    leeway: float = DEFAULT_LEEWAY,
    now: float | None = None,
) -> AppClaims:
    """Verify an app token of ``app`` and return its claims.

    Runs the checks of :func:`verify_user_token` except ``token_subject``, and
    requires ``tokenType`` ``"app"``.

    Raises:
        AuthError: With the code of the first failed check, as listed in the module
            docstring.
        InvalidInput: If the app has no secret key, or ``leeway`` or ``now`` is invalid.
    """
    _check_leeway(leeway)
    current = _current_time(now)
    claims = _decode_token(app, token, "app")
    expires_at, issued_at = _check_times(
        claims,
        "app",
        leeway=leeway,
        current=current,
        remedy="Create a new app token with create_app_token.",
    )
    return AppClaims(expires_at=expires_at, issued_at=issued_at)


def authenticate(
    app: App,
    user_id: str,
    *,
    token: str | None = None,
    signature: str | None = None,
    now: float | None = None,
) -> UserClaims | None:
    """Check that a client may connect to ``app`` as ``user_id``.

    Every credential that is given is verified when the app has a secret key, even if
    identity verification is off, so a wrong credential is never accepted. If both are
    given, both must be valid. If identity verification is on, at least one is
    required. An app without a secret key cannot verify credentials, so it accepts
    any and logs at debug level that it ignored them.

    Args:
        app: The app the client connects to.
        user_id: The user the client claims to be.
        token: A user token, as :func:`create_user_token` returns it.
        signature: A signature, as :func:`create_signature` returns it.
        now: Current time in seconds since the Unix epoch. Defaults to :func:`time.time`.

    Raises:
        AuthError: ``credentials_missing`` if identity verification is on and neither
            credential is given, or the code of the failed token or signature check.
        InvalidInput: If ``user_id`` is empty.

    Returns:
        The claims of the verified user token, whose ``expires_at`` bounds how
        long the connection may last, or ``None`` when no token was verified.
    """
    _check_user_id(user_id, "user_id")

    if app.secret_key is None:
        if token is not None or signature is not None:
            logger.debug(
                "App %r has no secret key, so the credentials of user %r were not verified",
                app.app_id,
                user_id,
            )
        return None

    if token is None and signature is None:
        if app.verifies_identity:
            raise AuthError(
                f"Identity verification is on for app {app.app_id!r}, so user {user_id!r} "
                "must connect with a user token (token=...) or a signature (signature=...).",
                code="credentials_missing",
            )
        return None

    claims = None
    if token is not None:
        claims = verify_user_token(app, token, expected_user_id=user_id, now=now)
    if signature is not None:
        verify_signature(app, user_id, signature)
    return claims


def _decode_token(app: App, token: str, token_type: TokenType) -> dict[str, Any]:
    """Decode ``token`` and check its structure, algorithm, signature, issuer and type."""
    secret_key = _require_secret_key(app, f"verify {token_type} tokens")
    label = f"{token_type} token"
    remedy = f"Pass the token exactly as create_{token_type}_token returned it."

    if not isinstance(token, str):
        raise AuthError(
            f"The {label} is not a JWT because it is a {type(token).__name__}, "
            f"not a string. {remedy}",
            code="token_malformed",
        )

    try:
        header = jwt.get_unverified_header(token)
    except jwt.InvalidTokenError as exc:
        raise AuthError(
            f"The {label} is not a valid JWT ({exc}). {remedy}", code="token_malformed"
        ) from exc

    # PyJWT rejects other algorithms too, since it gets algorithms=[TOKEN_ALGORITHM].
    # This earlier check only makes the message name the algorithm.
    algorithm = header.get("alg")
    if algorithm != TOKEN_ALGORITHM:
        raise AuthError(
            f"The {label} uses algorithm {_shorten(algorithm)}, but only "
            f"{TOKEN_ALGORITHM} is allowed. Sign tokens with {TOKEN_ALGORITHM} and the "
            f"app's secret key, as create_{token_type}_token does.",
            code="token_algorithm",
        )

    try:
        claims = jwt.decode(
            token, secret_key, algorithms=[TOKEN_ALGORITHM], options=_DECODE_OPTIONS
        )
    except jwt.InvalidAlgorithmError as exc:
        raise AuthError(
            f"The {label} uses an algorithm other than {TOKEN_ALGORITHM} ({exc}). "
            f"Sign tokens with {TOKEN_ALGORITHM} and the app's secret key.",
            code="token_algorithm",
        ) from exc
    except jwt.InvalidSignatureError as exc:
        raise AuthError(
            f"The {label}'s signature is invalid, because the token was changed or was "
            f"signed with a different secret key than app {app.app_id!r} has. "
            "Create the token with this app's secret key.",
            code="token_signature",
        ) from exc
    except jwt.InvalidTokenError as exc:
        raise AuthError(
            f"The {label} is not a valid JWT ({exc}). {remedy}", code="token_malformed"
        ) from exc

    issuer = claims.get("iss")
    if issuer is None:
        raise AuthError(
            f"The {label} has no 'iss' claim, but it must name app {app.app_id!r}. "
            f"Create the token with create_{token_type}_token.",
            code="token_issuer",
        )
    if issuer != app.app_id:
        raise AuthError(
            f"The {label} was issued for app {_shorten(issuer)}, but it was sent to app "
            f"{app.app_id!r}. Create the token with this app's id and secret key.",
            code="token_issuer",
        )

    actual_type = claims.get("tokenType")
    if actual_type != token_type:
        found = (
            "no 'tokenType' claim" if actual_type is None else f"tokenType {_shorten(actual_type)}"
        )
        raise AuthError(
            f"The token has {found}, but a {label} must have tokenType {token_type!r}. "
            f"Create it with create_{token_type}_token.",
            code="token_type",
        )

    return claims


def _check_times(
    claims: dict[str, Any],
    token_type: TokenType,
    *,
    leeway: float,
    current: float,
    remedy: str,
) -> tuple[float | None, float | None]:
    """Check ``exp``, ``nbf`` and ``iat`` against ``current`` and return ``(exp, iat)``."""
    label = f"{token_type} token"
    expires_at = _time_claim(claims, "exp", label)
    not_before = _time_claim(claims, "nbf", label)
    issued_at = _time_claim(claims, "iat", label)
    clock = f"The current time is {_format_time(current)}, and the leeway is {leeway:g} s."

    # The comparisons are those of PyJWT 2.15.1 (_validate_exp, _validate_nbf and
    # _validate_iat in api_jwt.py). Unlike PyJWT, _time_claim neither truncates a claim to
    # int nor accepts a numeric string, because RFC 7519 makes NumericDate a JSON number.
    if expires_at is not None and current >= expires_at + leeway:
        raise AuthError(
            f"The {label} expired at {_format_time(expires_at)}. {clock} {remedy}",
            code="token_expired",
        )
    if not_before is not None and not_before > current + leeway:
        raise AuthError(
            f"The {label} is not valid before {_format_time(not_before)} (nbf claim). "
            f"{clock} Check that the clocks of this server and the token's issuer agree.",
            code="token_not_yet_valid",
        )
    if issued_at is not None and issued_at > current + leeway:
        raise AuthError(
            f"The {label} was issued at {_format_time(issued_at)} (iat claim), which is in "
            f"the future. {clock} Check that the clocks of this server and the token's "
            "issuer agree.",
            code="token_not_yet_valid",
        )
    return expires_at, issued_at


def _time_claim(claims: dict[str, Any], name: str, label: str) -> float | None:
    """Return the time claim ``name`` in seconds, or ``None`` if the token lacks it."""
    if name not in claims:
        return None
    value = claims[name]
    seconds = math.nan
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            seconds = float(value)
        except OverflowError:
            seconds = math.nan
    if not math.isfinite(seconds):
        raise AuthError(
            f"The {label}'s {name!r} claim is {_shorten(value)}, but it must be a finite "
            "number of seconds since the Unix epoch.",
            code="token_malformed",
        )
    return seconds


def _require_secret_key(app: App, action: str) -> str:
    if app.secret_key is None:
        raise InvalidInput(
            f"App {app.app_id!r} has no secret_key, so it cannot {action}. "
            "Pass secret_key=... when creating the App."
        )
    return app.secret_key


def _check_user_id(user_id: str, name: str) -> None:
    if not isinstance(user_id, str) or not user_id:
        raise InvalidInput(f"{name} must be a non-empty string, got {user_id!r}")


def _check_leeway(leeway: float) -> None:
    if isinstance(leeway, bool) or not isinstance(leeway, int | float):
        raise InvalidInput(f"leeway must be a number of seconds, got {leeway!r}")
    if not math.isfinite(leeway) or leeway < 0:
        raise InvalidInput(f"leeway must be a finite number of seconds >= 0, got {leeway!r}")


def _lifetime_seconds(expires_in: timedelta | float) -> float:
    if isinstance(expires_in, timedelta):
        seconds = expires_in.total_seconds()
    elif isinstance(expires_in, int | float) and not isinstance(expires_in, bool):
        seconds = float(expires_in)
    else:
        raise InvalidInput(
            f"expires_in must be a timedelta or a number of seconds, got {expires_in!r}"
        )
    if not math.isfinite(seconds) or seconds <= 0:
        raise InvalidInput(f"expires_in must be positive and finite, got {expires_in!r}")
    return seconds


def _current_time(now: float | None) -> float:
    if now is None:
        return time.time()
    if isinstance(now, bool) or not isinstance(now, int | float) or not math.isfinite(now):
        raise InvalidInput(
            f"now must be a finite number of seconds since the Unix epoch, got {now!r}"
        )
    return float(now)


def _format_time(seconds: float) -> str:
    """Format seconds since the Unix epoch as an ISO 8601 UTC time."""
    try:
        return datetime.fromtimestamp(seconds, tz=UTC).isoformat(timespec="seconds")
    except (OverflowError, OSError, ValueError):
        return f"{seconds:g} s after the Unix epoch"


def _shorten(value: object) -> str:
    """Return ``repr(value)``, cut to :data:`_MAX_SHOWN_LENGTH` characters."""
    text = repr(value)
    if len(text) <= _MAX_SHOWN_LENGTH:
        return text
    return text[: _MAX_SHOWN_LENGTH - 3] + "..."
