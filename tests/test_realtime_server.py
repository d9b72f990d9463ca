"""The realtime endpoint over real sockets: uvicorn on 127.0.0.1 in this process.

Clients are the ``websockets`` asyncio client, sending either raw frames or
the frames of a :class:`ClientProtocol` (the ``Wire`` helper below). Limits
and timeouts are shortened per test where a test waits for them.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import signal
import socket
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from talkjs_components.auth import DEFAULT_LEEWAY, App, create_signature, create_user_token
from talkjs_components.errors import AuthError, ChatError, NotFound, PermissionDenied
from talkjs_components.models import (
    AccessLevel,
    Conversation,
    ConversationAttributes,
    EventsPage,
    Message,
    MessageSent,
    MessagesPage,
    Participation,
    UnreadsSnapshot,
    User,
)
from talkjs_components.protocol import (
    ClientEvent,
    ClientProtocol,
    CloseCode,
    Connected,
    DeleteMessage,
    Disconnected,
    EditMessage,
    EventReceived,
    EventsAfter,
    GetConversation,
    GetUnreadsSnapshot,
    GetUsers,
    LeaveConversation,
    ListConversations,
    ListMessages,
    MarkRead,
    OnlineUsers,
    Reauthenticate,
    Request,
    RequestFailed,
    ResponseReceived,
    ResumeStatus,
    ServerLimits,
    ServerState,
    SetTyping,
    SyncConversation,
    SyncUser,
    WireCredentials,
)
from talkjs_components.protocol.requests import REQUEST_TYPES
from talkjs_components.server import ServerConfig
from talkjs_components.server.realtime import RealtimeSettings
from talkjs_components.service import TRUSTED, ChatService

from .remote_backend import RunningServer, serving_realtime
from .server_process import serving_process
from .waiting import wait_until

APP_ID = "rt-app"
SECRET_KEY = "sk_rt_" + "0123456789abcdef" * 3
APP = App(APP_ID, secret_key=SECRET_KEY)
TIMEOUT = 10.0
"""Seconds any single wait in these tests may take before the test fails."""


def config_for(tmp_path: Path) -> ServerConfig:
    return ServerConfig((APP,), tmp_path / "chat.sqlite3")


def service_of(running: RunningServer) -> ChatService:
    hosted = running.host.get(APP_ID)
    assert hosted is not None
    return hosted.service


async def add_users_and_group(running: RunningServer) -> None:
    service = service_of(running)
    for user_id in ("alice", "bob", "carol"):
        await service.upsert_user(User(id=user_id, name=user_id.title()))
    participants = {user_id: Participation() for user_id in ("alice", "bob", "carol")}
    await service.sync_conversation(TRUSTED, "group", participants=participants)


@pytest.fixture
async def running(tmp_path: Path) -> AsyncIterator[RunningServer]:
    """A server with app rt-app, users alice, bob and carol, and their conversation "group"."""
    async with serving_realtime(config_for(tmp_path)) as server:
        await add_users_and_group(server)
        yield server


def url_of(running: RunningServer, app_id: str = APP_ID) -> str:
    return f"{running.websocket_url}/v1/{app_id}/realtime"


def hello(user_id: str = "alice", **fields: Any) -> str:
    frame: dict[str, Any] = {
        "type": "hello",
        "versions": [2],
        "appId": APP_ID,
        "userId": user_id,
        "credentials": {"token": create_user_token(APP, user_id)},
    }
    frame.update(fields)
    return json.dumps(frame)


async def receive_json(websocket: ClientConnection) -> dict[str, Any]:
    """Return the next frame that is not an event, such as the presence events of a connect."""
    async with asyncio.timeout(TIMEOUT):
        while True:
            frame: dict[str, Any] = json.loads(await websocket.recv())
            if frame["type"] != "event":
                return frame


async def close_code_of(websocket: ClientConnection) -> int | None:
    """Read until the server closes; return the close code it sent."""
    async with asyncio.timeout(TIMEOUT):
        try:
            while True:
                await websocket.recv()
        except ConnectionClosed as exc:
            return exc.rcvd.code if exc.rcvd is not None else None


class Wire:
    """A websocket driven by a ClientProtocol, which may span several connections."""

    def __init__(self, websocket: ClientConnection, protocol: ClientProtocol) -> None:
        self.websocket = websocket
        self.protocol = protocol
        self.events: list[ClientEvent] = []
        self.frames: list[dict[str, Any]] = []
        """Every frame received, decoded, in order."""

    @classmethod
    async def open(
        cls,
        running: RunningServer,
        protocol: ClientProtocol | None = None,
        *,
        user_id: str = "alice",
        user: User | None = None,
    ) -> Wire:
        websocket = await connect(url_of(running), ping_interval=None)
        client = protocol or ClientProtocol(APP_ID, user_id)
        client.connect(
            asyncio.get_running_loop().time(),
            token=create_user_token(APP, user_id),
            user=user,
        )
        wire = cls(websocket, client)
        await wire.flush()
        await wire.until(lambda event: isinstance(event, Connected | Disconnected))
        return wire

    async def flush(self) -> None:
        for frame in self.protocol.frames_to_send():
            await self.websocket.send(frame)
        close = self.protocol.close_to_send()
        if close is not None:
            await self.websocket.close(close.code, close.reason)

    async def receive(self) -> None:
        """Feed one frame, or the close, to the protocol and collect its events."""
        loop = asyncio.get_running_loop()
        try:
            text = await self.websocket.recv()
        except ConnectionClosed as exc:
            received = exc.rcvd
            if received is not None:
                self.protocol.connection_closed(received.code, received.reason)
            else:
                self.protocol.connection_closed(None)
        else:
            assert isinstance(text, str)
            self.frames.append(json.loads(text))
            self.protocol.receive_text(text, loop.time())
        await self.flush()
        self.events += self.protocol.events_received()

    async def until(self, condition: Any) -> ClientEvent:
        """Receive until an event satisfies ``condition``; return it."""
        async with asyncio.timeout(TIMEOUT):
            while True:
                for event in self.events:
                    if condition(event):
                        self.events.remove(event)
                        return event
                await self.receive()

    async def call(self, request: Request) -> object:
        """Send a request and return its result, or raise its error."""
        request_id = self.protocol.request(request)
        await self.flush()
        self.events += self.protocol.events_received()
        response = await self.until(
            lambda event: (
                isinstance(event, ResponseReceived | RequestFailed)
                and event.request_id == request_id
            )
        )
        if isinstance(response, RequestFailed):
            raise response.error
        assert isinstance(response, ResponseReceived)
        return response.result

    async def next_message_event(self) -> MessageSent:
        event = await self.until(
            lambda event: isinstance(event, EventReceived) and isinstance(event.event, MessageSent)
        )
        assert isinstance(event, EventReceived) and isinstance(event.event, MessageSent)
        return event.event


# -- handshake and authentication --------------------------------------------------


async def test_hello_gets_welcome(running: RunningServer) -> None:
    async with connect(url_of(running)) as websocket:
        await websocket.send(hello())
        welcome = await receive_json(websocket)

    assert welcome["type"] == "welcome"
    assert welcome["version"] == 2
    assert welcome["user"]["id"] == "alice"
    assert welcome["user"]["name"] == "Alice"
    assert welcome["resume"] == "fresh"
    assert welcome["seq"] >= 1
    assert welcome["limits"] == {
        "maxFrameBytes": 262_144,
        "heartbeatInterval": 20.0,
        "idleTimeout": 60.0,
        "maxInFlightRequests": 64,
    }


async def test_hello_with_signature_and_user_fields(running: RunningServer) -> None:
    signature = create_signature(APP, "dave")
    frame = hello(
        "dave",
        credentials={"signature": signature},
        user={"id": "dave", "name": "Dave", "locale": "fa-IR"},
    )
    async with connect(url_of(running)) as websocket:
        await websocket.send(frame)
        welcome = await receive_json(websocket)

    assert welcome["type"] == "welcome"
    stored = await service_of(running).get_user("dave")
    assert stored.name == "Dave"
    assert stored.locale == "fa-IR"


async def test_wrong_token_closes_4001_without_logging_it(
    running: RunningServer, caplog: pytest.LogCaptureFixture
) -> None:
    token = create_user_token(App(APP_ID, secret_key="sk_wrong_" + "x" * 40), "alice")
    caplog.set_level(logging.DEBUG)
    async with connect(url_of(running)) as websocket:
        await websocket.send(hello(credentials={"token": token}))
        error = await receive_json(websocket)
        code = await close_code_of(websocket)

    assert code == CloseCode.AUTHENTICATION_FAILED
    assert error["type"] == "error"
    assert error["id"] is None
    assert error["kind"] == "auth_failed"
    assert error["code"] == "token_signature"
    failures = [r for r in caplog.records if "authentication of user 'alice'" in r.getMessage()]
    assert len(failures) == 1
    assert failures[0].levelno == logging.WARNING
    assert all(token not in record.getMessage() for record in caplog.records)
    assert token not in json.dumps(error)


async def test_unknown_app_closes_4001(running: RunningServer) -> None:
    async with connect(url_of(running, "no-such-app")) as websocket:
        await websocket.send(hello(appId="no-such-app"))
        error = await receive_json(websocket)
        code = await close_code_of(websocket)

    assert code == CloseCode.AUTHENTICATION_FAILED
    assert error["code"] == "app_not_found"
    assert "'no-such-app'" in error["message"]


async def test_hello_for_other_app_than_url_closes_4001(running: RunningServer) -> None:
    async with connect(url_of(running)) as websocket:
        await websocket.send(hello(appId="other-app"))
        error = await receive_json(websocket)
        code = await close_code_of(websocket)

    assert code == CloseCode.AUTHENTICATION_FAILED
    assert error["code"] == "app_mismatch"


async def test_unknown_user_without_fields_closes_4001(running: RunningServer) -> None:
    async with connect(url_of(running)) as websocket:
        await websocket.send(hello("erin"))
        error = await receive_json(websocket)
        code = await close_code_of(websocket)

    assert code == CloseCode.AUTHENTICATION_FAILED
    assert error["code"] == "user_not_found"
    assert "sync_user" in error["message"]


@pytest.mark.parametrize(
    ("frame", "expected_close"),
    [
        ("not json", CloseCode.PROTOCOL_ERROR),
        ('{"type": "list_conversations", "id": "1"}', CloseCode.PROTOCOL_ERROR),
        (json.dumps({"type": "hello", "versions": [99], "appId": APP_ID, "userId": "alice"}), 4002),
    ],
)
async def test_bad_first_frame_closes(
    running: RunningServer, frame: str, expected_close: int
) -> None:
    async with connect(url_of(running)) as websocket:
        await websocket.send(frame)
        error = await receive_json(websocket)
        code = await close_code_of(websocket)

    assert code == expected_close
    assert error["type"] == "error"
    assert error["id"] is None


async def test_binary_frame_closes_1002(running: RunningServer) -> None:
    async with connect(url_of(running)) as websocket:
        await websocket.send(hello())
        await receive_json(websocket)
        await websocket.send(b"\x00\x01")
        error = await receive_json(websocket)
        code = await close_code_of(websocket)

    assert code == CloseCode.PROTOCOL_ERROR
    assert "binary frame of 2 bytes" in error["message"]


async def test_oversized_frame_closes_1009(tmp_path: Path) -> None:
    settings = RealtimeSettings(limits=ServerLimits(max_frame_bytes=1000))
    async with serving_realtime(config_for(tmp_path), realtime=settings) as running:
        await add_users_and_group(running)
        async with connect(url_of(running)) as websocket:
            await websocket.send(hello())
            welcome = await receive_json(websocket)
            await websocket.send(json.dumps({"type": "ping", "padding": "x" * 2000}))
            error = await receive_json(websocket)
            code = await close_code_of(websocket)

    assert welcome["limits"]["maxFrameBytes"] == 1000
    assert code == CloseCode.MESSAGE_TOO_BIG
    assert error["code"] == "frame_too_big"


@pytest.mark.parametrize("deflate", [False, True], ids=["default-off", "on"])
async def test_per_message_deflate_follows_setting(tmp_path: Path, deflate: bool) -> None:
    settings = RealtimeSettings(per_message_deflate=True) if deflate else RealtimeSettings()
    async with serving_realtime(config_for(tmp_path), realtime=settings) as running:
        await add_users_and_group(running)
        # The websockets client offers permessage-deflate by default.
        async with connect(url_of(running)) as websocket:
            assert websocket.response is not None
            extensions = websocket.response.headers.get("Sec-WebSocket-Extensions", "")
            await websocket.send(hello())
            welcome = await receive_json(websocket)

    assert welcome["type"] == "welcome"
    assert ("permessage-deflate" in extensions) is deflate


def nearly_expired_token(user_id: str = "alice", seconds_left: float = 3.0) -> str:
    """A token whose ``exp`` passed, but which the 30 s leeway keeps valid for ``seconds_left``."""
    issued_at = time.time() - 100
    expires_in = 100 - DEFAULT_LEEWAY + seconds_left
    return create_user_token(APP, user_id, expires_in=expires_in, now=issued_at)


async def reauthenticate(websocket: ClientConnection, credentials: dict[str, str]) -> Any:
    """Send a reauthenticate request with id "reauth"; return the response frame."""
    request = {"type": "reauthenticate", "id": "reauth", "credentials": credentials}
    await websocket.send(json.dumps(request))
    return await receive_json(websocket)


async def list_after_token_end(websocket: ClientConnection) -> Any:
    """Wait until a token of ``nearly_expired_token()`` has ended, then list conversations."""
    await asyncio.sleep(3.5)
    await websocket.send('{"type": "list_conversations", "id": "after-expiry"}')
    return await receive_json(websocket)


async def test_expired_token_closes_connection(running: RunningServer) -> None:
    async with connect(url_of(running)) as websocket:
        await websocket.send(hello(credentials={"token": nearly_expired_token()}))
        welcome = await receive_json(websocket)
        error = await receive_json(websocket)
        code = await close_code_of(websocket)

    assert welcome["type"] == "welcome"
    assert error["code"] == "token_expired"
    assert "send a reauthenticate request with a new token" in error["message"]
    assert code == CloseCode.AUTHENTICATION_FAILED


async def test_reauthenticate_keeps_connection_open(running: RunningServer) -> None:
    async with connect(url_of(running)) as websocket:
        await websocket.send(hello(credentials={"token": nearly_expired_token()}))
        welcome = await receive_json(websocket)
        fresh = {"token": create_user_token(APP, "alice")}
        reauthenticated = await reauthenticate(websocket, fresh)
        # Past the old token's end, with the leeway.
        listed = await list_after_token_end(websocket)

    assert welcome["type"] == "welcome"
    assert reauthenticated == {"type": "result", "id": "reauth", "result": None}
    assert listed["type"] == "result"
    assert listed["id"] == "after-expiry"


async def test_reauthenticate_with_shorter_token(running: RunningServer) -> None:
    async with connect(url_of(running)) as websocket:
        # A token valid for a day, then one about to expire: its end counts.
        await websocket.send(hello())
        welcome = await receive_json(websocket)
        short = {"token": nearly_expired_token(seconds_left=1.0)}
        reauthenticated = await reauthenticate(websocket, short)
        error = await receive_json(websocket)
        code = await close_code_of(websocket)

    assert welcome["type"] == "welcome"
    assert reauthenticated["id"] == "reauth"
    assert error["code"] == "token_expired"
    assert code == CloseCode.AUTHENTICATION_FAILED


async def test_signature_reauthenticate_removes_expiry(running: RunningServer) -> None:
    async with connect(url_of(running)) as websocket:
        await websocket.send(hello(credentials={"token": nearly_expired_token()}))
        welcome = await receive_json(websocket)
        signed = {"signature": create_signature(APP, "alice")}
        reauthenticated = await reauthenticate(websocket, signed)
        # Past the token's end, with the leeway: a signature does not expire.
        listed = await list_after_token_end(websocket)

    assert welcome["type"] == "welcome"
    assert reauthenticated == {"type": "result", "id": "reauth", "result": None}
    assert listed["type"] == "result"


async def test_silent_client_closed_after_handshake_timeout(tmp_path: Path) -> None:
    settings = RealtimeSettings(limits=ServerLimits(handshake_timeout=0.3))
    async with serving_realtime(config_for(tmp_path), realtime=settings) as running:
        async with connect(url_of(running)) as websocket:
            error = await receive_json(websocket)
            code = await close_code_of(websocket)

    assert code == CloseCode.IDLE_TIMEOUT
    assert error["code"] == "handshake_timeout"


async def test_server_pings_then_closes_idle_client(tmp_path: Path) -> None:
    limits = ServerLimits(heartbeat_interval=0.2, idle_timeout=0.6)
    async with serving_realtime(config_for(tmp_path), realtime=RealtimeSettings(limits)) as running:
        await add_users_and_group(running)
        async with connect(url_of(running)) as websocket:
            await websocket.send(hello())
            welcome = await receive_json(websocket)
            # No pong is sent: the client stays silent after the ping.
            ping = await receive_json(websocket)
            error = await receive_json(websocket)
            code = await close_code_of(websocket)

    assert welcome["type"] == "welcome"
    assert ping == {"type": "ping"}
    assert error["code"] == "idle_timeout"
    assert code == CloseCode.IDLE_TIMEOUT


async def test_pong_keeps_connection_open(tmp_path: Path) -> None:
    limits = ServerLimits(heartbeat_interval=0.2, idle_timeout=0.6)
    async with serving_realtime(config_for(tmp_path), realtime=RealtimeSettings(limits)) as running:
        await add_users_and_group(running)
        async with connect(url_of(running)) as websocket:
            await websocket.send(hello())
            await receive_json(websocket)
            # Three pings with their pongs span longer than the idle timeout.
            for _ in range(3):
                assert await receive_json(websocket) == {"type": "ping"}
                await websocket.send('{"type": "pong"}')
            await websocket.send('{"type": "list_conversations", "id": "after-pings"}')
            result = await receive_json(websocket)

    assert result["type"] == "result"
    assert result["id"] == "after-pings"


# -- requests and events ----------------------------------------------------------------


async def test_every_request_type(running: RunningServer) -> None:
    wire = await Wire.open(running)
    used: set[str] = set()

    async def call(request: Request) -> object:
        used.add(request.type)
        return await wire.call(request)

    me = await call(SyncUser(user=User(id="alice", name="Alice Liddell")))
    assert isinstance(me, User) and me.name == "Alice Liddell"
    with pytest.raises(PermissionDenied):
        await call(SyncUser(user=User(id="bob", name="Not Bob")))

    users = await call(GetUsers(user_ids=["bob", "carol", "nobody"]))
    assert isinstance(users, dict) and sorted(users) == ["bob", "carol"]

    conversation = await call(
        SyncConversation(
            conversation_id="lunch",
            attributes=ConversationAttributes(subject="Lunch"),
            participants={"alice": Participation(), "dave": Participation(notify=False)},
            new_users=[User(id="dave", name="Dave")],
        )
    )
    assert isinstance(conversation, Conversation)
    assert sorted(conversation.participants) == ["alice", "dave"]
    assert conversation.participants["dave"].notify is False

    # A participant update that leaves a field unset keeps the stored value.
    updated = await call(
        SyncConversation(
            conversation_id="lunch", participants={"dave": Participation(access=AccessLevel.READ)}
        )
    )
    assert isinstance(updated, Conversation)
    assert updated.participants["dave"].access == "Read"
    assert updated.participants["dave"].notify is False

    fetched = await call(GetConversation(conversation_id="lunch"))
    assert isinstance(fetched, Conversation) and fetched.subject == "Lunch"
    with pytest.raises(NotFound):
        await call(GetConversation(conversation_id="no-such-conversation"))

    listed = await call(ListConversations())
    assert isinstance(listed, list)
    assert sorted(c.id for c in listed) == ["group", "lunch"]

    request_id = wire.protocol.send_message("lunch", "Pizza?", idempotency_key="pizza-1")
    used.add("send_message")
    await wire.flush()
    sent = await wire.until(
        lambda event: isinstance(event, ResponseReceived) and event.request_id == request_id
    )
    assert isinstance(sent, ResponseReceived) and isinstance(sent.result, Message)
    message = sent.result
    again_id = wire.protocol.send_message("lunch", "Pizza?", idempotency_key="pizza-1")
    await wire.flush()
    again = await wire.until(
        lambda event: isinstance(event, ResponseReceived) and event.request_id == again_id
    )
    assert isinstance(again, ResponseReceived) and isinstance(again.result, Message)
    assert again.result.id == message.id

    page = await call(ListMessages(conversation_id="lunch"))
    assert isinstance(page, MessagesPage)
    assert [m.text for m in page.messages] == ["Pizza?"]

    assert await call(MarkRead(conversation_id="lunch")) is None
    edited = await call(
        EditMessage(conversation_id="lunch", message_id=message.id, text="Pizza at noon?")
    )
    assert isinstance(edited, Message) and edited.text == "Pizza at noon?"
    assert await call(SetTyping(conversation_id="group", typing=True)) is None
    assert await call(OnlineUsers(user_ids=["alice", "bob"])) == ["alice"]

    snapshot = await call(GetUnreadsSnapshot())
    assert isinstance(snapshot, UnreadsSnapshot)
    events = await call(EventsAfter(after_seq=0))
    assert isinstance(events, EventsPage)
    assert any(isinstance(event, MessageSent) for event in events.events)
    with pytest.raises(ChatError) as gap:
        await call(EventsAfter(after_seq=events.next_after_seq + 1000))
    assert gap.value.code == "resume_gap"

    assert await call(DeleteMessage(conversation_id="lunch", message_id=message.id)) is None
    page = await call(ListMessages(conversation_id="lunch"))
    assert isinstance(page, MessagesPage) and page.messages == []

    fresh = WireCredentials(token=create_user_token(APP, "alice"))
    assert await call(Reauthenticate(credentials=fresh)) is None
    with pytest.raises(AuthError) as rejected:
        await call(Reauthenticate(credentials=WireCredentials(token=create_user_token(APP, "bob"))))
    assert rejected.value.code == "token_subject"

    assert await call(LeaveConversation(conversation_id="lunch")) is None
    with pytest.raises(ChatError):
        await call(GetConversation(conversation_id="lunch"))

    assert used == set(REQUEST_TYPES)
    await wire.websocket.close()


async def test_events_delivered_live(running: RunningServer) -> None:
    wire = await Wire.open(running)
    service = service_of(running)
    await service.send_message(TRUSTED, "group", "one", sender_id="bob")
    await service.send_message(TRUSTED, "group", "two", sender_id="carol")

    first = await wire.next_message_event()
    second = await wire.next_message_event()
    await wire.websocket.close()

    assert [first.message.text, second.message.text] == ["one", "two"]
    assert first.seq is not None
    assert second.seq is not None
    assert first.seq < second.seq
    assert first.sender is not None and first.sender.name == "Bob"


async def test_presence_frame_names_only_user(running: RunningServer) -> None:
    async with connect(url_of(running)) as bob, connect(url_of(running)) as alice:
        await bob.send(hello("bob"))
        assert (await receive_json(bob))["type"] == "welcome"
        await alice.send(hello("alice"))
        assert (await receive_json(alice))["type"] == "welcome"

        frames: list[dict[str, Any]] = []
        async with asyncio.timeout(TIMEOUT):
            while not any(frame["event"].get("userId") == "alice" for frame in frames):
                frames.append(json.loads(await bob.recv()))

    assert frames[-1] == {
        "type": "event",
        "event": {"seq": None, "type": "presence_changed", "userId": "alice", "online": True},
    }
    assert [frame["event"]["type"] for frame in frames] == ["presence_changed"] * len(frames)


async def test_version_1_gets_no_presence(running: RunningServer) -> None:
    # Version 1 clients cannot read the presence_changed of version 2, whose
    # conversation is gone, so the server sends them every other event only.
    async with connect(url_of(running)) as bob, connect(url_of(running)) as alice:
        await bob.send(hello("bob", versions=[1]))
        welcome = await receive_json(bob)
        assert welcome["type"] == "welcome"
        assert welcome["version"] == 1
        await alice.send(hello("alice"))
        assert (await receive_json(alice))["version"] == 2
        # Alice's own presence event reaches her and bob in one dispatch, so
        # once she has it, any presence frame for bob is queued before the message.
        async with asyncio.timeout(TIMEOUT):
            while (json.loads(await alice.recv()))["event"].get("userId") != "alice":
                pass
        await service_of(running).send_message(TRUSTED, "group", "after alice", sender_id="carol")

        frames: list[dict[str, Any]] = []
        async with asyncio.timeout(TIMEOUT):
            while not any(frame["event"]["type"] == "message_sent" for frame in frames):
                frames.append(json.loads(await bob.recv()))

    assert [frame["event"]["type"] for frame in frames] == ["message_sent"]
    assert frames[0]["event"]["message"]["text"] == "after alice"


async def test_resume_replays_missed_events_once(running: RunningServer) -> None:
    service = service_of(running)
    protocol = ClientProtocol(APP_ID, "alice")
    wire = await Wire.open(running, protocol)
    await service.send_message(TRUSTED, "group", "before", sender_id="bob")
    before = await wire.next_message_event()
    await wire.websocket.close()
    await wire.until(lambda event: isinstance(event, Disconnected))
    assert protocol.last_seq == before.seq

    for text in ("missed 1", "missed 2", "missed 3"):
        await service.send_message(TRUSTED, "group", text, sender_id="bob")
    wire = await Wire.open(running, protocol)
    connected = wire.frames[0]
    await service.send_message(TRUSTED, "group", "live", sender_id="carol")
    received = [await wire.next_message_event() for _ in range(4)]
    await wire.websocket.close()

    assert connected["type"] == "welcome"
    assert connected["resume"] == ResumeStatus.RESUMED
    assert [event.message.text for event in received] == [
        "missed 1",
        "missed 2",
        "missed 3",
        "live",
    ]
    seqs = [event.seq or 0 for event in received]
    assert seqs == sorted(set(seqs))
    assert all(seq > (before.seq or 0) for seq in seqs)


async def test_resume_beyond_log_end_reports_gap(running: RunningServer) -> None:
    async with connect(url_of(running)) as websocket:
        await websocket.send(hello(resumeAfter=10**9))
        welcome = await receive_json(websocket)

    assert welcome["type"] == "welcome"
    assert welcome["resume"] == "gap"
    assert welcome["seq"] < 10**9


async def test_disconnect_ends_subscription(running: RunningServer) -> None:
    service = service_of(running)
    wire = await Wire.open(running)
    assert service.listener_count("alice") == 1
    await wire.websocket.close()
    await wait_until(lambda: service.listener_count("alice") == 0, TIMEOUT, "the unsubscribe")
    await wait_until(lambda: not running.endpoint.connections(), TIMEOUT, "the connection to end")


# -- shutdown and slow clients -------------------------------------------------------------


async def test_shutdown_answers_request_in_flight_then_closes_1001(tmp_path: Path) -> None:
    config = config_for(tmp_path)
    async with serving_realtime(config) as running:
        await add_users_and_group(running)
        wire = await Wire.open(running)
        # A write lock from another connection holds the server's send_message
        # in flight (SQLite waits up to its busy timeout of 5 s).
        locker = sqlite3.connect(config.database, isolation_level=None)
        try:
            locker.execute("BEGIN IMMEDIATE")
            send_id = wire.protocol.send_message("group", "sent during shutdown")
            await wire.flush()
            await wait_until(
                lambda: any(status.in_flight for status in running.endpoint.connections()),
                TIMEOUT,
                "the send to reach the service",
            )
            running.server.should_exit = True
            await wait_until(
                lambda: all(
                    status.state is ServerState.CLOSING for status in running.endpoint.connections()
                ),
                TIMEOUT,
                "the connection to start closing",
            )
            late_id = wire.protocol.request(ListConversations())
            await wire.flush()
            async with asyncio.timeout(TIMEOUT):
                while not any(frame.get("id") == late_id for frame in wire.frames):
                    await wire.receive()
        finally:
            locker.execute("ROLLBACK")
            locker.close()
        events: list[ClientEvent] = []
        async with asyncio.timeout(TIMEOUT):
            while not any(isinstance(event, Disconnected) for event in events):
                await wire.receive()
                events += wire.events
                wire.events.clear()

    [late_response] = [frame for frame in wire.frames if frame.get("id") == late_id]
    assert late_response["code"] == "server_shutting_down"
    # Events (presence) may come in between. Stored events published after
    # the close reach the client when it resumes.
    responses = [event for event in events if not isinstance(event, EventReceived)]
    assert [type(event).__name__ for event in responses] == ["ResponseReceived", "Disconnected"]
    response, disconnected = responses
    assert isinstance(response, ResponseReceived) and response.request_id == send_id
    assert isinstance(disconnected, Disconnected)
    assert disconnected.code == CloseCode.GOING_AWAY
    # The request refused during shutdown waits in the client for the next server.
    assert wire.protocol.pending_requests == 1


async def test_new_connection_during_shutdown_closed_1001(tmp_path: Path) -> None:
    async with serving_realtime(config_for(tmp_path)) as running:
        await running.endpoint.shutdown()
        async with connect(url_of(running)) as websocket:
            code = await close_code_of(websocket)

    assert code == CloseCode.GOING_AWAY


def _small_buffer_socket(port: int) -> socket.socket:
    """Return a TCP socket to the server with a small receive buffer, so it fills quickly."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    sock.setblocking(False)
    return sock


