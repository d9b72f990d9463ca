"""User operations of the PostgreSQL store."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from ...errors import InvalidInput, StorageError
from ...models import User
from ..records import merge_user
from .rows import to_json_or_none, user_from_row
from .transaction import Transaction

__all__ = ["get_users", "insert_missing_users", "list_users", "upsert_user", "upsert_users"]

_COLUMNS = (
    "app_id, id, name, email, phone, photo_url, role, locale, welcome_message, custom, created_at"
)
_VALUES = "$1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11"

# SQL condition for get_users(visible_to=...): the user row ``u`` shares at
# least one conversation with the user id bound to $3.
_SHARES_CONVERSATION_WITH = """
    EXISTS (
        SELECT 1 FROM participants AS mine
        JOIN participants AS theirs ON theirs.app_id = mine.app_id
            AND theirs.conversation_id = mine.conversation_id
        WHERE mine.app_id = u.app_id AND mine.user_id = $3 AND theirs.user_id = u.id
    )
"""


async def upsert_user(tx: Transaction, user: User) -> User:
    """Merge ``user`` into the stored user, or create it, and return the result.

    The stored row is locked before the merge, so two concurrent updates of
    one user both apply. When the user does not exist, the insert skips a
    row that another transaction inserted meanwhile; the merge then runs
    again on that row.
    """
    for _ in range(2):
        row = await tx.connection.fetchrow(
            "SELECT * FROM users WHERE app_id = $1 AND id = $2 FOR NO KEY UPDATE",
            tx.app_id,
            user.id,
        )
        if row is not None:
            merged = merge_user(user_from_row(row), user)
            await _write_user(tx, merged)
            return merged
        merged = merge_user(None, user)
        if await _insert_user(tx, merged):
            return merged
    # Users are never deleted, so the row that blocked the insert is found above.
    raise StorageError(f"upserting user '{user.id}' found neither a stored row nor a free id")


async def upsert_users(tx: Transaction, users: Sequence[User]) -> list[User]:
    """Upsert each user and return the results in the order of ``users``.

    The rows are written in id order, so that two of these transactions
    that write the same users lock them in the same order, and neither waits
    for a row the other locked later. When several users fail, the error
    names the first in that order.
    """
    stored: dict[int, User] = {}
    for index, user in sorted(enumerate(users), key=lambda entry: entry[1].id):
        try:
            stored[index] = await upsert_user(tx, user)
        except InvalidInput as exc:
            raise InvalidInput(f"user '{user.id}': {exc.message}", code=exc.code) from exc
    return [stored[index] for index in range(len(users))]


async def insert_missing_users(tx: Transaction, users: Iterable[User]) -> None:
    """Create the users that do not exist and leave the others unchanged.

    Inserted in id order, for the reason given in :func:`upsert_users`.
    """
    for user in sorted(users, key=lambda user: user.id):
        await _insert_user(tx, merge_user(None, user))


async def get_users(
    tx: Transaction, user_ids: Iterable[str], visible_to: str | None = None
) -> dict[str, User]:
    sql = "SELECT u.* FROM users AS u WHERE u.app_id = $1 AND u.id = ANY($2::text[])"
    parameters: list[object] = [tx.app_id, list(user_ids)]
    if visible_to is not None:
        sql += f" AND (u.id = $3 OR {_SHARES_CONVERSATION_WITH})"
        parameters.append(visible_to)
    rows = await tx.connection.fetch(sql, *parameters)
    return {row["id"]: user_from_row(row) for row in rows}


async def list_users(tx: Transaction, limit: int, starting_after: str | None) -> list[User]:
    rows = await tx.connection.fetch(
        "SELECT * FROM users WHERE app_id = $1 AND id > $2 ORDER BY id LIMIT $3",
        tx.app_id,
        starting_after if starting_after is not None else "",
        limit,
    )
    return [user_from_row(row) for row in rows]


async def _insert_user(tx: Transaction, user: User) -> bool:
    """Insert ``user`` unless its id exists; return whether it was inserted."""
    inserted = await tx.connection.fetchval(
        f"INSERT INTO users ({_COLUMNS}) VALUES ({_VALUES})"
        " ON CONFLICT (app_id, id) DO NOTHING RETURNING true",
        *_user_values(tx, user),
    )
    return inserted is not None


async def _write_user(tx: Transaction, user: User) -> None:
    await tx.connection.execute(
        """
        UPDATE users SET name = $3, email = $4, phone = $5, photo_url = $6, role = $7,
            locale = $8, welcome_message = $9, custom = $10, created_at = $11
        WHERE app_id = $1 AND id = $2
        """,
        *_user_values(tx, user),
    )


def _user_values(tx: Transaction, user: User) -> tuple[object, ...]:
    return (
        tx.app_id,
        user.id,
        user.name,
        to_json_or_none(user.email),
        to_json_or_none(user.phone),
        user.photo_url,
        user.role,
        user.locale,
        user.welcome_message,
        to_json_or_none(user.custom),
        user.created_at,
    )
