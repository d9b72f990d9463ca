"""The ``serve``, ``migrate`` and ``apps create`` commands, the server run as a real process."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sqlite3
import stat
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
import pytest
import websockets

from talkjs_components.auth import MIN_SECRET_KEY_LENGTH
from talkjs_components.cli import main
from talkjs_components.server.config import load_server_config
from talkjs_components.store.postgres import SCHEMA_VERSION as POSTGRES_SCHEMA_VERSION
from talkjs_components.store.sqlite import SCHEMA_VERSION as SQLITE_SCHEMA_VERSION

from .server_process import free_port, serving_process

SOCKET_TIMEOUT = 10.0
"""Seconds a raw-socket read or connect may take before the test fails."""


def create_app_with_cli(
    config: Path, capsys: pytest.CaptureFixture[str], app_id: str | None = None
) -> tuple[str, str]:
    """Run ``apps create`` and return the app id and the printed secret key."""
    arguments = ["apps", "create", "--config", str(config)]
    if app_id is not None:
        arguments += ["--id", app_id]
    assert main(arguments) == 0
    output = capsys.readouterr().out.strip().splitlines()
    created = output[0]
    assert created.startswith("Created app '")
    return created.split("'")[1], output[-1]


# apps create


def test_apps_create_writes_private_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "server.toml"
    app_id, secret_key = create_app_with_cli(config, capsys, "my-app")

    assert app_id == "my-app"
    assert len(secret_key) >= MIN_SECRET_KEY_LENGTH
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    loaded = load_server_config(config, environ={})
    assert [(app.app_id, app.secret_key) for app in loaded.apps] == [("my-app", secret_key)]


def test_apps_create_appends_and_keeps_comments(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "server.toml"
    config.write_text('# my notes\ndatabase = "chat.sqlite3"\n')
    first_id, first_key = create_app_with_cli(config, capsys)
    second_id, second_key = create_app_with_cli(config, capsys)

    assert first_id.startswith("app_")
    assert first_id != second_id
    assert first_key != second_key
    assert config.read_text().startswith("# my notes\n")
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    loaded = load_server_config(config, environ={})
    assert [app.app_id for app in loaded.apps] == [first_id, second_id]
    assert loaded.database == Path("chat.sqlite3")


def test_apps_create_rejects_duplicate_id(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "server.toml"
    create_app_with_cli(config, capsys, "twice")
    before = config.read_text()

    assert main(["apps", "create", "--config", str(config), "--id", "twice"]) == 2
    assert "already has app 'twice'" in capsys.readouterr().err
    assert config.read_text() == before


@pytest.mark.parametrize("app_id", ["has space", "has/slash", ""])
def test_apps_create_rejects_bad_id(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], app_id: str
) -> None:
    config = tmp_path / "server.toml"
    assert main(["apps", "create", "--config", str(config), "--id", app_id]) == 2
    assert f"--id: app id {app_id!r} is invalid" in capsys.readouterr().err
    assert not config.exists()


def test_apps_create_rejects_broken_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "server.toml"
    config.write_text("[[apps]\n")
    assert main(["apps", "create", "--config", str(config)]) == 2
    assert "not valid TOML" in capsys.readouterr().err
    assert config.read_text() == "[[apps]\n"


# serve: errors before the server starts


def test_serve_without_apps_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TALKJS_APPS", raising=False)
    monkeypatch.delenv("TALKJS_APP_ID", raising=False)
    monkeypatch.delenv("TALKJS_SECRET_KEY", raising=False)
    monkeypatch.chdir(tmp_path)
    assert main(["serve", "--port", str(free_port())]) == 2
    assert "no app is configured" in capsys.readouterr().err


def test_serve_missing_config_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "missing.toml"
    assert main(["serve", "--config", str(missing)]) == 2
    assert "cannot read config file" in capsys.readouterr().err


def test_serve_rejects_unknown_database(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TALKJS_APPS", json.dumps({"a": "sk_" + "k" * 40}))
    monkeypatch.chdir(tmp_path)
    assert main(["serve", "--database", "mysql://root:hunter2@localhost/chat"]) == 2
    error = capsys.readouterr().err
    assert "database 'mysql://root:***@localhost/chat' is not supported" in error
    assert "postgresql://" in error
    assert "hunter2" not in error


def test_serve_reports_bad_database_before_apps(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # No app anywhere: the unsupported URL is still the error reported.
    monkeypatch.delenv("TALKJS_APPS", raising=False)
    monkeypatch.delenv("TALKJS_APP_ID", raising=False)
    monkeypatch.delenv("TALKJS_SECRET_KEY", raising=False)
    monkeypatch.chdir(tmp_path)
    assert main(["serve", "--database", "mysql://localhost/chat"]) == 2
    error = capsys.readouterr().err
    assert "database 'mysql://localhost/chat' is not supported" in error
    assert "no app is configured" not in error


def test_serve_rejects_unknown_broker(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TALKJS_APPS", json.dumps({"a": "sk_" + "k" * 40}))
    monkeypatch.chdir(tmp_path)
    assert main(["serve", "--broker", "amqp://guest:hunter2@localhost"]) == 2
    error = capsys.readouterr().err
    assert "broker 'amqp://guest:***@localhost' is not supported" in error
    assert "hunter2" not in error


def test_serve_unreachable_broker_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TALKJS_APPS", json.dumps({"a": "sk_" + "k" * 40}))
    monkeypatch.chdir(tmp_path)
    # Nothing listens on a free port, so the connection is refused at once.
    broker = f"redis://:hunter2@127.0.0.1:{free_port()}/0"
    assert main(["serve", "--port", str(free_port()), "--broker", broker]) == 2
    error = capsys.readouterr().err
    assert "cannot connect to redis://:***@127.0.0.1" in error
    assert "hunter2" not in error
    assert "Traceback" not in error


def _serve_in_thread(arguments: list[str]) -> asyncio.Future[int]:
    """Run ``main(arguments)`` on a worker thread, whose own event loop cannot meet the test's."""
    return asyncio.ensure_future(asyncio.to_thread(main, arguments))


