"""Versioned schema migrations of the PostgreSQL store, and the schema check at open.

Each file ``NNNN_name.sql`` in ``talkjs_components/store/migrations/postgres``
upgrades the schema from version ``NNNN - 1`` to ``NNNN``. :func:`migrate`
applies the pending files in order, each in its own transaction together with
its row in ``talkjs_schema_migrations``, so a failed file leaves the schema at
the version before it. It holds an advisory lock while it works, so when two
nodes start at once, the second waits and then finds nothing to do. A store
never migrates by itself: it only checks the version when it opens.

The schema is the first existing schema of the connection's ``search_path``
(``current_schema()``), so one database can hold several independent
installations, one per schema.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from importlib import resources

import asyncpg

from ...errors import StorageError
from .connect import DRIVER_ERRORS, Connection, connect

__all__ = [
    "LOCK_CLASS",
    "MIGRATE_COMMAND",
    "SCHEMA_VERSION",
    "VERSION_TABLE",
    "Migration",
    "check_schema_version",
    "load_migrations",
    "migrate",
    "migrate_connection",
    "read_schema_version",
]

SCHEMA_VERSION = 1
"""Schema version that this code reads and writes: the number of the last migration file."""

VERSION_TABLE = "talkjs_schema_migrations"
"""Table with one row per applied migration; the highest ``version`` is the schema's."""

MIGRATE_COMMAND = "talkjs-components migrate"
"""The command that runs :func:`migrate`, named in the errors of the schema check."""

LOCK_CLASS = 0x74616C6B
"""First half of the key of the advisory lock that serializes ``migrate`` runs on one schema.

It is fixed for this package ("talk" in ASCII). The second half is
``hashtext()`` of the schema name, so migrations of different schemas run at once.
"""

_FILE_NAME = re.compile(r"(\d{4})_([a-z0-9_]+)\.sql")

logger = logging.getLogger("talkjs_components.store")


@dataclass(frozen=True)
class Migration:
    """One migration file."""

    version: int
    """The schema version after this file ran."""
    file_name: str
    sql: str


def load_migrations() -> list[Migration]:
    """Read the packaged migration files, ordered by version.

    Raises:
        StorageError: the files do not number 1 to ``SCHEMA_VERSION`` without
            gaps, which means the package is installed incompletely.
    """
    folder = resources.files("talkjs_components.store").joinpath("migrations", "postgres")
    migrations = []
    for entry in folder.iterdir():
        match = _FILE_NAME.fullmatch(entry.name)
        if match is not None:
            migrations.append(Migration(int(match[1]), entry.name, entry.read_text("utf-8")))
    migrations.sort(key=lambda migration: migration.version)
    versions = [migration.version for migration in migrations]
    if versions != list(range(1, SCHEMA_VERSION + 1)):
        raise StorageError(
            f"the PostgreSQL migration files of talkjs-components have versions {versions}, "
            f"expected 1 to {SCHEMA_VERSION}: reinstall talkjs-components"
        )
    return migrations


async def migrate(url: str, *, lock_timeout: float = 300.0) -> tuple[int, int]:
    """Apply the pending migrations to the schema that ``url`` selects.

    Args:
        url: A ``postgresql://`` URL. A ``search_path`` query parameter
            selects the schema, which must exist; the default is ``public``.
        lock_timeout: Seconds to wait for another ``migrate`` of the same
            schema to finish.

    Returns:
        The schema version before and after, equal when nothing was pending.

    Raises:
        StorageError: the connection failed, a migration failed (the schema
            stays at the version before that file), the wait for the lock
            timed out, or the schema is newer than ``SCHEMA_VERSION``.
    """
    connection = await connect(url)
    try:
        return await migrate_connection(connection, lock_timeout=lock_timeout)
    finally:
        await connection.close()


async def migrate_connection(
    connection: asyncpg.Connection[asyncpg.Record], *, lock_timeout: float = 300.0
) -> tuple[int, int]:
    """Apply the pending migrations on an open connection; see :func:`migrate`.

    The connection must not be in a transaction, because each migration
    commits on its own.
    """
    migrations = load_migrations()
    try:
        where = await _describe_schema(connection)
        schema: str = await connection.fetchval("SELECT current_schema()")
    except DRIVER_ERRORS as exc:
        raise StorageError(f"reading the current PostgreSQL schema failed: {exc}") from exc
    await _lock(connection, schema, where, lock_timeout)
    try:
        try:
            await connection.execute(
                f"""
                CREATE TABLE IF NOT EXISTS {VERSION_TABLE} (
                    version integer PRIMARY KEY,
                    file_name text NOT NULL,
                    applied_at timestamptz NOT NULL DEFAULT now()
                )
                """
            )
            from_version = await read_schema_version(connection)
        except DRIVER_ERRORS as exc:
            raise StorageError(f"reading the schema version of {where} failed: {exc}") from exc
        if from_version > SCHEMA_VERSION:
            raise StorageError(_newer_schema_message(where, from_version))
        for migration in migrations[from_version:]:
            await _apply(connection, migration, where)
    finally:
        await _unlock(connection, schema)
    if from_version != SCHEMA_VERSION:
        logger.info("migrated %s from schema version %d to %d", where, from_version, SCHEMA_VERSION)
    return from_version, SCHEMA_VERSION


