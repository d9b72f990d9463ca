"""PostgreSQL implementation of the :class:`~talkjs_components.store.Store` interface.

Several server processes can write to one database at once, and several
apps share one schema (every row carries ``app_id``), so the store keeps the
ordering that SQLite's single writer gives for free with row locks:

- Each app's events are numbered from a counter row per app
  (``event_log.last_seq``) that the appending transaction increments and
  keeps locked until it commits. So events become visible in ``seq`` order,
  and a reader at position N never misses a smaller number that commits
  later (see ``events``).
- Each write of a conversation, its participants or its messages locks the
  conversation's row first. So its ``authorize`` callback and the write see
  the same participants, and messages of one conversation commit in ``seq``
  order, which read positions rely on (see ``conversations`` and ``messages``).
- Reads run in REPEATABLE READ snapshots, so an unreads snapshot and its
  ``as_of_event_seq`` describe one moment.

The schema is created and upgraded by :func:`migrate` (the
``talkjs-components migrate`` command), never by opening a store.
"""

from __future__ import annotations

from .connect import create_pool
from .events import PRUNE_BATCH
from .migrations import SCHEMA_VERSION, migrate
from .store import PostgresStore

__all__ = ["PRUNE_BATCH", "SCHEMA_VERSION", "PostgresStore", "create_pool", "migrate"]
