"""Settings of the realtime endpoint: per-connection limits, queues, timeouts and compression."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from ..errors import InvalidInput
from ..protocol import ServerLimits

__all__ = ["DEFAULT_MAX_QUEUED_BYTES", "RealtimeSettings"]

DEFAULT_MAX_QUEUED_BYTES = 8 * 1024 * 1024
"""Default limit of one connection's queue of frames to send, in UTF-8 bytes: 8 MiB."""


@dataclass(frozen=True)
class RealtimeSettings:
    """Limits of the realtime endpoint; docs/protocol.md lists them with their defaults.

    Raises:
        InvalidInput: A limit is not a positive finite number, or
            ``per_message_deflate`` is not a bool.
    """

    limits: ServerLimits = field(default_factory=ServerLimits)
    """Per-connection protocol limits, announced in the welcome."""

    max_queued_bytes: int = DEFAULT_MAX_QUEUED_BYTES
    """Frames waiting to be sent to one client, in UTF-8 bytes, beyond which it is closed with 4004.

    A frame that finds the queue empty is always accepted, so one large
    response (a page of long messages) never counts as falling behind.
    """

    max_held_events: int = 10_000
    """Live events held while a resume replays; more close the connection with 4004."""

    replay_page_size: int = 500
    """Stored events read per ``events_after`` call while replaying a resume."""

    drain_timeout: float = 10.0
    """Seconds shutdown waits for requests in flight before closing connections anyway."""

    close_timeout: float = 5.0
    """Seconds a connection may take to send its close frame before the server drops it."""

    per_message_deflate: bool = False
    """Whether the server accepts the permessage-deflate extension when a client offers it.

    Off by default. Each connection with deflate keeps its own zlib
    compressor and decompressor, about 50 KB, and compresses every frame
    separately. With deflate on, an idle session cost 83 KiB of server
    memory instead of 40 KiB, and one message to 1,000 connections took
    271 ms instead of 72 ms on loopback (docs/benchmarks.md). Turn it on
    when clients sit behind slow or metered links, where the smaller frames
    matter more.
    uvicorn negotiates the extension, so this takes effect through
    :class:`~talkjs_components.server.realtime.DrainingServer` or uvicorn's
    own ``ws_per_message_deflate``.
    """

    def __post_init__(self) -> None:
        for name in ("max_queued_bytes", "max_held_events", "replay_page_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InvalidInput(f"{name} must be a positive integer, got {value!r}")
        for name in ("drain_timeout", "close_timeout"):
            value = getattr(self, name)
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not math.isfinite(value)
                or value <= 0
            ):
                raise InvalidInput(f"{name} must be a positive number of seconds, got {value!r}")
        if not isinstance(self.per_message_deflate, bool):
            raise InvalidInput(
                f"per_message_deflate must be true or false, got {self.per_message_deflate!r}"
            )
