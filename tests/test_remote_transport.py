"""TalkSession over WebSocketTransport to a chat server on 127.0.0.1: faults and selection.

The session tests of test_session.py run on this transport too. These tests
cover what only a network connection has: sockets that die without a close
frame, sends in flight at that moment, frames over the websockets default
size and an unreachable server. They also cover how an app picks the server.
"""

from __future__ import annotations

import asyncio
import secrets
import sqlite3
from pathlib import Path

import pytest
from websockets.asyncio.server import ServerConnection
from websockets.asyncio.server import serve as serve_websocket

from talkjs_components import cli, embedded
from talkjs_components.auth import App, create_user_token
from talkjs_components.errors import ChatError, ConnectionRejected, InvalidInput
from talkjs_components.models import ChatEvent, Participation, UnreadsSnapshot, User
from talkjs_components.protocol import (
    PROTOCOL_VERSION,
    SUPPORTED_VERSIONS,
    HelloReceived,
    ServerProtocol,
)
from talkjs_components.service import TRUSTED
from talkjs_components.session import Backoff, SessionStatus, TalkSession, WebSocketTransport
from talkjs_components.session.transport import Credentials
from talkjs_components.session.websocket_transport import realtime_url

from .conftest import SECRET_KEY
from .demo_server import free_port
from .remote_backend import ChatBackend, RemoteBackend
from .waiting import wait_until

TIMEOUT = 10.0
"""Seconds any single wait in these tests may take before the test fails."""

FAST_RETRIES = Backoff(initial=0.05, maximum=0.2, jitter=0)


def _session(
    backend: ChatBackend, user_id: str, transport: WebSocketTransport | None = None
) -> TalkSession:
    return TalkSession(
        backend.app.app_id,
        user_id,
        token=create_user_token(backend.app, user_id),
        transport=transport,
        retry_backoff=FAST_RETRIES,
    )


def _abort(transport: WebSocketTransport) -> None:
    """Drop the transport's TCP connection at once, without a websocket close frame."""
    websocket = transport.websocket
    assert websocket is not None, "the transport is not connected"
    websocket.transport.abort()


async def test_abort_mid_stream_loses_and_doubles_nothing(server_backend: RemoteBackend) -> None:
    transport = WebSocketTransport(server_backend.server_url)
    alice = _session(server_backend, "alice", transport)
    received: list[str] = []
    statuses: list[SessionStatus] = []
    alice.on_message(lambda message: received.append(message.body))
    alice.on_status_change(statuses.append)
    bob = _session(server_backend, "bob")
    await asyncio.gather(alice.wait_ready(), bob.wait_ready())
    total = 60
    aborted = asyncio.Event()

    async def stream() -> None:
        for number in range(total):
            if number == total // 2:
                # The second half is sent after alice's socket died.
                await aborted.wait()
            await bob.send_message("group", f"m{number}")

    sender = asyncio.create_task(stream())
    try:
        await wait_until(lambda: len(received) >= 10, TIMEOUT, "the first messages")
        _abort(transport)
        aborted.set()
        async with asyncio.timeout(TIMEOUT):
            await sender
        await bob.send_message("group", "marker")
        # Events arrive in order, so once the marker is in, every earlier one is.
        await wait_until(lambda: received[-1:] == ["marker"], TIMEOUT, "the marker")
    finally:
        sender.cancel()
        alice.destroy()
        bob.destroy()

    assert received == [f"m{number}" for number in range(total)] + ["marker"]
    assert SessionStatus.RECONNECTING in statuses


async def test_send_in_flight_when_socket_dies_stored_once(
    server_backend: RemoteBackend,
) -> None:
    transport = WebSocketTransport(server_backend.server_url)
    alice = _session(server_backend, "alice", transport)
    await alice.wait_ready()
    # A write lock from another connection holds the server's insert, so the
    # socket dies while the send is in flight on the server (SQLite waits up
    # to its busy timeout of 5 s for the lock).
    locker = sqlite3.connect(server_backend.database, isolation_level=None)
    send: asyncio.Task[object] | None = None
    try:
        locker.execute("BEGIN IMMEDIATE")
        send = asyncio.create_task(alice.send_message("group", "exactly once"))
        endpoint = server_backend.running.endpoint
        await wait_until(
            lambda: any(status.in_flight for status in endpoint.connections()),
            TIMEOUT,
            "the send to reach the server",
        )
        _abort(transport)
        await wait_until(
            lambda: alice.status is SessionStatus.RECONNECTING, TIMEOUT, "the reconnect"
        )
    finally:
        locker.execute("ROLLBACK")
        locker.close()
    assert send is not None
    async with asyncio.timeout(TIMEOUT):
        message = await send
    await wait_until(lambda: alice.status is SessionStatus.READY, TIMEOUT, "the session back")
    alice.destroy()

    page = await server_backend.service.list_messages(TRUSTED, "group")
    assert [stored.text for stored in page.messages] == ["exactly once"]
    assert page.messages[0].id == getattr(message, "id", None)


