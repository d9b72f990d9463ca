"""The event log of the PostgreSQL store: appending, pruning and reading events.

Every append increments ``event_log.last_seq`` of the app, which locks that
row until the transaction ends. So an app's appends take their numbers one
transaction at a time, in commit order, and a reader that has seen ``seq``
N has also seen every smaller number. The price is that event-logging
writes of one app serialize for the last part of their transaction (the
event insert, the prune and the commit). Other apps do not wait, and the
writes' earlier work (authorization, row locks, the change) runs
concurrently.
"""

from __future__ import annotations

from typing import TypeVar

import asyncpg

from ...errors import ChatError
from ...models import EventsPage, now_ms
from .. import NOTHING_LOGGED, LogEvent, LoggedEvent, NewEvent
from .rows import event_from_row
from .transaction import Transaction

__all__ = [
    "PRUNE_BATCH",
    "app_events_after",
    "append_event",
    "events_after",
    "latest_event_seq",
    "log",
]

PRUNE_BATCH = 2
"""Maximum number of expired events each logged write deletes, as in the SQLite store.

More than one, so that a backlog of expired events shrinks while the app
keeps writing, and few, so that the time the app's log row stays locked is
short.
"""

_R = TypeVar("_R")


async def log(tx: Transaction, change: _R, log_event: LogEvent[_R] | None) -> LoggedEvent:
    """Append the event that ``log_event`` builds from ``change``; return it with its seq."""
    if log_event is None:
        return NOTHING_LOGGED
    new_event = log_event(change)
    if new_event is None:
        return NOTHING_LOGGED
    return await append_event(tx, new_event)


async def append_event(tx: Transaction, new_event: NewEvent) -> LoggedEvent:
    event = new_event.event
    recipients = list(dict.fromkeys(new_event.recipients))
    created_at = now_ms()
    # The upsert locks the app's row until commit; see the module docstring.
    seq: int = await tx.connection.fetchval(
        """
        INSERT INTO event_log AS log (app_id, last_seq) VALUES ($1, 1)
        ON CONFLICT (app_id) DO UPDATE SET last_seq = log.last_seq + 1
        RETURNING last_seq
        """,
        tx.app_id,
    )
    await tx.connection.execute(
        "INSERT INTO events (app_id, seq, type, created_at, recipients, payload)"
        " VALUES ($1, $2, $3, $4, $5, $6)",
        tx.app_id,
        seq,
        event.type,
        created_at,
        recipients,
        event.model_dump_json(by_alias=True, exclude={"seq"}),
    )
    await tx.connection.execute(
        "INSERT INTO event_recipients (app_id, user_id, seq) SELECT $1, unnest($2::text[]), $3",
        tx.app_id,
        recipients,
        seq,
    )
    await _prune_events(tx, created_at - tx.event_retention_ms)
    tx.on_event_appended(seq)

    # The counter row gives an app's events consecutive numbers (a rolled
    # back append rolls the counter back too), so the previous event is seq - 1.
    return LoggedEvent(event.model_copy(update={"seq": seq}), seq - 1)


async def _prune_events(tx: Transaction, expired_before: int) -> None:
    """Delete up to ``PRUNE_BATCH`` oldest events of the app created before ``expired_before``.

    Only a prefix of the log is deleted: pruning stops at the first event
    that has not expired, even if a later one has (after a clock step
    backwards), so ``pruned_through_seq`` stays exact.
    """
    oldest = await tx.connection.fetch(
        "SELECT seq, created_at, recipients FROM events WHERE app_id = $1 ORDER BY seq LIMIT $2",
        tx.app_id,
        PRUNE_BATCH,
    )
    expired = []
    for row in oldest:
        if row["created_at"] >= expired_before:
            break
        expired.append(row)
    if not expired:
        return
    # The recipients column names the index rows, so each is deleted by its
    # key and no table is scanned.
    keys = [(user_id, row["seq"]) for row in expired for user_id in row["recipients"]]
    await tx.connection.execute(
        """
        DELETE FROM event_recipients AS r
        USING unnest($2::text[], $3::bigint[]) AS expired (user_id, seq)
        WHERE r.app_id = $1 AND r.user_id = expired.user_id AND r.seq = expired.seq
        """,
        tx.app_id,
        [user_id for user_id, _ in keys],
        [seq for _, seq in keys],
    )
    last_seq = int(expired[-1]["seq"])
    await tx.connection.execute(
        "DELETE FROM events WHERE app_id = $1 AND seq <= $2", tx.app_id, last_seq
    )
    await tx.connection.execute(
        "UPDATE event_log SET pruned_through_seq = $2 WHERE app_id = $1", tx.app_id, last_seq
    )


