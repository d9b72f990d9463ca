"""Exceptions raised by talkjs_components.

Every error the package raises on purpose derives from :class:`ChatError`, so
callers can catch the package's errors selectively::

    ChatError
    ├── AuthError                  credentials missing, invalid or expired
    ├── PermissionDenied           authenticated, but not allowed to do this
    ├── NotFound                   unknown user, conversation or message id
    ├── InvalidInput (ValueError)  a value breaks a documented limit or format
    ├── StorageError               the database failed
    ├── BrokerError                the message broker failed
    ├── ConnectionRejected         a chat server refused the connection for good
    └── SessionDestroyed (RuntimeError)
                                   a method was called on a destroyed session

Each error carries a stable machine-readable ``code`` next to its message, so
a server can put both on the wire and a client can branch on the code.
"""

from __future__ import annotations

__all__ = [
    "AuthError",
    "BrokerError",
    "ChatError",
    "ConnectionRejected",
    "InvalidInput",
    "NotFound",
    "PermissionDenied",
    "SessionDestroyed",
    "StorageError",
]


class ChatError(Exception):
    """Base class of every error raised on purpose by talkjs_components."""

    code = "chat_error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class AuthError(ChatError):
    """Credentials are missing, invalid or expired.

    ``code`` names the check that failed, for example ``token_expired`` or
    ``signature_mismatch``.
    """

    code = "auth_failed"


class PermissionDenied(ChatError):
    """The user is authenticated but lacks the access the operation needs."""

    code = "permission_denied"


class NotFound(ChatError):
    """A user, conversation or message id does not exist."""

    code = "not_found"


class InvalidInput(ChatError, ValueError):
    """A value breaks a documented limit or format."""

    code = "invalid_input"


class StorageError(ChatError):
    """The database failed; the operation may be retried."""

    code = "storage_error"


class BrokerError(ChatError):
    """The message broker (Redis) failed or cannot be reached.

    A change that was stored before its publish failed stays stored: clients
    get its event when they next resume, and other nodes when they fill the
    gap from the event log.
    """

    code = "broker_error"


class ConnectionRejected(ChatError):
    """A chat server ended or refused the connection for a reason retrying can't fix.

    Examples are a protocol version the server does not speak, a protocol
    violation, or a frame over the server's size limit. ``code`` is the
    server's error code. A session fails with it instead of reconnecting.
    """

    code = "connection_rejected"


class SessionDestroyed(ChatError, RuntimeError):
    """A method was called on a session that was already destroyed."""

    code = "session_destroyed"