async def test_page_larger_than_websockets_default(server_backend: RemoteBackend) -> None:
    service = server_backend.service
    for _ in range(100):
        # Random text, so that compression cannot shrink the frame much.
        text = secrets.token_hex(10_000)
        await service.send_message(TRUSTED, "group", text, sender_id="bob")
    alice = _session(server_backend, "alice")
    await alice.wait_ready()
    page = await alice.list_messages("group", limit=100)
    alice.destroy()

    assert len(page.messages) == 100
    # Well over the 1 MiB that the websockets client accepts by default.
    assert sum(len(message.text) for message in page.messages) == 2_000_000


# Errors cross the wire as the same classes with the same codes.
EXPECTED_ERRORS = {
    "unknown conversation": ("NotFound", "not_found"),
    "not a participant": ("PermissionDenied", "permission_denied"),
    "edit another's message": ("PermissionDenied", "permission_denied"),
    "page size 0": ("InvalidInput", "invalid_input"),
    "text too long": ("InvalidInput", "invalid_input"),
}


async def test_errors_same_class_and_code(any_backend: ChatBackend) -> None:
    service = any_backend.service
    await service.sync_conversation(
        TRUSTED, "private", participants={"bob": Participation(), "carol": Participation()}
    )
    bobs = await service.send_message(TRUSTED, "group", "bob's", sender_id="bob")
    alice = _session(any_backend, "alice")
    await alice.wait_ready()
    attempts = {
        "unknown conversation": alice.get_conversation("no-such-conversation"),
        "not a participant": alice.get_conversation("private"),
        "edit another's message": alice.edit_message("group", bobs.id, text="mine now"),
        "page size 0": alice.list_messages("group", limit=0),
        "text too long": alice.send_message("group", "x" * 20_001),
    }
    errors: dict[str, tuple[str, str]] = {}
    for name, attempt in attempts.items():
        try:
            await attempt
        except ChatError as error:
            errors[name] = (type(error).__name__, error.code)
    alice.destroy()

    assert errors == EXPECTED_ERRORS


async def test_unreachable_server_retried_until_it_starts(tmp_path: Path) -> None:
    backend = RemoteBackend(App("unreachable", SECRET_KEY), tmp_path / "chat.sqlite3")
    session = _session(backend, "alice", WebSocketTransport(backend.server_url))
    errors: list[ChatError] = []
    session.on_error(errors.append)
    session.start()
    try:
        # Nothing listens yet: the session keeps trying and reports each failure.
        await wait_until(lambda: len(errors) >= 2, TIMEOUT, "two failed attempts")
        assert session.status is SessionStatus.CONNECTING
        assert {error.code for error in errors} == {"connection_failed"}
        assert "/realtime" in errors[0].message
        await backend.start()
        await backend.service.upsert_user(User(id="alice", name="Alice"))
        await asyncio.wait_for(session.wait_ready(), TIMEOUT)
    finally:
        session.destroy()
        await backend.close()


async def test_session_fails_when_server_rejects_version() -> None:
    # The first connection works and then drops; the server that answers the
    # reconnect speaks only a future protocol version and refuses it with
    # 4002. Retrying can't help, so the session must fail, not loop.
    connections: list[int] = []

    async def upgraded_server(websocket: ServerConnection) -> None:
        connections.append(len(connections) + 1)
        first = len(connections) == 1
        loop = asyncio.get_running_loop()
        versions = SUPPORTED_VERSIONS if first else (PROTOCOL_VERSION + 1,)
        machine = ServerProtocol(loop.time(), supported_versions=versions)
        async for text in websocket:
            machine.receive_text(str(text), loop.time())
            answered = False
            for event in machine.events_received():
                if isinstance(event, HelloReceived):
                    machine.accept(User(id="alice", name="Alice"), latest_seq=0)
                else:
                    snapshot = UnreadsSnapshot(unreads=[], read_positions={}, as_of_event_seq=0)
                    machine.send_result(event.request_id, snapshot)
                    answered = True
            for frame in machine.frames_to_send():
                await websocket.send(frame)
            close = machine.close_to_send()
            if close is not None:
                await websocket.close(close.code, close.reason)
                return
            if answered:
                # Ready now: drop the connection as a restarting server would.
                websocket.transport.abort()
                return

    async with serve_websocket(upgraded_server, "127.0.0.1", 0) as listening:
        port = next(iter(listening.sockets)).getsockname()[1]
        app = App("upgraded", SECRET_KEY)
        session = TalkSession(
            app.app_id,
            "alice",
            token=create_user_token(app, "alice"),
            transport=WebSocketTransport(f"ws://127.0.0.1:{port}"),
            retry_backoff=FAST_RETRIES,
        )
        errors: list[ChatError] = []
        session.on_error(errors.append)
        await asyncio.wait_for(session.wait_ready(), TIMEOUT)
        await wait_until(lambda: session.status is SessionStatus.FAILED, TIMEOUT, "failure")
    assert connections == [1, 2]
    assert isinstance(session.error, ConnectionRejected)
    assert session.error.code == "unsupported_version"