async def latest_event_seq(tx: Transaction) -> tuple[int, int]:
    """Return the app's latest event seq and how far its log was pruned; ``(0, 0)`` when empty."""
    row = await tx.connection.fetchrow(
        "SELECT last_seq, pruned_through_seq FROM event_log WHERE app_id = $1", tx.app_id
    )
    if row is None:
        return 0, 0
    return int(row["last_seq"]), int(row["pruned_through_seq"])


async def events_after(tx: Transaction, user_id: str, after_seq: int, limit: int) -> EventsPage:
    """Read a page of the user's events; the caller runs this in one REPEATABLE READ snapshot.

    In one snapshot, the events read and ``last_seq`` agree: every event up
    to ``last_seq`` has committed, so ``next_after_seq`` skips nothing.
    """
    latest = await _check_resume_position(tx, after_seq)
    # One extra row shows whether more events follow.
    rows = await tx.connection.fetch(
        "SELECT e.seq, e.payload FROM event_recipients AS r"
        " JOIN events AS e ON e.app_id = r.app_id AND e.seq = r.seq"
        " WHERE r.app_id = $1 AND r.user_id = $2 AND r.seq > $3"
        " ORDER BY r.seq LIMIT $4",
        tx.app_id,
        user_id,
        after_seq,
        limit + 1,
    )
    return _events_page(rows, limit, latest)


async def app_events_after(tx: Transaction, after_seq: int, limit: int) -> EventsPage:
    """Read a page of the app's events, all recipients; run it in one REPEATABLE READ snapshot."""
    latest = await _check_resume_position(tx, after_seq)
    rows = await tx.connection.fetch(
        "SELECT seq, payload FROM events WHERE app_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
        tx.app_id,
        after_seq,
        limit + 1,
    )
    return _events_page(rows, limit, latest)


async def _check_resume_position(tx: Transaction, after_seq: int) -> int:
    """Return the app's latest event seq, or raise ``resume_gap`` for a position not in the log."""
    latest, pruned_through = await latest_event_seq(tx)
    if after_seq < pruned_through:
        raise ChatError(
            f"events after seq {after_seq} are no longer all stored: the event log of "
            f"app '{tx.app_id}' was pruned up to seq {pruned_through}; reload the "
            "unreads and conversations, then resume after the snapshot's as_of_event_seq",
            code="resume_gap",
        )
    if after_seq > latest:
        raise ChatError(
            f"seq {after_seq} is beyond the latest event seq {latest} of app "
            f"'{tx.app_id}', so the event log was reset or belongs to another "
            "database; reload the unreads and conversations, then resume after the "
            "snapshot's as_of_event_seq",
            code="resume_gap",
        )
    return latest


def _events_page(rows: list[asyncpg.Record], limit: int, latest: int) -> EventsPage:
    """Build a page from up to ``limit + 1`` rows; the extra row shows that more follow."""
    events = [event_from_row(row) for row in rows[:limit]]
    has_more = len(rows) > limit
    next_after_seq = int(rows[limit - 1]["seq"]) if has_more else latest
    return EventsPage(events=events, has_more=has_more, next_after_seq=next_after_seq)
