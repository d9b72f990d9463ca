"""Errors of the protocol, and how any ChatError travels in an error frame.

An error frame carries ``code`` (the error's own code, such as
``token_expired``), ``kind`` (the code of its class in the ChatError tree,
such as ``auth_failed``) and ``message``. The receiver rebuilds an exception
of the same class from ``kind``, so ``except AuthError`` works on both sides
of the connection::

    ChatError
    ├── AuthError, PermissionDenied, NotFound, StorageError   (see errors.py)
    ├── InvalidInput
    │   └── InvalidRequest   a request frame's arguments are invalid: an error response
    ├── ProtocolError        the peer broke the protocol; the connection closes
    └── InvalidState (RuntimeError)
                             the I/O layer called a protocol object in the wrong state
"""

from __future__ import annotations

from enum import StrEnum

from ..errors import (
    AuthError,
    ChatError,
    InvalidInput,
    NotFound,
    PermissionDenied,
    StorageError,
)
from .close_codes import CloseCode

__all__ = [
    "ErrorCode",
    "InvalidRequest",
    "InvalidState",
    "ProtocolError",
    "error_from_wire",
    "error_kind",
]


class ErrorCode(StrEnum):
    """Error codes the protocol itself produces, next to those of the ChatError tree."""

    PROTOCOL_ERROR = "protocol_error"
    """A frame breaks the protocol: invalid JSON, unknown type, wrong state."""

    UNSUPPORTED_VERSION = "unsupported_version"
    """The hello names no protocol version the server speaks."""

    FRAME_TOO_BIG = "frame_too_big"
    """A frame is larger than the server's ``max_frame_bytes``."""

    TOO_MANY_REQUESTS = "too_many_requests"
    """The client has ``max_in_flight_requests`` requests without a response already."""

    SERVER_SHUTTING_DOWN = "server_shutting_down"
    """The server shuts down and handled nothing of the request; send it again elsewhere."""

    INTERNAL_ERROR = "internal_error"
    """The server failed; its log has the details, the frame has none."""

    CONNECTION_LOST = "connection_lost"
    """The connection closed before the request got a response."""

    CONNECTION_CLOSED = "connection_closed"
    """The client was closed for good before the request got a response."""

    HANDSHAKE_TIMEOUT = "handshake_timeout"
    """No welcome arrived within the handshake timeout."""

    IDLE_TIMEOUT = "idle_timeout"
    """No frame arrived within the idle timeout."""

    SLOW_CONSUMER = "slow_consumer"
    """The client read frames too slowly, so the server closed the connection."""


class ProtocolError(ChatError):
    """The peer broke the protocol, so the connection closes with ``close_code``."""

    code = "protocol_error"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        close_code: CloseCode = CloseCode.PROTOCOL_ERROR,
    ) -> None:
        super().__init__(message, code=code)
        self.close_code = close_code


class InvalidRequest(InvalidInput):
    """A request frame has a readable id and type but invalid arguments.

    The server responds with an error frame and keeps the connection open.
    """

    def __init__(self, message: str, *, request_id: str, request_type: str) -> None:
        super().__init__(message)
        self.request_id = request_id
        self.request_type = request_type


class InvalidState(ChatError, RuntimeError):
    """A protocol object was called in a state that does not allow the call."""

    code = "invalid_state"


# Most specific first: error_kind returns the first class that matches.
_KINDS: tuple[type[ChatError], ...] = (
    AuthError,
    PermissionDenied,
    NotFound,
    InvalidInput,
    StorageError,
    ProtocolError,
    ChatError,
)
_CLASSES_BY_KIND = {cls.code: cls for cls in _KINDS}


def error_kind(error: ChatError) -> str:
    """Return the ``kind`` of an error frame for ``error``: the code of its class in the tree."""
    for cls in _KINDS:
        if isinstance(error, cls):
            return cls.code
    raise AssertionError("every ChatError is an instance of ChatError")


def error_from_wire(code: str, kind: str, message: str) -> ChatError:
    """Rebuild the exception of an error frame; an unknown ``kind`` gives a plain ChatError."""
    cls = _CLASSES_BY_KIND.get(kind, ChatError)
    if cls is ProtocolError:
        return ProtocolError(message, code=code)
    return cls(message, code=code)
