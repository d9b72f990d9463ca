"""Error responses of the REST API: ``{"errorCode": ..., "reason": ...}`` with a status.

Status codes: 400 invalid JSON or input, 401 missing or invalid credentials,
403 not allowed, 404 unknown app, route or id, 405 method not allowed, 413
body too large, 429 rate limited, 500 unexpected error, 503 storage failure.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping

from pydantic import ValidationError
from pydantic_core import ErrorDetails
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ..errors import AuthError, ChatError, InvalidInput, NotFound, PermissionDenied, StorageError
from ..rest.models import ErrorBody

__all__ = [
    "ApiError",
    "error_response",
    "from_chat_error",
    "from_validation_error",
    "handle_http_exception",
    "internal_error",
]

logger = logging.getLogger(__name__)

_MAX_SHOWN_LENGTH = 60
"""Maximum length of a value quoted in a reason, in characters."""


class ApiError(Exception):
    """An error to send as a JSON error response."""

    def __init__(
        self,
        status: int,
        error_code: str,
        reason: str,
        *,
        headers: Mapping[str, str] | None = None,
        errors: dict[str, str] | None = None,
    ) -> None:
        super().__init__(reason)
        self.status = status
        self.error_code = error_code
        self.reason = reason
        self.headers = dict(headers or {})
        self.errors = errors

    def to_response(self) -> JSONResponse:
        """Return the JSON response of this error."""
        return error_response(
            self.status, self.error_code, self.reason, headers=self.headers, errors=self.errors
        )


def error_response(
    status: int,
    error_code: str,
    reason: str,
    *,
    headers: Mapping[str, str] | None = None,
    errors: dict[str, str] | None = None,
) -> JSONResponse:
    """Return an error response with an :class:`~talkjs_components.rest.models.ErrorBody`."""
    body = ErrorBody(error_code=error_code, reason=reason, errors=errors)
    return JSONResponse(
        body.model_dump(mode="json", by_alias=True, exclude_none=True),
        status_code=status,
        headers=dict(headers or {}),
    )


def from_chat_error(exc: ChatError) -> ApiError:
    """Map a service error to its status; the reason is the error's message."""
    if isinstance(exc, InvalidInput):
        status = 400
    elif isinstance(exc, AuthError):
        status = 401
    elif isinstance(exc, PermissionDenied):
        status = 403
    elif isinstance(exc, NotFound):
        status = 404
    else:
        # StorageError, or a service that is not running: both may pass on a retry.
        status = 503
    if status == 503:
        error_id = _new_error_id()
        logger.error("error %s: %s (%s)", error_id, exc.message, exc.code)
        reason = f"{exc.message} (error id {error_id}); retry later"
        if isinstance(exc, StorageError):
            reason = f"the database failed (error id {error_id}); retry later"
        return ApiError(status, exc.code, reason)
    return ApiError(status, exc.code, exc.message)


def from_validation_error(exc: ValidationError, part: str, *, by_key: bool = False) -> ApiError:
    """Turn pydantic's error on a request ``part`` ("body", "query") into a 400.

    The reason names the field, the value and what is expected. Errors of
    invalid JSON get the code ``invalid_json``. With ``by_key``, the error's
    ``errors`` maps each top-level key at fault (a user id of a batch) to
    the reason of its first error.
    """
    errors = exc.errors(include_url=False)
    first = errors[0]
    if first["type"] == "json_invalid":
        return ApiError(
            400, "invalid_json", f"the request {part} is not valid JSON: {first['msg']}"
        )
    more = f" (and {len(errors) - 1} more errors)" if len(errors) > 1 else ""
    by_key_reasons: dict[str, str] | None = None
    if by_key:
        by_key_reasons = {}
        for error in errors:
            if error["loc"]:
                by_key_reasons.setdefault(str(error["loc"][0]), _describe(error, part))
    reason = _describe(first, part) + more
    return ApiError(400, "invalid_input", reason, errors=by_key_reasons or None)


def _describe(error: ErrorDetails, part: str) -> str:
    """Return a sentence naming the field, the value and the expectation of one error."""
    location = _location(error["loc"])
    if error["type"] == "missing":
        return f"field {location} of the request {part} is missing: set it"
    if error["type"] == "extra_forbidden":
        return f"field {location} of the request {part} is not supported: remove it"
    message = error["msg"][:1].lower() + error["msg"][1:]
    value = _shorten(error["input"])
    return f"invalid value {value} for field {location} of the request {part}: {message}"


def _location(parts: tuple[int | str, ...]) -> str:
    """Format an error location like ``'custom.color'``, or ``(the whole value)`` when empty."""
    if not parts:
        return "(the whole value)"
    return "'" + ".".join(str(part) for part in parts) + "'"


def _shorten(value: object) -> str:
    text = str(value)
    if len(text) <= _MAX_SHOWN_LENGTH:
        return f"'{text}'"
    return f"'{text[:_MAX_SHOWN_LENGTH]}...' ({len(text)} characters)"


def _new_error_id() -> str:
    return uuid.uuid4().hex[:12]


def internal_error(exc: BaseException, request: Request) -> JSONResponse:
    """Log an unexpected exception with a new error id and return a 500 naming that id."""
    error_id = _new_error_id()
    logger.error(
        "error %s: %s %s failed",
        error_id,
        request.method,
        request.url.path,
        exc_info=(type(exc), exc, exc.__traceback__),
    )
    return error_response(
        500,
        "internal_error",
        f"the server failed unexpectedly (error id {error_id}); its log has the details",
    )


async def handle_http_exception(request: Request, exc: Exception) -> Response:
    """Return an error body for Starlette's own errors (unknown route, method not allowed)."""
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        code, reason = "route_not_found", f"no REST route matches {request.url.path}"
    elif exc.status_code == 405:
        allowed = (exc.headers or {}).get("Allow", "")
        code = "method_not_allowed"
        reason = f"method {request.method} is not allowed on {request.url.path}; use {allowed}"
    else:
        code, reason = "http_error", exc.detail
    return error_response(exc.status_code, code, reason, headers=exc.headers)
