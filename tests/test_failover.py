"""Sessions with a list of chat servers: first reachable server, and failover when one drops.

The two servers of these tests run on this event loop and share one SQLite
file, as two nodes share one database. Each has its own in-memory broker, so
live events reach only the sessions of the node where they happen. A session
that moves gets what it missed by replay from the shared event log.
"""

from __future__ import annotations

import asyncio
import functools
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from talkjs_components import embedded
from talkjs_components.auth import App, create_user_token
from talkjs_components.errors import AuthError, ChatError, InvalidInput
from talkjs_components.models import ChatEvent, Participation, User
from talkjs_components.service import TRUSTED
from talkjs_components.session import Backoff, SessionStatus, TalkSession, WebSocketTransport
from talkjs_components.session.transport import Credentials
from talkjs_components.session.websocket_transport import realtime_url

from .conftest import SECRET_KEY
from .remote_backend import RemoteBackend
from .server_process import free_port
from .waiting import wait_until

TIMEOUT = 10.0
"""Seconds any single wait in these tests may take before the test fails."""

FAST_RETRIES = Backoff(initial=0.05, maximum=0.2, jitter=0)


class ClosingListener:
    """A TCP listener on 127.0.0.1 that closes every connection at once and counts them.

    A websocket client sees a failed handshake, as from a node that is
    going down, and the count shows whether a client tried it.
    """

    def __init__(self) -> None:
        self.accepted = 0
        self.url = ""
        """``ws://127.0.0.1:PORT``, once listening."""
        self._server: asyncio.Server | None = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        writer.close()
        await writer.wait_closed()

    async def __aenter__(self) -> ClosingListener:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"ws://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()


def _session(app: App, user_id: str, transport: WebSocketTransport | None = None) -> TalkSession:
    return TalkSession(
        app.app_id,
        user_id,
        token=create_user_token(app, user_id),
        transport=transport,
        retry_backoff=FAST_RETRIES,
    )


def _abort(transport: WebSocketTransport) -> None:
    """Drop the transport's TCP connection at once, without a websocket close frame."""
    websocket = transport.websocket
    assert websocket is not None, "the transport is not connected"
    websocket.transport.abort()


def _counted(statuses: list[SessionStatus], status: SessionStatus, count: int) -> bool:
    return statuses.count(status) == count


def _users_on(node: RemoteBackend) -> list[str]:
    """Return the users with a realtime connection to ``node``, sorted."""
    return sorted(status.user_id or "" for status in node.running.endpoint.connections())


@pytest.fixture
async def nodes(tmp_path: Path) -> AsyncIterator[tuple[RemoteBackend, RemoteBackend]]:
    """Two started servers of one fresh app on one SQLite file, with alice, bob and a group."""
    app = App(f"failover-{uuid.uuid4().hex[:12]}", secret_key=SECRET_KEY)
    database = tmp_path / "chat.sqlite3"
    first = RemoteBackend(app, database)
    second = RemoteBackend(app, database)
    try:
        await first.start()
        await second.start()
        for user_id in ("alice", "bob"):
            await first.service.upsert_user(User(id=user_id, name=user_id.title()))
        await first.service.sync_conversation(
            TRUSTED, "group", participants={"alice": Participation(), "bob": Participation()}
        )
        yield first, second
    finally:
        await first.close()
        await second.close()


async def test_first_reachable_server_used(nodes: tuple[RemoteBackend, RemoteBackend]) -> None:
    node = nodes[0]
    async with ClosingListener() as down:
        servers = f"{down.url},{node.server_url}"
        first_transport = WebSocketTransport(servers)
        alice = _session(node.app, "alice", first_transport)
        errors: list[ChatError] = []
        alice.on_error(errors.append)
        await asyncio.wait_for(alice.wait_ready(), TIMEOUT)
        tried_before_second_session = down.accepted
        # A new session of the same list starts with the server that worked.
        second_transport = WebSocketTransport(servers)
        bob = _session(node.app, "bob", second_transport)
        try:
            await asyncio.wait_for(bob.wait_ready(), TIMEOUT)
        finally:
            alice.destroy()
            bob.destroy()

    assert tried_before_second_session == 1
    assert down.accepted == 1
    assert first_transport.server_url == node.server_url
    assert second_transport.server_url == node.server_url
    assert errors == []


async def test_stopped_server_sessions_move_on(
    nodes: tuple[RemoteBackend, RemoteBackend],
) -> None:
    first, second = nodes
    app = first.app
    # The app's configuration lists both nodes, as TALKJS_SERVER_URL would.
    embedded.configure(
        app.app_id, secret_key=SECRET_KEY, server_url=f"{first.server_url},{second.server_url}"
    )
    alice = _session(app, "alice")
    bob = _session(app, "bob")
    received: list[str] = []
    statuses: list[SessionStatus] = []
    alice.on_message(lambda message: received.append(message.body))
    alice.on_status_change(statuses.append)
    try:
        await asyncio.wait_for(asyncio.gather(alice.wait_ready(), bob.wait_ready()), TIMEOUT)
        assert _users_on(first) == ["alice", "bob"]
        for number in range(5):
            await bob.send_message("group", f"m{number}")
        await wait_until(lambda: len(received) == 5, TIMEOUT, "the messages on the first node")

        # A graceful stop closes both sessions' connections with 1001.
        await first.close()
        for number in range(5, 10):
            await asyncio.wait_for(bob.send_message("group", f"m{number}"), TIMEOUT)
        await wait_until(lambda: len(received) == 10, TIMEOUT, "the messages on the second node")
        users_on_second = _users_on(second)
    finally:
        alice.destroy()
        bob.destroy()

    assert received == [f"m{number}" for number in range(10)]
    assert users_on_second == ["alice", "bob"]
    assert SessionStatus.RECONNECTING in statuses


