"""Websocket close codes of the protocol, and what a client does after each one."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum, StrEnum

__all__ = ["Close", "CloseCode", "ReconnectPolicy", "reconnect_policy"]

MAX_CLOSE_REASON_BYTES = 123
"""Maximum length of a close reason, in UTF-8 bytes (RFC 6455, section 5.5)."""


class CloseCode(IntEnum):
    """Close codes of the protocol: RFC 6455 codes, and application codes from 4000."""

    NORMAL = 1000
    """The client ended the session, or the server closed the connection on request."""

    GOING_AWAY = 1001
    """The server shuts down, after responding to the requests in flight."""

    PROTOCOL_ERROR = 1002
    """The peer sent a frame that breaks the protocol."""

    ABNORMAL = 1006
    """No close frame was received; the connection dropped. Never sent, only reported."""

    MESSAGE_TOO_BIG = 1009
    """The client sent a frame over the server's ``max_frame_bytes``."""

    INTERNAL_ERROR = 1011
    """The server failed while handling the hello."""

    AUTHENTICATION_FAILED = 4001
    """The server rejected the hello's credentials or user."""

    UNSUPPORTED_VERSION = 4002
    """The client and server share no protocol version."""

    IDLE_TIMEOUT = 4003
    """No frame arrived within the handshake timeout or the idle timeout."""

    SLOW_CONSUMER = 4004
    """The client read too slowly: the server's queue of frames for it passed its limit."""


class ReconnectPolicy(StrEnum):
    """Client action after a connection closed."""

    RECONNECT = "reconnect"
    """Connect again after a backoff delay, and resume."""

    NEW_CREDENTIALS = "new_credentials"
    """Connect again only with new credentials, for example a newly fetched token."""

    STOP = "stop"
    """Do not connect again: reconnecting would fail the same way."""


_POLICIES = {
    CloseCode.NORMAL: ReconnectPolicy.STOP,
    CloseCode.GOING_AWAY: ReconnectPolicy.RECONNECT,
    CloseCode.PROTOCOL_ERROR: ReconnectPolicy.STOP,
    CloseCode.ABNORMAL: ReconnectPolicy.RECONNECT,
    # The client protocol never sends a request frame over the limit in the
    # welcome, so this code means a client bug or a hello that is too big.
    CloseCode.MESSAGE_TOO_BIG: ReconnectPolicy.STOP,
    CloseCode.INTERNAL_ERROR: ReconnectPolicy.RECONNECT,
    CloseCode.AUTHENTICATION_FAILED: ReconnectPolicy.NEW_CREDENTIALS,
    CloseCode.UNSUPPORTED_VERSION: ReconnectPolicy.STOP,
    CloseCode.IDLE_TIMEOUT: ReconnectPolicy.RECONNECT,
    # The frames dropped with the queue are events, which the client replays
    # on resume, and responses, whose requests fail or are sent again.
    CloseCode.SLOW_CONSUMER: ReconnectPolicy.RECONNECT,
}


def reconnect_policy(code: int | None) -> ReconnectPolicy:
    """Return what a client does after a close with ``code``.

    ``None`` (the connection dropped without a close frame) and codes this
    protocol does not define, such as a proxy's 1012 "service restart", mean
    ``RECONNECT``, because most of them are temporary.
    """
    if code is None:
        return ReconnectPolicy.RECONNECT
    try:
        return _POLICIES[CloseCode(code)]
    except ValueError:
        return ReconnectPolicy.RECONNECT


@dataclass(frozen=True)
class Close:
    """A websocket close for the I/O layer to send: the code and a short reason."""

    code: CloseCode
    reason: str

    def __post_init__(self) -> None:
        # Cut the reason to what a close frame can carry, on a character boundary.
        encoded = self.reason.encode("utf-8")
        if len(encoded) > MAX_CLOSE_REASON_BYTES:
            cut = encoded[: MAX_CLOSE_REASON_BYTES - 3].decode("utf-8", "ignore") + "..."
            object.__setattr__(self, "reason", cut)