async def test_serve_outdated_schema_exits_2(
    empty_postgres_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    environment = {"TALKJS_APPS": json.dumps({"a": "sk_" + "k" * 40})}
    with pytest.MonkeyPatch.context() as patch:
        for name, value in environment.items():
            patch.setenv(name, value)
        patch.chdir(tmp_path)
        status = await _serve_in_thread(
            ["serve", "--port", str(free_port()), "--database", empty_postgres_url]
        )
    error = capsys.readouterr().err

    assert status == 2
    assert (
        f"has schema version 0, but this version of talkjs-components needs schema "
        f"version {POSTGRES_SCHEMA_VERSION}" in error
    )
    assert "run 'talkjs-components migrate' with the same database URL" in error
    assert "Traceback" not in error


async def test_serve_newer_schema_exits_2(
    postgres_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    connection = await asyncpg.connect(postgres_url)
    try:
        await connection.execute(
            "INSERT INTO talkjs_schema_migrations (version, file_name) VALUES (99, 'future.sql')"
        )
    finally:
        await connection.close()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TALKJS_APPS", json.dumps({"a": "sk_" + "k" * 40}))
        patch.chdir(tmp_path)
        status = await _serve_in_thread(
            ["serve", "--port", str(free_port()), "--database", postgres_url]
        )
    error = capsys.readouterr().err

    assert status == 2
    assert "has schema version 99" in error
    assert f"supports schema version {POSTGRES_SCHEMA_VERSION} only" in error
    assert "Traceback" not in error


def _with_password(url: str, password: str) -> tuple[str, str]:
    """Return ``url`` with a password, and the password to look for in logs.

    A URL that has one keeps it. Otherwise ``password`` is added, which a
    server that trusts local connections ignores.
    """
    parts = urlsplit(url)
    if parts.password is not None:
        return url, parts.password
    host = parts.netloc.rpartition("@")[2]
    netloc = f"{parts.username or 'postgres'}:{password}@{host}"
    return urlunsplit(parts._replace(netloc=netloc)), password


async def test_serve_on_postgres_hides_password(postgres_url: str, tmp_path: Path) -> None:
    database, password = _with_password(postgres_url, "hunter2-not-logged")
    key = "sk_" + "k" * 40
    with serving_process(tmp_path, {"pg": key}, database=database, log_level="info") as server:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=SOCKET_TIMEOUT) as client:
            headers = {"Authorization": f"Bearer {key}"}
            written = await client.put(
                "/v1/pg/users/alice", json={"name": "Alice"}, headers=headers
            )
            read = await client.get("/v1/pg/users/alice", headers=headers)
            health = await client.get("/health")
        server.process.send_signal(2)  # SIGINT
        assert server.process.wait(SOCKET_TIMEOUT) == 0
    output = server.output()

    assert written.status_code == 200
    assert read.json()["name"] == "Alice"
    assert health.json() == {"status": "ok"}
    assert ":***@" in output
    assert password not in output
    assert "Traceback" not in output
    connection = await asyncpg.connect(postgres_url)
    try:
        stored = await connection.fetchval("SELECT name FROM users WHERE id = 'alice'")
    finally:
        await connection.close()
    assert stored == "Alice"


@pytest.mark.parametrize(
    ("config_text", "deflate"),
    [("", False), ("[realtime]\nper_message_deflate = true\n", True)],
    ids=["default-off", "on"],
)
async def test_serve_applies_per_message_deflate(
    tmp_path: Path, config_text: str, deflate: bool
) -> None:
    key = "sk_" + "d" * 40
    with serving_process(tmp_path, {"defl": key}, config_text=config_text) as server:
        url = server.base_url.replace("http://", "ws://", 1) + "/v1/defl/realtime"
        async with websockets.connect(url, open_timeout=SOCKET_TIMEOUT) as websocket:
            assert websocket.response is not None
            extensions = websocket.response.headers.get("Sec-WebSocket-Extensions", "")

    assert ("permessage-deflate" in extensions) is deflate


# migrate


async def test_migrate_postgres_then_nothing(
    empty_postgres_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    first = await asyncio.to_thread(main, ["migrate", "--database", empty_postgres_url])
    first_output = capsys.readouterr().out
    second = await asyncio.to_thread(main, ["migrate", "--database", empty_postgres_url])
    second_output = capsys.readouterr().out

    assert first == 0
    assert f"schema version 0 -> {POSTGRES_SCHEMA_VERSION}" in first_output
    assert second == 0
    assert f"already at version {POSTGRES_SCHEMA_VERSION}" in second_output


async def test_migrate_reads_config_file(
    empty_postgres_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "server.toml"
    config.write_text(f"database = {json.dumps(empty_postgres_url)}\n")
    config.chmod(0o600)
    status = await asyncio.to_thread(main, ["migrate", "--config", str(config)])

    assert status == 0
    assert f"schema version 0 -> {POSTGRES_SCHEMA_VERSION}" in capsys.readouterr().out


def test_migrate_unreachable_postgres_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    url = f"postgresql://postgres:hunter2@127.0.0.1:{free_port()}/test"
    assert main(["migrate", "--database", url]) == 1
    error = capsys.readouterr().err
    assert "connecting to PostgreSQL at postgresql://postgres:***@127.0.0.1" in error
    assert "hunter2" not in error


def test_migrate_bad_port_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["migrate", "--database", "postgresql://u:hunter2@127.0.0.1:abc/db"]) == 2
    error = capsys.readouterr().err
    assert "database postgresql://*** is invalid" in error
    assert "hunter2" not in error
    assert "Traceback" not in error


def test_migrate_rejects_unknown_database(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["migrate", "--database", "mysql://localhost/chat"]) == 2
    assert "database 'mysql://localhost/chat' is not supported" in capsys.readouterr().err


def test_migrate_sqlite_upgrades_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    database = tmp_path / "chat.sqlite3"
    # An empty file is an SQLite database of schema version 0.
    database.touch()
    first = main(["migrate", "--database", f"sqlite:///{database}"])
    first_output = capsys.readouterr().out
    second = main(["migrate", "--database", str(database)])
    second_output = capsys.readouterr().out

    assert first == 0
    assert f"SQLite file {database}: schema version 0 -> {SQLITE_SCHEMA_VERSION}" in first_output
    assert second == 0
    assert f"already at version {SQLITE_SCHEMA_VERSION}" in second_output
    with sqlite3.connect(database) as stored:
        version = stored.execute("PRAGMA user_version").fetchone()[0]
    stored.close()
    assert version == SQLITE_SCHEMA_VERSION


def test_migrate_missing_sqlite_creates_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    database = tmp_path / "missing.sqlite3"
    assert main(["migrate", "--database", str(database)]) == 0
    assert "does not exist" in capsys.readouterr().out
    assert not database.exists()


def test_migrate_newer_sqlite_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    database = tmp_path / "future.sqlite3"
    with sqlite3.connect(database) as future:
        future.execute("PRAGMA user_version = 99")
    future.close()
    assert main(["migrate", "--database", str(database)]) == 1
    assert "has schema version 99" in capsys.readouterr().err


def test_serve_port_in_use_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TALKJS_APPS", json.dumps({"a": "sk_" + "k" * 40}))
    monkeypatch.chdir(tmp_path)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["serve", "--port", str(port)]) == 2
    assert "is in use" in capsys.readouterr().err


# serve: a real process


def read_until(connection: socket.socket, marker: bytes) -> bytes:
    """Read from ``connection`` until ``marker`` arrives or the peer closes."""
    received = b""
    while marker not in received:
        chunk = connection.recv(65536)
        if not chunk:
            break
        received += chunk
    return received


def wait_until_refused(port: int) -> None:
    """Wait until nothing accepts connections on ``port``: the server stopped listening."""
    deadline = time.monotonic() + SOCKET_TIMEOUT
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                pass
        except ConnectionRefusedError:
            return
        time.sleep(0.05)
    raise TimeoutError(f"port {port} still accepted connections after {SOCKET_TIMEOUT} s")


def test_sigint_finishes_request_in_flight(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "server.toml"
    app_id, secret_key = create_app_with_cli(config, capsys, "graceful")
    database = tmp_path / "chat.sqlite3"
    port = free_port()
    log = tmp_path / "server.log"
    command = [
        sys.executable, "-m", "talkjs_components.cli", "serve", "--port", str(port),
        "--config", str(config), "--database", f"sqlite:///{database}", "--log-level", "info",
    ]  # fmt: skip
    environment = {**os.environ, "PYTHONUNBUFFERED": "1"}
    for name in ("TALKJS_APPS", "TALKJS_APP_ID", "TALKJS_SECRET_KEY"):
        environment.pop(name, None)
    with log.open("ab") as log_file:
        process = subprocess.Popen(
            command, stdout=log_file, stderr=subprocess.STDOUT, env=environment
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, log.read_text()
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.1)

        body = json.dumps({"name": "Finished after SIGINT"}).encode()
        head = (
            f"PUT /v1/{app_id}/users/alice HTTP/1.1\r\n"
            f"Host: 127.0.0.1:{port}\r\n"
            f"Authorization: Bearer {secret_key}\r\n"
            "Content-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n"
            "Expect: 100-continue\r\n\r\n"
        ).encode()
        with socket.create_connection(("127.0.0.1", port), timeout=SOCKET_TIMEOUT) as request:
            request.sendall(head)
            # uvicorn sends 100 Continue when the endpoint starts reading the
            # body, so from here on the request is in flight.
            assert read_until(request, b"\r\n\r\n").startswith(b"HTTP/1.1 100 Continue")

            process.send_signal(2)  # SIGINT
            wait_until_refused(port)
            assert process.poll() is None, "the server exited with a request in flight"

            request.sendall(body)
            response = read_until(request, b"\r\n\r\n{}")
        assert response.startswith(b"HTTP/1.1 200 OK"), response
        assert process.wait(SOCKET_TIMEOUT) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()

    with sqlite3.connect(database) as stored:
        row = stored.execute(
            "SELECT name FROM users WHERE app_id = ? AND id = ?", (app_id, "alice")
        ).fetchone()
    assert row == ("Finished after SIGINT",)
    output = log.read_text()
    assert "Shutting down" in output
    assert "server stopped" in output
    assert secret_key not in output
    assert "Traceback" not in output
