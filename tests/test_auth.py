"""Tests of talkjs_components.auth: apps, tokens, signatures and authenticate.

Hand-made tokens are built with ``make_token``, which signs with the standard library
instead of PyJWT, so the tests do not depend on how PyJWT encodes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import jwt
import pytest

from talkjs_components.auth import (
    MIN_SECRET_KEY_LENGTH,
    App,
    AppClaims,
    UserClaims,
    authenticate,
    create_app_token,
    create_signature,
    create_user_token,
    generate_secret_key,
    verify_app_token,
    verify_signature,
    verify_user_token,
)
from talkjs_components.errors import AuthError, InvalidInput

# Secrets of 32 bytes or more, because PyJWT warns about shorter HMAC keys and
# pytest turns warnings into errors.
SECRET = "sk_test_" + "s3cr3t" * 6
OTHER_SECRET = "sk_test_" + "0ther" * 7
APP_ID = "app_test"
NOW = 1_700_000_000.0
DAY = 24 * 60 * 60

APP = App(APP_ID, SECRET)


def base64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def make_token(
    claims: Any,
    *,
    header: dict[str, Any] | None = None,
    secret: str = SECRET,
) -> str:
    """Build an HS256-signed JWT from any JSON value, without PyJWT."""
    if header is None:
        header = {"alg": "HS256", "typ": "JWT"}
    signing_input = (
        base64url(json.dumps(header).encode()) + "." + base64url(json.dumps(claims).encode())
    )
    signature = hmac.new(secret.encode(), signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + base64url(signature)


def user_claims(**changes: Any) -> dict[str, Any]:
    """Return valid user token claims for alice at NOW, with ``changes`` applied."""
    claims: dict[str, Any] = {
        "tokenType": "user",
        "iss": APP_ID,
        "sub": "alice",
        "iat": int(NOW),
        "exp": int(NOW) + DAY,
    }
    claims.update(changes)
    return claims


def auth_error(call: Callable[[], object]) -> AuthError:
    """Run ``call`` and return the AuthError it raises."""
    with pytest.raises(AuthError) as info:
        call()
    return info.value


def invalid_input(call: Callable[[], object]) -> InvalidInput:
    """Run ``call`` and return the InvalidInput it raises."""
    with pytest.raises(InvalidInput) as info:
        call()
    return info.value


def unverified_claims(token: str) -> dict[str, Any]:
    claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return claims


# --- App -------------------------------------------------------------------------------


def test_app_repr_hides_secret() -> None:
    app = App(APP_ID, SECRET, identity_verification=True)

    assert SECRET not in repr(app)
    assert SECRET not in str(app)
    assert APP_ID in repr(app)


def test_app_rejects_empty_app_id() -> None:
    error = invalid_input(lambda: App(""))

    assert error.code == "invalid_input"
    assert "app_id" in error.message


def test_app_rejects_whitespace_in_app_id() -> None:
    error = invalid_input(lambda: App("my app", SECRET))

    assert error.code == "invalid_input"
    assert "'my app'" in error.message
    assert "whitespace" in error.message


def test_app_rejects_short_secret() -> None:
    short_secret = "x" * (MIN_SECRET_KEY_LENGTH - 1)

    error = invalid_input(lambda: App(APP_ID, short_secret))

    assert error.code == "invalid_input"
    assert f"{MIN_SECRET_KEY_LENGTH - 1} characters" in error.message
    assert f"minimum is {MIN_SECRET_KEY_LENGTH}" in error.message
    assert short_secret not in error.message


def test_app_accepts_minimum_secret_length() -> None:
    app = App(APP_ID, "k" * MIN_SECRET_KEY_LENGTH)

    assert app.verifies_identity is True


def test_app_rejects_non_string_secret() -> None:
    error = invalid_input(lambda: App(APP_ID, 12345678901234567890))  # type: ignore[arg-type]

    assert error.code == "invalid_input"
    assert "int" in error.message
    assert "12345678901234567890" not in error.message


def test_app_rejects_verification_without_secret() -> None:
    error = invalid_input(lambda: App(APP_ID, identity_verification=True))

    assert error.code == "invalid_input"
    assert repr(APP_ID) in error.message
    assert "secret_key" in error.message


@pytest.mark.parametrize(
    ("secret_key", "identity_verification", "expected"),
    [
        (None, None, False),
        (SECRET, None, True),
        (SECRET, False, False),
        (SECRET, True, True),
        (None, False, False),
    ],
)
def test_app_verifies_identity(
    secret_key: str | None, identity_verification: bool | None, expected: bool
) -> None:
    app = App(APP_ID, secret_key, identity_verification=identity_verification)

    assert app.verifies_identity is expected


def test_generate_secret_key_format() -> None:
    first = generate_secret_key()
    second = generate_secret_key()

    assert first.startswith("sk_")
    assert len(first) == len("sk_") + 43  # 32 bytes in unpadded base64url
    assert first != second
    assert App(APP_ID, first).secret_key == first


# --- Creating tokens -------------------------------------------------------------------


def test_create_user_token_claims() -> None:
    token = create_user_token(APP, "alice", now=NOW)

    assert jwt.get_unverified_header(token) == {"alg": "HS256", "typ": "JWT"}
    assert unverified_claims(token) == {
        "tokenType": "user",
        "iss": APP_ID,
        "sub": "alice",
        "iat": int(NOW),
        "exp": int(NOW) + DAY,
    }


def test_user_token_decodes_with_pyjwt() -> None:
    token = create_user_token(APP, "alice", expires_in=60, now=NOW)

    claims = jwt.decode(
        token,
        SECRET,
        algorithms=["HS256"],
        issuer=APP_ID,
        subject="alice",
        options={"verify_exp": False, "verify_iat": False},
    )

    assert claims["exp"] == int(NOW) + 60


def test_create_user_token_without_expiry() -> None:
    token = create_user_token(APP, "alice", expires_in=None, now=NOW)

    claims = unverified_claims(token)
    assert "exp" not in claims
    assert verify_user_token(APP, token, now=NOW + 365 * DAY).expires_at is None


def test_create_user_token_expires_in_timedelta() -> None:
    token = create_user_token(APP, "alice", expires_in=timedelta(minutes=5), now=NOW)

    assert unverified_claims(token)["exp"] == int(NOW) + 300


@pytest.mark.parametrize("expires_in", [0, -1, float("nan"), float("inf"), timedelta(0)])
def test_create_user_token_rejects_bad_lifetime(expires_in: timedelta | float) -> None:
    error = invalid_input(lambda: create_user_token(APP, "alice", expires_in=expires_in))

    assert error.code == "invalid_input"
    assert "expires_in" in error.message


def test_create_user_token_needs_secret() -> None:
    error = invalid_input(lambda: create_user_token(App(APP_ID), "alice"))

    assert error.code == "invalid_input"
    assert repr(APP_ID) in error.message
    assert "secret_key" in error.message


def test_create_user_token_rejects_empty_user_id() -> None:
    error = invalid_input(lambda: create_user_token(APP, ""))

    assert error.code == "invalid_input"
    assert "user_id" in error.message


def test_create_app_token_claims() -> None:
    token = create_app_token(APP, now=NOW)

    assert jwt.get_unverified_header(token) == {"alg": "HS256", "typ": "JWT"}
    assert unverified_claims(token) == {"tokenType": "app", "iss": APP_ID, "exp": int(NOW) + 30}


# --- Verifying user tokens -------------------------------------------------------------


def test_verify_user_token_valid() -> None:
    token = create_user_token(APP, "alice", now=NOW)

    claims = verify_user_token(APP, token, expected_user_id="alice", now=NOW + 60)

    assert claims == UserClaims(user_id="alice", expires_at=NOW + DAY, issued_at=NOW)


def test_verify_user_token_uses_system_clock() -> None:
    fresh = create_user_token(APP, "alice")
    stale = create_user_token(APP, "alice", expires_in=60, now=time.time() - DAY)

    assert verify_user_token(APP, fresh).user_id == "alice"
    error = auth_error(lambda: verify_user_token(APP, stale))
    assert error.code == "token_expired"


def test_verify_user_token_expired_beyond_leeway() -> None:
    token = create_user_token(APP, "alice", expires_in=60, now=NOW)

    error = auth_error(lambda: verify_user_token(APP, token, now=NOW + 60 + 31))

    assert error.code == "token_expired"
    assert "2023-11-14T22:14:20+00:00" in error.message  # NOW + 60 s, the exp claim
    assert "new user token" in error.message


def test_verify_user_token_expired_within_leeway() -> None:
    token = create_user_token(APP, "alice", expires_in=60, now=NOW)

    claims = verify_user_token(APP, token, now=NOW + 60 + 29)

    assert claims.user_id == "alice"


def test_verify_user_token_expired_at_leeway_boundary() -> None:
    token = create_user_token(APP, "alice", expires_in=60, now=NOW)

    error = auth_error(lambda: verify_user_token(APP, token, now=NOW + 60 + 30))

    assert error.code == "token_expired"


def test_verify_user_token_expired_without_leeway() -> None:
    token = create_user_token(APP, "alice", expires_in=60, now=NOW)

    error = auth_error(lambda: verify_user_token(APP, token, leeway=0, now=NOW + 60))

    assert error.code == "token_expired"
    assert "leeway is 0 s" in error.message


def test_verify_user_token_issued_in_future() -> None:
    token = create_user_token(APP, "alice", now=NOW)

    error = auth_error(lambda: verify_user_token(APP, token, now=NOW - 31))

    assert error.code == "token_not_yet_valid"
    assert "2023-11-14T22:13:20+00:00" in error.message  # NOW, the iat claim
    assert "iat" in error.message


def test_verify_user_token_issued_within_leeway() -> None:
    token = create_user_token(APP, "alice", now=NOW)

    assert verify_user_token(APP, token, now=NOW - 29).user_id == "alice"


def test_verify_user_token_not_before_in_future() -> None:
    token = make_token(user_claims(nbf=int(NOW) + 3600))

    error = auth_error(lambda: verify_user_token(APP, token, now=NOW))

    assert error.code == "token_not_yet_valid"
    assert "2023-11-14T23:13:20+00:00" in error.message  # NOW + 1 h, the nbf claim
    assert "nbf" in error.message


def test_verify_user_token_wrong_issuer() -> None:
    other_app = App("other_app", SECRET)
    token = create_user_token(other_app, "alice", now=NOW)

    error = auth_error(lambda: verify_user_token(APP, token, now=NOW))

    assert error.code == "token_issuer"
    assert "'other_app'" in error.message
    assert repr(APP_ID) in error.message


def test_verify_user_token_missing_issuer() -> None:
    claims = user_claims()
    del claims["iss"]
    token = make_token(claims)

    error = auth_error(lambda: verify_user_token(APP, token, now=NOW))

    assert error.code == "token_issuer"
    assert "'iss'" in error.message
    assert repr(APP_ID) in error.message


def test_verify_user_token_wrong_user() -> None:
    token = create_user_token(APP, "alice", now=NOW)

    error = auth_error(lambda: verify_user_token(APP, token, expected_user_id="bob", now=NOW))

    assert error.code == "token_subject"
    assert "'alice'" in error.message
    assert "'bob'" in error.message


def test_verify_user_token_missing_subject() -> None:
    claims = user_claims()
    del claims["sub"]
    token = make_token(claims)

    error = auth_error(lambda: verify_user_token(APP, token, now=NOW))

    assert error.code == "token_subject"
    assert "'sub'" in error.message


def test_verify_user_token_non_string_subject() -> None:
    token = make_token(user_claims(sub=42))

    error = auth_error(lambda: verify_user_token(APP, token, now=NOW))

    assert error.code == "token_subject"
    assert "42" in error.message


def test_verify_user_token_tampered_payload() -> None:
    token = create_user_token(APP, "alice", now=NOW)
    header, _, signature = token.split(".")
    forged_payload = base64url(json.dumps(user_claims(sub="mallory")).encode())
    forged = f"{header}.{forged_payload}.{signature}"

    error = auth_error(lambda: verify_user_token(APP, forged, now=NOW))

    assert error.code == "token_signature"
    assert "signed with a different secret key" in error.message
    assert "mallory" not in error.message


def test_verify_user_token_other_secret() -> None:
    token = create_user_token(App(APP_ID, OTHER_SECRET), "alice", now=NOW)

    error = auth_error(lambda: verify_user_token(APP, token, now=NOW))

    assert error.code == "token_signature"
    assert "signed with a different secret key" in error.message
    assert repr(APP_ID) in error.message


def test_verify_user_token_alg_none() -> None:
    header = base64url(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    payload = base64url(json.dumps(user_claims()).encode())
    token = f"{header}.{payload}."

    error = auth_error(lambda: verify_user_token(APP, token, now=NOW))

    assert error.code == "token_algorithm"
    assert "'none'" in error.message
    assert "HS256" in error.message


def test_verify_user_token_alg_hs512() -> None:
    token = jwt.encode(user_claims(), SECRET + SECRET, algorithm="HS512")

    error = auth_error(lambda: verify_user_token(APP, token, now=NOW))

    assert error.code == "token_algorithm"
    assert "'HS512'" in error.message


def test_verify_user_token_alg_missing() -> None:
    token = make_token(user_claims(), header={"typ": "JWT"})

    error = auth_error(lambda: verify_user_token(APP, token, now=NOW))

    assert error.code == "token_algorithm"
    assert "None" in error.message


def test_verify_user_token_wrong_type() -> None:
    token = create_app_token(APP, now=NOW)

    error = auth_error(lambda: verify_user_token(APP, token, now=NOW))

    assert error.code == "token_type"
    assert "'app'" in error.message
    assert "'user'" in error.message


def test_verify_user_token_missing_type() -> None:
    claims = user_claims()
    del claims["tokenType"]
    token = make_token(claims)

    error = auth_error(lambda: verify_user_token(APP, token, now=NOW))

    assert error.code == "token_type"
    assert "no 'tokenType' claim" in error.message


@pytest.mark.parametrize(
    ("token", "reason"),
    [
        ("not-a-jwt", "Not enough segments"),
        ("", "Not enough segments"),
        ("a.b.c", "Invalid header"),
        ("!!!.???.***", "Invalid header"),
    ],
)
def test_verify_user_token_not_a_jwt(token: str, reason: str) -> None:
    error = auth_error(lambda: verify_user_token(APP, token, now=NOW))

    assert error.code == "token_malformed"
    assert reason in error.message
    assert "not a valid JWT" in error.message


def test_verify_user_token_non_object_payload() -> None:
    token = make_token(["tokenType", "user"])

    error = auth_error(lambda: verify_user_token(APP, token, now=NOW))

    assert error.code == "token_malformed"
    assert "json object" in error.message


def test_verify_user_token_non_string_token() -> None:
    error = auth_error(lambda: verify_user_token(APP, b"abc", now=NOW))  # type: ignore[arg-type]

    assert error.code == "token_malformed"
    assert "bytes" in error.message


@pytest.mark.parametrize("claim", ["exp", "nbf", "iat"])
def test_verify_user_token_non_numeric_time(claim: str) -> None:
    token = make_token(user_claims(**{claim: "tomorrow"}))

    error = auth_error(lambda: verify_user_token(APP, token, now=NOW))

    assert error.code == "token_malformed"
    assert repr(claim) in error.message
    assert "'tomorrow'" in error.message


def test_verify_user_token_rejects_negative_leeway() -> None:
    token = create_user_token(APP, "alice", now=NOW)

    error = invalid_input(lambda: verify_user_token(APP, token, leeway=-1, now=NOW))

    assert error.code == "invalid_input"
    assert "leeway" in error.message


def test_verify_user_token_needs_secret() -> None:
    token = create_user_token(APP, "alice", now=NOW)

    error = invalid_input(lambda: verify_user_token(App(APP_ID), token, now=NOW))

    assert error.code == "invalid_input"
    assert "secret_key" in error.message


# --- Verifying app tokens --------------------------------------------------------------


def test_verify_app_token_valid() -> None:
    token = create_app_token(APP, now=NOW)

    assert verify_app_token(APP, token, now=NOW + 10) == AppClaims(
        expires_at=NOW + 30, issued_at=None
    )


def test_verify_app_token_expired() -> None:
    token = create_app_token(APP, now=NOW)

    error = auth_error(lambda: verify_app_token(APP, token, now=NOW + 30 + 31))

    assert error.code == "token_expired"
    assert "2023-11-14T22:13:50+00:00" in error.message  # NOW + 30 s, the exp claim
    assert "create_app_token" in error.message


def test_verify_app_token_rejects_user_token() -> None:
    token = create_user_token(APP, "alice", now=NOW)

    error = auth_error(lambda: verify_app_token(APP, token, now=NOW))

    assert error.code == "token_type"
    assert "'user'" in error.message
    assert "'app'" in error.message


def test_verify_app_token_other_secret() -> None:
    token = create_app_token(App(APP_ID, OTHER_SECRET), now=NOW)

    error = auth_error(lambda: verify_app_token(APP, token, now=NOW))

    assert error.code == "token_signature"


def test_verify_app_token_wrong_issuer() -> None:
    token = create_app_token(App("other_app", SECRET), now=NOW)

    error = auth_error(lambda: verify_app_token(APP, token, now=NOW))

    assert error.code == "token_issuer"
    assert "'other_app'" in error.message
    assert repr(APP_ID) in error.message


# --- Signatures ------------------------------------------------------------------------


def test_create_signature_matches_hmac_sha256() -> None:
    # An independent computation: HMAC-SHA256 keyed with the UTF-8 secret over the UTF-8 id.
    user_id = "usér-1"
    expected = hmac.new(SECRET.encode(), user_id.encode(), hashlib.sha256).hexdigest()

    signature = create_signature(APP, user_id)

    assert signature == expected


def test_verify_signature_lower_case() -> None:
    signature = create_signature(APP, "alice")

    assert signature == signature.lower()
    verify_signature(APP, "alice", signature)


def test_verify_signature_upper_case() -> None:
    signature = create_signature(APP, "alice").upper()

    verify_signature(APP, "alice", signature)


def test_verify_signature_non_ascii_user_id() -> None:
    signature = create_signature(APP, "zoë")

    verify_signature(APP, "zoë", signature)


def test_verify_signature_wrong_user() -> None:
    signature = create_signature(APP, "bob")

    error = auth_error(lambda: verify_signature(APP, "alice", signature))

    assert error.code == "signature_mismatch"
    assert "'alice'" in error.message


def test_verify_signature_other_secret() -> None:
    signature = create_signature(App(APP_ID, OTHER_SECRET), "alice")

    error = auth_error(lambda: verify_signature(APP, "alice", signature))

    assert error.code == "signature_mismatch"
    assert "different secret key" in error.message


@pytest.mark.parametrize(
    "signature",
    ["", "abc123", "g" * 64, "a" * 63, "a" * 65, " " + "a" * 63, "\u0660" * 64],
)
def test_verify_signature_malformed(signature: str) -> None:
    error = auth_error(lambda: verify_signature(APP, "alice", signature))

    assert error.code == "signature_malformed"
    assert "'alice'" in error.message
    assert f"{len(signature)} characters" in error.message


def test_verify_signature_needs_secret() -> None:
    error = invalid_input(lambda: verify_signature(App(APP_ID), "alice", "a" * 64))

    assert error.code == "invalid_input"
    assert "secret_key" in error.message


# --- authenticate ----------------------------------------------------------------------


APP_WITHOUT_SECRET = App(APP_ID)
APP_VERIFICATION_OFF = App(APP_ID, SECRET, identity_verification=False)


def test_authenticate_without_secret_accepts_anything(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="talkjs_components.auth")

    authenticate(APP_WITHOUT_SECRET, "alice")
    assert caplog.records == []

    authenticate(APP_WITHOUT_SECRET, "alice", token="garbage", signature="garbage")
    assert len(caplog.records) == 1
    assert "'alice'" in caplog.records[0].getMessage()
    assert "not verified" in caplog.records[0].getMessage()


def test_authenticate_verification_off_no_credentials() -> None:
    authenticate(APP_VERIFICATION_OFF, "alice", now=NOW)


def test_authenticate_verification_off_valid_credentials() -> None:
    token = create_user_token(APP, "alice", now=NOW)
    signature = create_signature(APP, "alice")

    authenticate(APP_VERIFICATION_OFF, "alice", token=token, now=NOW)
    authenticate(APP_VERIFICATION_OFF, "alice", signature=signature, now=NOW)


def test_authenticate_verification_off_checks_token() -> None:
    token = create_user_token(APP, "bob", now=NOW)

    error = auth_error(lambda: authenticate(APP_VERIFICATION_OFF, "alice", token=token, now=NOW))

    assert error.code == "token_subject"
    assert "'bob'" in error.message


def test_authenticate_verification_off_checks_signature() -> None:
    signature = create_signature(APP, "bob")

    error = auth_error(
        lambda: authenticate(APP_VERIFICATION_OFF, "alice", signature=signature, now=NOW)
    )

    assert error.code == "signature_mismatch"
    assert "'alice'" in error.message


def test_authenticate_verification_on_no_credentials() -> None:
    error = auth_error(lambda: authenticate(APP, "alice", now=NOW))

    assert error.code == "credentials_missing"
    assert repr(APP_ID) in error.message
    assert "'alice'" in error.message
    assert "token=" in error.message
    assert "signature=" in error.message


def test_authenticate_verification_on_valid_token() -> None:
    token = create_user_token(APP, "alice", now=NOW)

    authenticate(APP, "alice", token=token, now=NOW)


def test_authenticate_verification_on_valid_signature() -> None:
    authenticate(APP, "alice", signature=create_signature(APP, "alice"), now=NOW)


def test_authenticate_verification_on_both_valid() -> None:
    token = create_user_token(APP, "alice", now=NOW)
    signature = create_signature(APP, "alice")

    authenticate(APP, "alice", token=token, signature=signature, now=NOW)


def test_authenticate_token_for_other_user() -> None:
    token = create_user_token(APP, "bob", now=NOW)

    error = auth_error(lambda: authenticate(APP, "alice", token=token, now=NOW))

    assert error.code == "token_subject"
    assert "'alice'" in error.message
    assert "'bob'" in error.message


def test_authenticate_expired_token() -> None:
    token = create_user_token(APP, "alice", expires_in=60, now=NOW)

    error = auth_error(lambda: authenticate(APP, "alice", token=token, now=NOW + DAY))

    assert error.code == "token_expired"


def test_authenticate_empty_token() -> None:
    error = auth_error(lambda: authenticate(APP, "alice", token="", now=NOW))

    assert error.code == "token_malformed"


def test_authenticate_wrong_signature() -> None:
    signature = create_signature(App(APP_ID, OTHER_SECRET), "alice")

    error = auth_error(lambda: authenticate(APP, "alice", signature=signature, now=NOW))

    assert error.code == "signature_mismatch"


def test_authenticate_valid_token_wrong_signature() -> None:
    token = create_user_token(APP, "alice", now=NOW)
    signature = create_signature(APP, "bob")

    error = auth_error(
        lambda: authenticate(APP, "alice", token=token, signature=signature, now=NOW)
    )

    assert error.code == "signature_mismatch"


def test_authenticate_wrong_token_valid_signature() -> None:
    token = create_user_token(App(APP_ID, OTHER_SECRET), "alice", now=NOW)
    signature = create_signature(APP, "alice")

    error = auth_error(
        lambda: authenticate(APP, "alice", token=token, signature=signature, now=NOW)
    )

    assert error.code == "token_signature"


def test_authenticate_rejects_empty_user_id() -> None:
    error = invalid_input(lambda: authenticate(APP, ""))

    assert error.code == "invalid_input"
    assert "user_id" in error.message


# --- Secrets never leak ----------------------------------------------------------------


def _failing_calls() -> list[tuple[str, Callable[[], object]]]:
    """Return a named call for each failure path, for the secret leak check."""
    valid = create_user_token(APP, "alice", now=NOW)
    header, payload, signature = valid.split(".")
    forged_payload = base64url(json.dumps(user_claims(sub="mallory")).encode())
    none_header = base64url(json.dumps({"alg": "none"}).encode())
    return [
        ("expired", lambda: verify_user_token(APP, valid, now=NOW + 2 * DAY)),
        ("not_yet_valid", lambda: verify_user_token(APP, valid, now=NOW - DAY)),
        ("issuer", lambda: verify_user_token(App("other_app", SECRET), valid, now=NOW)),
        ("subject", lambda: verify_user_token(APP, valid, expected_user_id="bob", now=NOW)),
        (
            "tampered",
            lambda: verify_user_token(APP, f"{header}.{forged_payload}.{signature}", now=NOW),
        ),
        ("other_secret", lambda: verify_user_token(App(APP_ID, OTHER_SECRET), valid, now=NOW)),
        ("alg_none", lambda: verify_user_token(APP, f"{none_header}.{payload}.", now=NOW)),
        ("type", lambda: verify_user_token(APP, create_app_token(APP, now=NOW), now=NOW)),
        ("malformed", lambda: verify_user_token(APP, f"{header}.{payload}", now=NOW)),
        ("app_type", lambda: verify_app_token(APP, valid, now=NOW)),
        ("signature_mismatch", lambda: verify_signature(APP, "alice", "0" * 64)),
        ("signature_malformed", lambda: verify_signature(APP, "alice", "xyz")),
        ("credentials_missing", lambda: authenticate(APP, "alice")),
        ("authenticate_token", lambda: authenticate(APP, "bob", token=valid, now=NOW)),
        ("short_secret", lambda: App(APP_ID, SECRET[:10])),
        ("bad_leeway", lambda: verify_user_token(APP, valid, leeway=-1)),
    ]


@pytest.mark.parametrize(("name", "call"), _failing_calls())
def test_errors_never_contain_secret(name: str, call: Callable[[], object]) -> None:
    valid_token = create_user_token(APP, "alice", now=NOW)

    with pytest.raises((AuthError, InvalidInput)) as info:
        call()

    text = str(info.value) + repr(info.value)
    assert SECRET not in text, name
    assert SECRET[:10] not in text, name
    assert OTHER_SECRET not in text, name
    assert valid_token not in text, name
    assert valid_token.split(".")[2] not in text, name
