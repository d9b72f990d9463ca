"""Choose a store implementation from a database URL.

==========================================  ==============================
URL                                         Store
==========================================  ==============================
``chat.sqlite3``, ``/var/lib/chat.sqlite3`` ``SQLiteStore`` on that file
``sqlite:///chat.sqlite3``                  ``SQLiteStore``, relative path
``sqlite:////var/lib/chat.sqlite3``         ``SQLiteStore``, absolute path
``postgresql://user@host:5432/database``    ``PostgresStore`` (also ``postgres://``)
==========================================  ==============================

The ``sqlite:`` form follows SQLAlchemy's convention: three slashes and a
relative path, or four slashes for an absolute one.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING
from urllib.parse import unquote

from ..errors import InvalidInput
from . import Store
from .sqlite import SQLiteStore

if TYPE_CHECKING:
    from .postgres import PostgresStore

__all__ = ["is_postgres_url", "store_from_url"]

_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://")

_POSTGRES_SCHEMES = ("postgresql", "postgres")


def is_postgres_url(url: str) -> bool:
    """Return whether ``url`` names a PostgreSQL database (``postgresql://`` or ``postgres://``)."""
    match = _SCHEME.match(url)
    return match is not None and match[1].lower() in _POSTGRES_SCHEMES


def store_from_url(url: str, app_id: str) -> Store:
    """Create the store that ``url`` names, for ``app_id``; the caller opens it.

    A value without ``scheme://`` is a path to an SQLite file.

    Raises:
        InvalidInput: the URL has another scheme, or an ``sqlite:`` URL has no path.
        ModuleNotFoundError: a PostgreSQL URL, without asyncpg installed.
    """
    match = _SCHEME.match(url)
    if match is None:
        return SQLiteStore(url, app_id)
    scheme = match[1].lower()
    if scheme in _POSTGRES_SCHEMES:
        return _postgres_store(url, app_id)
    if scheme == "sqlite":
        path = unquote(url[match.end() :])
        if not path.startswith("/") or path == "/":
            raise InvalidInput(
                f"SQLite URL '{url}' has no file path: use sqlite:///relative/path.sqlite3 "
                "or sqlite:////absolute/path.sqlite3"
            )
        return SQLiteStore(path[1:], app_id)
    raise InvalidInput(
        f"database URL scheme '{match[1]}' is not supported: use a file path or "
        "sqlite:///path for SQLite, or postgresql://user@host:port/database for PostgreSQL"
    )


def _postgres_store(url: str, app_id: str) -> PostgresStore:
    # Imported here so that SQLite users need not install asyncpg (the
    # "postgres" extra).
    try:
        from .postgres import PostgresStore
    except ModuleNotFoundError as exc:
        raise ModuleNotFoundError(
            f"a PostgreSQL URL needs the asyncpg package, which is not installed ({exc}): "
            "install talkjs-components[postgres]"
        ) from exc
    return PostgresStore(url, app_id)
