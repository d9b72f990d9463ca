"""Protocol versions, the endpoint path, and the limits and timeouts of each connection."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

from ..errors import InvalidInput

__all__ = [
    "CLIENT_VERSIONS",
    "DEFAULT_HANDSHAKE_TIMEOUT",
    "DEFAULT_HEARTBEAT_INTERVAL",
    "DEFAULT_IDLE_TIMEOUT",
    "DEFAULT_MAX_FRAME_BYTES",
    "DEFAULT_MAX_IN_FLIGHT_REQUESTS",
    "PROTOCOL_VERSION",
    "REALTIME_PATH",
    "SUPPORTED_VERSIONS",
    "ServerLimits",
]

PROTOCOL_VERSION: Final = 2
"""The newest protocol version this package speaks."""

SUPPORTED_VERSIONS: Final[tuple[int, ...]] = (1, 2)
"""Every protocol version the server accepts, oldest first.

Version 2 made ``presence_changed`` name a user without a conversation.
Version 1 clients require the conversation, so a connection of version 1
gets no presence events, and everything else as before.
"""

CLIENT_VERSIONS: Final[tuple[int, ...]] = (PROTOCOL_VERSION,)
"""The protocol versions this package's client offers in its hello.

Only the newest: the client cannot read the presence events of version 1.
"""

REALTIME_PATH: Final = "/v1/{appId}/realtime"
"""URL path of a server's realtime endpoint, with the app id as one percent-encoded segment."""

DEFAULT_MAX_FRAME_BYTES: Final = 256 * 1024
"""Default maximum size of a frame the server accepts, in UTF-8 bytes.

A ``send_message`` frame with a text of ``models.MAX_TEXT_LENGTH`` (20,000)
characters takes at most 120,000 bytes, because the worst character is a
control character that JSON escapes as six bytes (``\\u0001``). The rest of
256 KiB is room for the message's ``custom`` data, whose values have no length
limit of their own.
"""

DEFAULT_HEARTBEAT_INTERVAL: Final = 20.0
"""Default seconds of silence from the client after which the server sends a ping."""

DEFAULT_IDLE_TIMEOUT: Final = 60.0
"""Default seconds of silence after which either side closes the connection."""

DEFAULT_HANDSHAKE_TIMEOUT: Final = 10.0
"""Default seconds from connecting until the welcome, for both sides."""

DEFAULT_MAX_IN_FLIGHT_REQUESTS: Final = 64
"""Default number of requests a client may have sent without a response yet."""


@dataclass(frozen=True)
class ServerLimits:
    """Limits a server enforces on each connection; the welcome frame announces them.

    Times are in seconds, as differences of the monotonic clock the I/O layer
    passes to the protocol objects.

    Raises:
        InvalidInput: A limit is not a positive number, or ``idle_timeout``
            is not longer than ``heartbeat_interval``.
    """

    max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES
    """Largest frame the server accepts, in UTF-8 bytes. A larger one closes the connection."""

    heartbeat_interval: float = DEFAULT_HEARTBEAT_INTERVAL
    """Seconds without a frame from the client after which the server sends a ping."""

    idle_timeout: float = DEFAULT_IDLE_TIMEOUT
    """Seconds without a frame from the peer after which either side closes the connection."""

    handshake_timeout: float = DEFAULT_HANDSHAKE_TIMEOUT
    """Seconds from the start of the connection until the welcome must have been sent."""

    max_in_flight_requests: int = DEFAULT_MAX_IN_FLIGHT_REQUESTS
    """Requests the server handles at once for one connection; more are rejected."""

    def __post_init__(self) -> None:
        for name in ("max_frame_bytes", "max_in_flight_requests"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InvalidInput(f"{name} must be a positive integer, got {value!r}")
        for name in ("heartbeat_interval", "idle_timeout", "handshake_timeout"):
            value = getattr(self, name)
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not math.isfinite(value)
                or value <= 0
            ):
                raise InvalidInput(f"{name} must be a positive number of seconds, got {value!r}")
        if self.idle_timeout <= self.heartbeat_interval:
            raise InvalidInput(
                f"idle_timeout ({self.idle_timeout:g} s) must be longer than "
                f"heartbeat_interval ({self.heartbeat_interval:g} s), so that a live peer "
                "can respond to a ping before the connection counts as idle"
            )
