"""Command line: ``talkjs-components demo``, ``serve``, ``migrate`` and ``apps create``.

Exit statuses: 0 on success; 1 when ``serve`` stopped because uvicorn could
not start, or ``migrate`` failed on the database; 2 for invalid options or
configuration, and for a database or broker that ``serve`` cannot use at start.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .demo.app import DemoApp

__all__ = ["GRACEFUL_SHUTDOWN_TIMEOUT", "main"]

logger = logging.getLogger("talkjs_components.cli")

GRACEFUL_SHUTDOWN_TIMEOUT = 30
"""Seconds ``serve`` waits for requests in flight after SIGINT or SIGTERM before it cancels them."""

_LOG_LEVELS = ["debug", "info", "warning", "error"]
_DEMO_DATA = "talkjs-demo.sqlite3"
_LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="talkjs-components",
        description="Chat components for ReactPy, and the chat backend behind them.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    demo = commands.add_parser(
        "demo",
        help="run the demo chat app on the embedded backend or a chat server",
        description=(
            "Run the demo chat app: sign in as alice, bob or carol and chat. With --server, "
            "the demo uses that chat server instead of its own SQLite file; the server must "
            "serve app 'demo', and TALKJS_SECRET_KEY must hold that app's secret key."
        ),
    )
    demo.add_argument(
        "--host", default="127.0.0.1", help="interface to listen on (default: %(default)s)"
    )
    demo.add_argument(
        "--port", type=int, default=8000, help="TCP port to listen on (default: %(default)s)"
    )
    demo.add_argument(
        "--data",
        help=(
            f"path of the SQLite file holding the demo's data (default: {_DEMO_DATA}); "
            "not used with --server"
        ),
    )
    demo.add_argument(
        "--server",
        metavar="URL",
        help=(
            "URL of a chat server (talkjs-components serve) to use instead of the embedded "
            "backend, such as http://127.0.0.1:8080 (default: $TALKJS_SERVER_URL, else the "
            "embedded backend)"
        ),
    )
    demo.add_argument(
        "--log-level",
        default="info",
        choices=_LOG_LEVELS,
        help="logging level (default: %(default)s)",
    )
    _add_serve_parser(commands)
    _add_migrate_parser(commands)
    _add_apps_parser(commands)
    return parser


def _add_serve_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    serve = commands.add_parser(
        "serve",
        help="run the standalone chat server (REST API v1 and realtime endpoint) for the apps",
        description=(
            "Run the chat server for the apps of the config file and of the environment "
            "(TALKJS_APPS, or TALKJS_APP_ID with TALKJS_SECRET_KEY). SIGINT or SIGTERM stops "
            f"it after the requests in flight finish, waiting up to {GRACEFUL_SHUTDOWN_TIMEOUT} s. "
            "Exit status: 0 after a stop, 1 when uvicorn could not start, 2 for invalid options "
            "or configuration and for a database or broker that cannot be used (an outdated "
            "schema: run 'talkjs-components migrate')."
        ),
    )
    serve.add_argument(
        "--host", default="127.0.0.1", help="interface to listen on (default: %(default)s)"
    )
    serve.add_argument(
        "--port", type=int, default=8080, help="TCP port to listen on (default: %(default)s)"
    )
    serve.add_argument(
        "--database",
        metavar="PATH_OR_URL",
        help=(
            "database of every app: a SQLite file as a path or a sqlite:///PATH URL, or a "
            "postgresql://USER:PASSWORD@HOST:PORT/DATABASE URL that several server nodes share "
            "(default: the config file's 'database', else talkjs-server.sqlite3)"
        ),
    )
    serve.add_argument(
        "--broker",
        metavar="URL",
        help=(
            "broker that carries chat events between server processes: memory:// for one "
            "process, or redis://HOST:6379/0 for several nodes (default: $TALKJS_BROKER_URL, "
            "else the config file's 'broker', else memory://)"
        ),
    )
    serve.add_argument(
        "--config",
        help=(
            "TOML config file with the apps, limits, database and broker "
            "(default: talkjs-server.toml, if present)"
        ),
    )
    serve.add_argument(
        "--log-level",
        default="info",
        choices=_LOG_LEVELS,
        help="logging level (default: %(default)s)",
    )
    serve.add_argument(
        "--access-log", action="store_true", help="log every HTTP request (default: off)"
    )


def _add_migrate_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    migrate = commands.add_parser(
        "migrate",
        help="upgrade the database schema to this version of talkjs-components",
        description=(
            "Upgrade the database schema to the version this talkjs-components needs. "
            "PostgreSQL: applies the pending migrations, each in its own transaction; run it "
            "before starting servers of a new version, because they refuse an older schema. "
            "SQLite: opens and closes the file, which upgrades it (serve does the same at "
            "start); a missing file is not created. Running it again changes nothing. Exit "
            "status: 0 when the schema is current, 1 when the database failed, 2 for invalid "
            "options."
        ),
    )
    migrate.add_argument(
        "--database",
        metavar="PATH_OR_URL",
        help=(
            "the database: a SQLite file path, sqlite:///PATH, or postgresql://... with "
            "?search_path=SCHEMA to pick a schema (default: the config file's 'database', "
            "else talkjs-server.sqlite3)"
        ),
    )
    migrate.add_argument(
        "--config",
        help="TOML config file to read 'database' from (default: talkjs-server.toml, if present)",
    )


def _add_apps_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    apps = commands.add_parser(
        "apps",
        help="manage the apps in the server's config file",
        description="Manage the apps in the server's config file.",
    )
    apps_commands = apps.add_subparsers(dest="apps_command", required=True, metavar="COMMAND")
    create = apps_commands.add_parser(
        "create",
        help="add an app with a new secret key to the config file and print the key",
        description=(
            "Add an app with a new secret key to the config file (created with mode 0600 "
            "when missing), and print the key. The key is printed only this once."
        ),
    )
    create.add_argument(
        "--config",
        default="talkjs-server.toml",
        help="TOML config file to add the app to (default: %(default)s)",
    )
    create.add_argument("--id", help="the new app's id (default: a random 'app_...' id)")


def _port_is_free(host: str, port: int) -> bool:
    """Return whether a server could listen on ``host``:``port`` right now."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def _run_demo(arguments: argparse.Namespace) -> int:
    try:
        import uvicorn

        from .demo.seed import load_dialogue_lines

        load_dialogue_lines("english", "greetings", 1)
    except RuntimeError as exc:
        print(f"talkjs-components demo: {exc}", file=sys.stderr)
        return 2
    if not 0 < arguments.port < 65536:
        print(
            f"talkjs-components demo: invalid --port {arguments.port}: use 1 to 65535",
            file=sys.stderr,
        )
        return 2
    if arguments.host not in ("127.0.0.1", "localhost", "::1"):
        print(
            f"talkjs-components demo: warning: listening on {arguments.host}; the demo signs in "
            "anyone who types a user name, so every chat is open to whoever can reach it",
            file=sys.stderr,
        )
    if not _port_is_free(arguments.host, arguments.port):
        print(
            f"talkjs-components demo: port {arguments.port} on {arguments.host} is in use: "
            "stop the other server or pass --port with a free port",
            file=sys.stderr,
        )
        return 2
    try:
        app = _demo_app(arguments)
    except ValueError as exc:
        print(f"talkjs-components demo: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=arguments.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    print(f"talkjs-components demo: open http://{arguments.host}:{arguments.port}/ ", flush=True)
    uvicorn.run(app, host=arguments.host, port=arguments.port, log_level=arguments.log_level)
    return 0


def _demo_app(arguments: argparse.Namespace) -> DemoApp:
    """Build the demo app on the embedded backend, or on the chat server of ``--server``.

    Raises:
        ValueError: The options conflict, or the secret key for the server is missing.
    """
    from . import embedded
    from .demo.app import create_app
    from .server.config import SECRET_KEY_VARIABLE

    server_url = arguments.server or os.environ.get(embedded.SERVER_URL_VARIABLE)
    if not server_url:
        return create_app(arguments.data or _DEMO_DATA, server_url="")
    if arguments.data is not None:
        raise ValueError(
            "--data and --server exclude each other: with a chat server, the server keeps the data"
        )
    secret_key = os.environ.get(SECRET_KEY_VARIABLE)
    if not secret_key:
        raise ValueError(
            f"with --server, set {SECRET_KEY_VARIABLE} to the secret key of app 'demo' on the "
            "server (the demo signs user tokens and REST calls with it), for example from "
            "'talkjs-components apps create --id demo'"
        )
    # InvalidInput is a ValueError: an invalid URL is reported like the other option errors.
    embedded.normalize_server_url(server_url)
    return create_app(server_url=server_url, secret_key=secret_key)


def _run_serve(arguments: argparse.Namespace) -> int:
    import uvicorn

    from .broker.urls import broker_from_url
    from .errors import ChatError, InvalidInput
    from .server import create_app, load_server_config
    from .server.config import describe_database, redact_url
    from .server.hosting import check_backends
    from .server.realtime import DrainingServer

    logging.basicConfig(level=arguments.log_level.upper(), format=_LOG_FORMAT)
    if not 0 < arguments.port < 65536:
        print(
            f"talkjs-components serve: invalid --port {arguments.port}: use 1 to 65535",
            file=sys.stderr,
        )
        return 2
    try:
        config = load_server_config(
            Path(arguments.config) if arguments.config else None,
            database=arguments.database,
            broker=arguments.broker,
        )
        app = create_app(config)
    except InvalidInput as exc:
        print(f"talkjs-components serve: {exc.message}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as exc:
        print(f"talkjs-components serve: {exc}", file=sys.stderr)
        return 2
    if not _port_is_free(arguments.host, arguments.port):
        print(
            f"talkjs-components serve: port {arguments.port} on {arguments.host} is in use: "
            "stop the other server or pass --port with a free port",
            file=sys.stderr,
        )
        return 2
    # Opening the database and the broker here, before uvicorn, reports an
    # outdated schema or an unreachable service as one line and exit status
    # 2. The same failure in the app's lifespan would print a traceback.
    try:
        asyncio.run(
            check_backends(
                config.database,
                config.apps[0].app_id,
                broker_from_url(config.broker, prefix=config.broker_prefix),
            )
        )
    except ChatError as exc:
        print(f"talkjs-components serve: {exc.message}", file=sys.stderr)
        return 2
    except ValueError as exc:
        # asyncpg and redis-py raise a plain ValueError for some malformed
        # URLs, such as a port that is not a number.
        print(
            f"talkjs-components serve: database {describe_database(config.database)} or broker "
            f"{redact_url(config.broker)} is invalid ({exc}): correct the URL",
            file=sys.stderr,
        )
        return 2

    # DrainingServer closes realtime connections with 1001 after their requests
    # in flight, before uvicorn's own shutdown would close them with 1012.
    server = DrainingServer(
        uvicorn.Config(
            app,
            host=arguments.host,
            port=arguments.port,
            log_level=arguments.log_level,
            access_log=arguments.access_log,
            lifespan="on",
            timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_TIMEOUT,
        ),
        app.state.realtime,
    )
    logger.info(
        "server starting on http://%s:%d with database %s and broker %s; "
        "realtime permessage-deflate %s",
        arguments.host,
        arguments.port,
        describe_database(config.database),
        redact_url(config.broker),
        "on" if config.realtime.per_message_deflate else "off",
    )
    with _stop_signals_end_quietly():
        server.run()
    if not server.started:
        logger.error("server did not start; the errors above say why")
        return 1
    logger.info("server stopped")
    return 0


def _run_migrate(arguments: argparse.Namespace) -> int:
    from .errors import StorageError
    from .server.config import ConfigError, load_database_setting, redact_url

    logging.basicConfig(level=logging.WARNING, format=_LOG_FORMAT)
    try:
        database = load_database_setting(
            Path(arguments.config) if arguments.config else None, database=arguments.database
        )
    except ConfigError as exc:
        print(f"talkjs-components migrate: {exc.message}", file=sys.stderr)
        return 2
    if isinstance(database, Path):
        return _migrate_sqlite(database)
    try:
        from .store.postgres import migrate
    except ModuleNotFoundError as exc:
        print(
            f"talkjs-components migrate: a PostgreSQL URL needs the asyncpg package ({exc}): "
            "install talkjs-components[postgres]",
            file=sys.stderr,
        )
        return 2
    try:
        before, after = asyncio.run(migrate(database))
    except StorageError as exc:
        print(f"talkjs-components migrate: {exc.message}", file=sys.stderr)
        return 1
    except ValueError as exc:
        # asyncpg raises a plain ValueError for some malformed URLs, such as
        # a port that is not a number.
        print(
            f"talkjs-components migrate: database {redact_url(database)} is invalid ({exc}): "
            "correct the URL",
            file=sys.stderr,
        )
        return 2
    _print_migration(f"PostgreSQL {redact_url(database)}", before, after)
    return 0


def _migrate_sqlite(path: Path) -> int:
    """Upgrade a SQLite file by opening and closing it; a missing file is left missing."""
    import sqlite3

    from .errors import StorageError
    from .store.sqlite import SCHEMA_VERSION, SQLiteStore

    if not path.exists():
        print(
            f"SQLite file {path} does not exist: 'talkjs-components serve' creates it at schema "
            f"version {SCHEMA_VERSION}, so there is nothing to migrate"
        )
        return 0
    try:
        # The store keeps its schema version in PRAGMA user_version.
        with contextlib.closing(
            sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True)
        ) as connection:
            before: int = connection.execute("PRAGMA user_version").fetchone()[0]
    except sqlite3.Error as exc:
        print(
            f"talkjs-components migrate: reading SQLite file {path} failed: {exc}", file=sys.stderr
        )
        return 1

    async def open_and_close() -> None:
        store = SQLiteStore(path, "talkjs-migrate")
        await store.open()
        await store.close()

    try:
        asyncio.run(open_and_close())
    except StorageError as exc:
        print(f"talkjs-components migrate: {exc.message}", file=sys.stderr)
        return 1
    _print_migration(f"SQLite file {path}", before, SCHEMA_VERSION)
    return 0


def _print_migration(where: str, before: int, after: int) -> None:
    if before == after:
        print(f"{where}: already at version {after}")
    else:
        print(f"{where}: schema version {before} -> {after}")


@contextlib.contextmanager
def _stop_signals_end_quietly() -> Iterator[None]:
    """Make SIGINT and SIGTERM do nothing once uvicorn has shut down.

    uvicorn handles both signals itself, and after its graceful shutdown it
    raises the signal again under the handler that was installed before it
    started. With the default handlers that would end the process with
    KeyboardInterrupt or a SIGTERM status instead of exit status 0.
    """

    def ignore(signal_number: int, frame: FrameType | None) -> None:
        pass

    stop_signals = (signal.SIGINT, signal.SIGTERM)
    previous = {number: signal.signal(number, ignore) for number in stop_signals}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def _run_apps_create(arguments: argparse.Namespace) -> int:
    from .server import ConfigError, add_app

    path = Path(arguments.config)
    try:
        app_id, secret_key = add_app(path, arguments.id)
    except ConfigError as exc:
        print(f"talkjs-components apps create: {exc.message}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"talkjs-components apps create: cannot write {path}: {exc}", file=sys.stderr)
        return 2
    print(f"Created app {app_id!r} in {path}.")
    print("Its secret key, shown only now (the config file keeps it, readable by you only):")
    print(secret_key)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (default: ``sys.argv[1:]``); return the exit status."""
    arguments = _parser().parse_args(argv)
    if arguments.command == "demo":
        return _run_demo(arguments)
    if arguments.command == "serve":
        return _run_serve(arguments)
    if arguments.command == "migrate":
        return _run_migrate(arguments)
    if arguments.command == "apps" and arguments.apps_command == "create":
        return _run_apps_create(arguments)
    raise AssertionError(f"unhandled command {arguments.command!r}")


if __name__ == "__main__":
    sys.exit(main())