async def test_transport_serves_one_user(server_backend: RemoteBackend) -> None:
    transport = WebSocketTransport(server_backend.server_url)
    app = server_backend.app
    credentials = Credentials(token=create_user_token(app, "alice"))
    events: list[ChatEvent] = []
    await transport.connect(app.app_id, User(id="alice"), credentials, events.append, sync_me=False)
    try:
        with pytest.raises(InvalidInput) as caught:
            await transport.connect(
                app.app_id, User(id="bob"), credentials, events.append, sync_me=False
            )
    finally:
        await transport.close()

    assert "one transport per session" in caught.value.message


async def test_close_fails_waiting_requests(server_backend: RemoteBackend) -> None:
    """A request made while disconnected waits, and fails with connection_closed on close."""
    transport = WebSocketTransport(server_backend.server_url)
    app = server_backend.app
    credentials = Credentials(token=create_user_token(app, "alice"))
    lost: list[ChatError] = []
    events: list[ChatEvent] = []
    await transport.connect(
        app.app_id,
        User(id="alice"),
        credentials,
        events.append,
        sync_me=False,
        on_disconnect=lost.append,
    )
    _abort(transport)
    await wait_until(lambda: bool(lost), TIMEOUT, "the disconnect")
    waiting = asyncio.create_task(transport.list_conversations())
    await wait_until(lambda: transport.pending_requests == 1, TIMEOUT, "the request to wait")
    assert not waiting.done()
    await transport.close()
    with pytest.raises(ChatError) as caught:
        await waiting

    assert [error.code for error in lost] == ["connection_lost"]
    assert caught.value.code == "connection_closed"


# -- choosing the server -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("ws://127.0.0.1:8080", "ws://127.0.0.1:8080"),
        ("http://127.0.0.1:8080/", "ws://127.0.0.1:8080"),
        ("https://chat.example.com/talk/", "wss://chat.example.com/talk"),
        ("WSS://chat.example.com", "wss://chat.example.com"),
    ],
)
def test_server_url_normalized(given: str, expected: str) -> None:
    assert embedded.normalize_server_url(given) == expected


@pytest.mark.parametrize(
    "given", ["127.0.0.1:8080", "ftp://example.com", "ws://", "http://host/?app=1"]
)
def test_invalid_server_url_rejected(given: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        embedded.normalize_server_url(given)
    assert repr(given) in caught.value.message


def test_realtime_url_quotes_app_id() -> None:
    url = realtime_url("https://chat.example.com/talk", "my app/1")
    assert url == "wss://chat.example.com/talk/v1/my%20app%2F1/realtime"
    assert embedded.http_base_url("wss://chat.example.com/talk") == "https://chat.example.com/talk"


def test_environment_selects_server(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(embedded.SERVER_URL_VARIABLE, "http://127.0.0.1:9999")
    unconfigured = f"env-{secrets.token_hex(4)}"
    embedded_app = f"embedded-{secrets.token_hex(4)}"
    embedded.configure(embedded_app, database=tmp_path / "chat.sqlite3", server_url="")
    configured = embedded.configure(f"configured-{secrets.token_hex(4)}")

    assert embedded.server_url_of(unconfigured) == "ws://127.0.0.1:9999"
    assert embedded.server_url_of(embedded_app) is None
    assert configured.server_url == "ws://127.0.0.1:9999"


async def test_remote_backend_opens_no_database(tmp_path: Path) -> None:
    database = tmp_path / "never-created.sqlite3"
    backend = embedded.configure(
        f"remote-{secrets.token_hex(4)}",
        secret_key="sk_test_" + "0123456789abcdef" * 3,
        database=database,
        server_url="ws://127.0.0.1:9999",
    )
    await backend.start()
    with pytest.raises(ChatError) as caught:
        backend.service  # noqa: B018 - reading the property is the test

    assert caught.value.code == "backend_remote"
    assert "REST API" in caught.value.message
    assert not database.exists()
    assert not backend.started


@pytest.mark.parametrize(
    ("arguments", "secret_key", "message"),
    [
        (["--server", "http://127.0.0.1:8080"], None, "set TALKJS_SECRET_KEY"),
        (["--server", "http://127.0.0.1:8080", "--data", "x.sqlite3"], "sk", "exclude each other"),
        (["--server", "127.0.0.1:8080"], "sk", "chat server URL '127.0.0.1:8080' is invalid"),
    ],
)
def test_demo_server_option_errors(
    arguments: list[str],
    secret_key: str | None,
    message: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    if secret_key is None:
        monkeypatch.delenv("TALKJS_SECRET_KEY", raising=False)
    else:
        monkeypatch.setenv("TALKJS_SECRET_KEY", secret_key)
    status = cli.main(["demo", "--port", str(free_port()), *arguments])

    assert status == 2
    assert message in capsys.readouterr().err
