"""Users and seeding helpers shared by tests/apps/chatbox_app.py and its browser tests.

The browser tests write their conversations into a SQLite file before the
server process starts on it, so this module must not configure an embedded
backend: importing it has no side effects.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import quote

from talkjs_components.broker.memory import MemoryBroker
from talkjs_components.models import User
from talkjs_components.service import ChatService
from talkjs_components.store.sqlite import SQLiteStore

__all__ = [
    "APP_ID",
    "BOB_PHOTO_URL",
    "SECRET_KEY",
    "USERS",
    "seeding_service",
    "set_created_at",
]

APP_ID = "chatbox-ui-test"
SECRET_KEY = "sk_test_" + "d" * 40

_BOB_SVG = (
    '<svg xmlns="http://www.w3.org/2000/svg" width="32" height="32">'
    '<rect width="32" height="32" fill="#2b6cb0"/></svg>'
)
BOB_PHOTO_URL = "data:image/svg+xml," + quote(_BOB_SVG)
"""A picture that loads without a network, so a test can check that it rendered."""

USERS = {
    "alice": User(id="alice", name="Alice"),
    "bob": User(id="bob", name="Bob", photo_url=BOB_PHOTO_URL),
    "carol": User(id="carol", name="Carol Jones"),
    "erin": User(id="erin", name="Erin", welcome_message="Erin here, ask me anything"),
}


@contextlib.asynccontextmanager
async def seeding_service(database: Path) -> AsyncIterator[ChatService]:
    """Yield a started ChatService on ``database`` with the users above; close it on exit.

    Run it before the server process opens the same file: the two processes
    would not see each other's events.
    """
    service = ChatService(SQLiteStore(database, APP_ID), MemoryBroker(), app_id=APP_ID)
    await service.start()
    try:
        for user in USERS.values():
            await service.upsert_user(user)
        yield service
    finally:
        await service.close()


def set_created_at(database: Path, times: dict[str, int]) -> None:
    """Overwrite the creation times (milliseconds since the epoch) of messages by id.

    The service stamps messages with the current time only. Tests of day
    headings and grouping need messages from other days, so they change the
    stored times while no server has the file open.
    """
    with contextlib.closing(sqlite3.connect(database)) as connection, connection:
        for message_id, created_at in times.items():
            updated = connection.execute(
                "UPDATE messages SET created_at = ? WHERE app_id = ? AND id = ?",
                (created_at, APP_ID, message_id),
            ).rowcount
            if updated != 1:
                raise LookupError(f"message {message_id!r} not found in {database}")