async def read_schema_version(connection: Connection) -> int:
    """Return the schema version of the connection's schema; 0 when it has none."""
    # to_regclass() looks the table up in search_path and returns NULL when
    # it is missing, so no error aborts the caller's transaction.
    exists = await connection.fetchval(f"SELECT to_regclass('{VERSION_TABLE}') IS NOT NULL")
    if not exists:
        return 0
    version: int = await connection.fetchval(
        f"SELECT coalesce(max(version), 0) FROM {VERSION_TABLE}"
    )
    return version


async def check_schema_version(connection: Connection) -> None:
    """Raise ``StorageError`` unless the connection's schema is at ``SCHEMA_VERSION``."""
    version = await read_schema_version(connection)
    if version == SCHEMA_VERSION:
        return
    where = await _describe_schema(connection)
    if version > SCHEMA_VERSION:
        raise StorageError(_newer_schema_message(where, version))
    raise StorageError(
        f"{where} has schema version {version}, but this version of talkjs-components "
        f"needs schema version {SCHEMA_VERSION}: run '{MIGRATE_COMMAND}' with the same "
        "database URL, then start again"
    )


def _newer_schema_message(where: str, version: int) -> str:
    return (
        f"{where} has schema version {version}, but this version of talkjs-components "
        f"supports schema version {SCHEMA_VERSION} only: upgrade talkjs-components, or use "
        "another database or schema"
    )


async def _describe_schema(connection: Connection) -> str:
    row = await connection.fetchrow("SELECT current_database(), current_schema()")
    database, schema = (row[0], row[1]) if row is not None else (None, None)
    if schema is None:
        raise StorageError(
            f"PostgreSQL database '{database}' has no schema in the search_path: "
            "create the schema, or name an existing one with ?search_path= in the URL"
        )
    return f"PostgreSQL database '{database}' schema '{schema}'"


async def _lock(
    connection: asyncpg.Connection[asyncpg.Record], schema: str, where: str, timeout: float
) -> None:
    # lock_timeout (milliseconds, where 0 means no limit) bounds the wait of
    # pg_advisory_lock. It is reset so that the migrations themselves wait for
    # table locks as long as they need.
    try:
        await connection.execute(f"SET lock_timeout = {max(1, round(timeout * 1000))}")
        try:
            await connection.execute(
                "SELECT pg_advisory_lock($1, hashtext($2))", LOCK_CLASS, schema
            )
        finally:
            await connection.execute("RESET lock_timeout")
    except asyncpg.LockNotAvailableError as exc:
        raise StorageError(
            f"waited {timeout} s for another '{MIGRATE_COMMAND}' on {where} to finish: "
            "try again when it has finished"
        ) from exc
    except DRIVER_ERRORS as exc:
        raise StorageError(f"locking {where} for migration failed: {exc}") from exc


async def _unlock(connection: asyncpg.Connection[asyncpg.Record], schema: str) -> None:
    # Closing the connection releases the lock too, so a failure here loses nothing.
    try:
        await connection.execute("SELECT pg_advisory_unlock($1, hashtext($2))", LOCK_CLASS, schema)
    except DRIVER_ERRORS:
        logger.warning("releasing the migration lock failed; closing the connection releases it")


async def _apply(
    connection: asyncpg.Connection[asyncpg.Record], migration: Migration, where: str
) -> None:
    try:
        async with connection.transaction():
            # Without arguments, execute() sends the file as one simple query,
            # which may hold several statements.
            await connection.execute(migration.sql)
            await connection.execute(
                f"INSERT INTO {VERSION_TABLE} (version, file_name) VALUES ($1, $2)",
                migration.version,
                migration.file_name,
            )
    except DRIVER_ERRORS as exc:
        raise StorageError(
            f"migration {migration.file_name} failed on {where}: {exc}; the schema stays "
            f"at version {migration.version - 1}"
        ) from exc