async def test_dropped_server_tried_last(nodes: tuple[RemoteBackend, RemoteBackend]) -> None:
    first, second = nodes
    transport = WebSocketTransport(f"{first.server_url},{second.server_url}")
    alice = _session(first.app, "alice", transport)
    statuses: list[SessionStatus] = []
    alice.on_status_change(statuses.append)
    servers: list[str] = []
    try:
        await asyncio.wait_for(alice.wait_ready(), TIMEOUT)
        servers.append(transport.server_url)
        for reconnects in (1, 2):
            # The server stays up; only this connection drops.
            _abort(transport)
            ready_count = 1 + reconnects
            await wait_until(
                functools.partial(_counted, statuses, SessionStatus.READY, ready_count),
                TIMEOUT,
                f"reconnect {reconnects}",
            )
            servers.append(transport.server_url)
        await asyncio.wait_for(alice.send_message("group", "still working"), TIMEOUT)
    finally:
        alice.destroy()

    assert servers == [first.server_url, second.server_url, first.server_url]
    page = await second.service.list_messages(TRUSTED, "group")
    assert [message.text for message in page.messages] == ["still working"]


async def test_every_server_failing_named(tmp_path: Path) -> None:
    async with ClosingListener() as down:
        unused = f"ws://127.0.0.1:{free_port()}"
        transport = WebSocketTransport(f"{down.url},{unused}")
        app = App("nowhere", secret_key=SECRET_KEY)
        credentials = Credentials(token=create_user_token(app, "alice"))
        events: list[ChatEvent] = []
        try:
            with pytest.raises(ChatError) as caught:
                await asyncio.wait_for(
                    transport.connect(
                        app.app_id, User(id="alice"), credentials, events.append, sync_me=False
                    ),
                    TIMEOUT,
                )
        finally:
            await transport.close()

    assert caught.value.code == "connection_failed"
    assert "each of the 2 chat servers" in caught.value.message
    assert realtime_url(down.url, "nowhere") in caught.value.message
    assert realtime_url(unused, "nowhere") in caught.value.message


async def test_rejected_credentials_not_retried_elsewhere(
    nodes: tuple[RemoteBackend, RemoteBackend],
) -> None:
    node = nodes[0]
    async with ClosingListener() as other:
        transport = WebSocketTransport(f"{node.server_url},{other.url}")
        # A token of bob's, presented for alice.
        credentials = Credentials(token=create_user_token(node.app, "bob"))
        events: list[ChatEvent] = []
        try:
            with pytest.raises(AuthError) as caught:
                await asyncio.wait_for(
                    transport.connect(
                        node.app.app_id,
                        User(id="alice"),
                        credentials,
                        events.append,
                        sync_me=False,
                    ),
                    TIMEOUT,
                )
        finally:
            await transport.close()

    assert caught.value.code == "token_subject"
    assert other.accepted == 0


# -- parsing server lists ----------------------------------------------------------------


def test_server_list_normalized() -> None:
    given = " http://127.0.0.1:8080 , ws://10.0.0.2:9000/chat/ "
    expected = ["ws://127.0.0.1:8080", "ws://10.0.0.2:9000/chat"]

    assert embedded.server_urls(given) == expected
    assert embedded.normalize_server_url(given) == ",".join(expected)
    assert WebSocketTransport(given).server_urls == tuple(expected)
    assert embedded.http_base_url(given) == "http://127.0.0.1:8080"


@pytest.mark.parametrize(
    ("given", "fragment"),
    [
        ("ws://127.0.0.1:1,,ws://127.0.0.1:2", "has an empty entry"),
        ("ws://127.0.0.1:1,", "has an empty entry"),
        ("ws://127.0.0.1:1,http://127.0.0.1:1/", "names ws://127.0.0.1:1 twice"),
        ("ws://127.0.0.1:1,127.0.0.1:2", "chat server URL '127.0.0.1:2' is invalid"),
    ],
)
def test_server_list_rejected(given: str, fragment: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        WebSocketTransport(given)
    assert fragment in caught.value.message


def test_environment_lists_servers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(embedded.SERVER_URL_VARIABLE, "http://127.0.0.1:1,https://chat.example.com")
    app_id = f"listed-{uuid.uuid4().hex[:8]}"

    assert embedded.server_url_of(app_id) == "ws://127.0.0.1:1,wss://chat.example.com"


def test_realtime_url_takes_one_server() -> None:
    with pytest.raises(InvalidInput) as caught:
        realtime_url("ws://127.0.0.1:1,ws://127.0.0.1:2", "app")
    assert "one chat server URL" in caught.value.message
