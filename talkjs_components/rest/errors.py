"""Exceptions of the REST clients: one class per HTTP error status.

Each derives from :class:`RestError` and from the package error of the same
meaning, so ``except NotFound`` catches a 404 from the REST API as well as
an unknown id in the embedded service.
"""

from __future__ import annotations

import json

import httpx

from ..errors import AuthError, ChatError, InvalidInput, NotFound, PermissionDenied

__all__ = [
    "RestBadRequest",
    "RestError",
    "RestForbidden",
    "RestNotFound",
    "RestPayloadTooLarge",
    "RestRateLimited",
    "RestServerError",
    "RestUnauthorized",
    "error_from_response",
]

_MAX_REASON_LENGTH = 500
"""Characters of a non-JSON error body kept as the reason."""


class RestError(ChatError):
    """The REST API responded with an error status.

    Attributes:
        status: The HTTP status code.
        error_code: The body's ``errorCode``, or ``http_<status>`` when the
            body has none. Also available as ``code``.
        reason: The body's ``reason``, or the start of the body's text.
        retry_after: Seconds from the ``Retry-After`` header, or ``None``.
        errors: Per-item reasons (user id to reason for a batch), or ``None``.
    """

    def __init__(
        self,
        status: int,
        error_code: str,
        reason: str,
        *,
        retry_after: float | None = None,
        errors: dict[str, str] | None = None,
    ) -> None:
        super().__init__(f"HTTP {status} {error_code}: {reason}", code=error_code)
        self.status = status
        self.error_code = error_code
        self.reason = reason
        self.retry_after = retry_after
        self.errors = errors


class RestBadRequest(RestError, InvalidInput):
    """400: the JSON, a query parameter, a path id or a field is invalid."""


class RestUnauthorized(RestError, AuthError):
    """401: the credentials are missing or invalid."""


class RestForbidden(RestError, PermissionDenied):
    """403: the operation is not allowed."""


class RestNotFound(RestError, NotFound):
    """404: the app, a user, the conversation or the message does not exist."""


class RestPayloadTooLarge(RestError, InvalidInput):
    """413: the request body is over the server's size limit."""


class RestRateLimited(RestError):
    """429: the app sent too many requests; ``retry_after`` is the wait in seconds."""


class RestServerError(RestError):
    """5xx: the server failed; the request may be retried."""


_CLASSES: dict[int, type[RestError]] = {
    400: RestBadRequest,
    401: RestUnauthorized,
    403: RestForbidden,
    404: RestNotFound,
    413: RestPayloadTooLarge,
    429: RestRateLimited,
}


def error_from_response(response: httpx.Response, retry_after: float | None) -> RestError:
    """Return the exception for an error ``response`` (status 400 or more)."""
    status = response.status_code
    error_code = f"http_{status}"
    reason = response.text[:_MAX_REASON_LENGTH]
    errors = None
    try:
        body = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        body = None
    if isinstance(body, dict):
        if isinstance(body.get("errorCode"), str):
            error_code = body["errorCode"]
        if isinstance(body.get("reason"), str):
            reason = body["reason"]
        if isinstance(body.get("errors"), dict):
            errors = {str(key): str(value) for key, value in body["errors"].items()}
    if status >= 500:
        error_class: type[RestError] = RestServerError
    else:
        error_class = _CLASSES.get(status, RestError)
    return error_class(status, error_code, reason, retry_after=retry_after, errors=errors)
