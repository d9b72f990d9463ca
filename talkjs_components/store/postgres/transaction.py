"""The transaction that every store operation runs in."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .connect import Connection

__all__ = ["Transaction"]


@dataclass(frozen=True)
class Transaction:
    """An open transaction on one connection, for one app's rows."""

    connection: Connection
    app_id: str
    event_retention_ms: int
    """Milliseconds a logged event is kept before a later write prunes it."""
    on_event_appended: Callable[[int], None]
    """Called with the ``seq`` of each event the transaction appends, before it commits."""