async def test_slow_consumer_closed_with_4004(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = RealtimeSettings(max_queued_bytes=256 * 1024)
    async with serving_realtime(config_for(tmp_path), realtime=settings) as running:
        await add_users_and_group(running)
        service = service_of(running)
        port = int(running.base_url.rsplit(":", 1)[1])
        # No compression, so that frames keep their size on the wire, and a
        # queue of one message, so that the client stops reading at once.
        async with connect(
            url_of(running),
            sock=_small_buffer_socket(port),
            compression=None,
            max_queue=1,
            ping_interval=None,
        ) as websocket:
            await websocket.send(hello())
            assert (await receive_json(websocket))["type"] == "welcome"
            sent = 0
            while not any("slow consumer" in record.getMessage() for record in caplog.records):
                assert sent < 400, "the server never closed the slow client"
                # Random data does not compress, whatever the server negotiates.
                blob = secrets.token_hex(50_000)
                await service.send_message(
                    TRUSTED, "group", f"m{sent}", sender_id="bob", custom={"blob": blob}
                )
                sent += 1
            received = 0
            frames: list[dict[str, Any]] = []
            try:
                async with asyncio.timeout(TIMEOUT):
                    while True:
                        frames.append(json.loads(await websocket.recv()))
                        received += 1
            except ConnectionClosed as exc:
                close = exc.rcvd

    assert close is not None
    assert close.code == CloseCode.SLOW_CONSUMER
    assert frames[-1]["code"] == "slow_consumer"
    assert "max_queued_bytes" in frames[-1]["message"]
    events = [frame for frame in frames if frame["type"] == "event"]
    # Frames queued beyond the limit were dropped; the client replays them on resume.
    assert len(events) < sent


async def test_slow_consumer_dropped_when_close_cannot_be_sent(tmp_path: Path) -> None:
    settings = RealtimeSettings(max_queued_bytes=256 * 1024, close_timeout=0.5)
    async with serving_realtime(config_for(tmp_path), realtime=settings) as running:
        await add_users_and_group(running)
        service = service_of(running)
        port = int(running.base_url.rsplit(":", 1)[1])
        async with connect(
            url_of(running),
            sock=_small_buffer_socket(port),
            compression=None,
            max_queue=1,
            ping_interval=None,
            # The client never reads again, so its own close can only time out.
            close_timeout=0.5,
        ) as websocket:
            await websocket.send(hello())
            assert (await receive_json(websocket))["type"] == "welcome"
            sent = 0
            while running.endpoint.connections():
                assert sent < 400, "the server never dropped the slow client"
                blob = secrets.token_hex(50_000)
                await service.send_message(
                    TRUSTED, "group", f"m{sent}", sender_id="bob", custom={"blob": blob}
                )
                sent += 1
                # The drop waits for close_timeout; stop sending once the close is queued.
                if any(s.state is ServerState.CLOSED for s in running.endpoint.connections()):
                    await wait_until(
                        lambda: not running.endpoint.connections(), TIMEOUT, "the drop"
                    )
            assert service.listener_count("alice") == 0


async def test_serve_command_closes_1001_on_sigint(tmp_path: Path) -> None:
    with serving_process(tmp_path, {APP_ID: SECRET_KEY}) as server:
        url = server.base_url.replace("http://", "ws://", 1) + f"/v1/{APP_ID}/realtime"
        async with connect(url) as websocket:
            await websocket.send(hello(user={"id": "alice", "name": "Alice"}))
            welcome = await receive_json(websocket)
            server.process.send_signal(signal.SIGINT)
            code = await close_code_of(websocket)
        async with asyncio.timeout(TIMEOUT):
            status = await asyncio.to_thread(server.process.wait)

    assert welcome["type"] == "welcome"
    assert code == CloseCode.GOING_AWAY
    assert status == 0
