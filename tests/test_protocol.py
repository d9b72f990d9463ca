"""Tests of talkjs_components.protocol: handshake, frame validation and the server machine.

The protocol objects do no I/O, so the tests are synchronous. ``Link`` connects
a client and a server protocol in memory by feeding each one's output to the
other. Other tests feed hand-written frames to one side and read its output.
Times are plain numbers of seconds from ``T0``.

The client's own behaviour (requests, idempotent sends, events and resume) is
in test_protocol_client.py, and timers, shutdown and close codes are in
test_protocol_timers.py.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from talkjs_components.auth import App, authenticate, create_user_token
from talkjs_components.errors import AuthError, ChatError, InvalidInput
from talkjs_components.models import MAX_TEXT_LENGTH, User
from talkjs_components.protocol import (
    SUPPORTED_VERSIONS,
    ClientProtocol,
    ClientState,
    Close,
    CloseCode,
    Connected,
    Disconnected,
    GetConversation,
    HelloReceived,
    InvalidState,
    ReconnectPolicy,
    RequestReceived,
    ResumeStatus,
    SendMessage,
    ServerLimits,
    ServerProtocol,
    ServerState,
)
from talkjs_components.protocol.codec import (
    CLIENT_FRAME_TYPES,
    decode_client_frame,
    decode_server_frame,
)

T0 = 1000.0
APP_ID = "app_1"
SECRET = "sk_test_" + "protocol" * 5
TOKEN_SECRET_PART = "do-not-echo-this-credential"


# -- helpers ------------------------------------------------------------------


def frame(text: str) -> dict[str, Any]:
    """Parse one sent frame."""
    data: dict[str, Any] = json.loads(text)
    return data


def frames_of(side: ServerProtocol | ClientProtocol) -> list[dict[str, Any]]:
    """Parse the frames a protocol object wants to send."""
    return [frame(text) for text in side.frames_to_send()]


def hello(**fields: Any) -> str:
    """A hand-written hello of alice in app_1, with ``fields`` replacing the defaults."""
    data: dict[str, Any] = {"type": "hello", "versions": [2], "appId": APP_ID, "userId": "alice"}
    data.update(fields)
    return json.dumps(data)


def open_server(now: float = T0, limits: ServerLimits | None = None) -> ServerProtocol:
    """A server protocol that received a plain hello and accepted it."""
    server = ServerProtocol(now, limits)
    server.receive_text(hello(), now)
    server.events_received()
    server.accept(User(id="alice"), latest_seq=0)
    server.frames_to_send()
    return server


def error_and_close(server: ServerProtocol) -> tuple[dict[str, Any], Close]:
    """Return the single error frame and the close the server produced."""
    sent = frames_of(server)
    close = server.close_to_send()
    assert len(sent) == 1, sent
    assert sent[0]["type"] == "error"
    assert sent[0]["id"] is None
    assert close is not None
    return sent[0], close


class Link:
    """A client and a server protocol joined in memory, and a clock."""

    def __init__(
        self,
        client: ClientProtocol | None = None,
        server: ServerProtocol | None = None,
        now: float = T0,
    ) -> None:
        self.now = now
        self.client = client or ClientProtocol(APP_ID, "alice", key_prefix="key")
        self.server = server or ServerProtocol(now)
        self.client_events: list[Any] = []
        self.server_events: list[Any] = []
        self.client_closed: Close | None = None
        self.server_closed: Close | None = None

    def pump(self) -> None:
        """Carry frames and closes both ways until neither side has output."""
        moved = True
        while moved:
            moved = False
            for text in self.client.frames_to_send():
                self.server.receive_text(text, self.now)
                moved = True
            close = self.client.close_to_send()
            if close is not None:
                self.client_closed = close
                self.server.connection_closed()
                moved = True
            for text in self.server.frames_to_send():
                self.client.receive_text(text, self.now)
                moved = True
            close = self.server.close_to_send()
            if close is not None:
                self.server_closed = close
                self.client.connection_closed(close.code, close.reason)
                moved = True
            self.client_events += self.client.events_received()
            self.server_events += self.server.events_received()

    def take_client_events(self) -> list[Any]:
        events, self.client_events = self.client_events, []
        return events

    def take_server_events(self) -> list[Any]:
        events, self.server_events = self.server_events, []
        return events

    def handshake(
        self, *, latest_seq: int = 0, resumed: bool = False, **connect: Any
    ) -> HelloReceived:
        """Connect the client, accept its hello as the stored user, and return the hello."""
        self.client.connect(self.now, **connect)
        self.pump()
        events = self.take_server_events()
        assert len(events) == 1
        received = events[0]
        assert isinstance(received, HelloReceived)
        self.server.accept(User(id=received.user_id), latest_seq=latest_seq, resumed=resumed)
        self.pump()
        return received


@pytest.fixture
def link() -> Iterator[Link]:
    yield Link()


# -- handshake -------------------------------------------------------------------


def test_handshake_opens_both_sides(link: Link) -> None:
    link.client.connect(T0, token="jwt", user=User(id="alice", name="Alice"))
    link.pump()

    [received] = link.take_server_events()
    assert isinstance(received, HelloReceived)
    assert received.version == 2
    assert received.app_id == APP_ID
    assert received.user_id == "alice"
    assert received.credentials.token == "jwt"
    assert received.credentials.signature is None
    assert received.resume_after is None
    assert received.user == User(id="alice", name="Alice")
    assert (link.server.state, link.client.state) == (
        ServerState.AUTHENTICATING,
        ClientState.CONNECTING,
    )

    link.server.accept(User(id="alice", name="Alice", created_at=5), latest_seq=12)
    link.pump()

    [connected] = link.take_client_events()
    assert isinstance(connected, Connected)
    assert connected.user == User(id="alice", name="Alice", created_at=5)
    assert connected.version == 2
    assert connected.resume is ResumeStatus.FRESH
    assert connected.limits.max_frame_bytes == 256 * 1024
    assert link.server.state is ServerState.OPEN
    assert link.client.state is ClientState.OPEN
    assert link.client.last_seq == 12


def test_hello_sends_only_the_user_fields_set() -> None:
    client = ClientProtocol(APP_ID, "alice")
    client.connect(T0, user=User(id="alice", name=None, role="admin"))

    [sent] = frames_of(client)

    assert sent["user"] == {"id": "alice", "name": None, "role": "admin"}
    server = ServerProtocol(T0)
    server.receive_text(json.dumps(sent), T0)
    [received] = server.events_received()
    assert isinstance(received, HelloReceived)
    assert received.user is not None
    assert received.user.model_fields_set == {"id", "name", "role"}


def test_welcome_frame_has_documented_fields() -> None:
    server = ServerProtocol(T0, ServerLimits(max_frame_bytes=1000, max_in_flight_requests=3))
    server.receive_text(hello(resumeAfter=4), T0)
    server.events_received()

    server.accept(User(id="alice"), latest_seq=9, resumed=True)

    [welcome] = frames_of(server)
    assert welcome["type"] == "welcome"
    assert welcome["version"] == 2
    assert welcome["user"]["id"] == "alice"
    assert welcome["limits"] == {
        "maxFrameBytes": 1000,
        "heartbeatInterval": 20.0,
        "idleTimeout": 60.0,
        "maxInFlightRequests": 3,
    }
    assert welcome["seq"] == 9
    assert welcome["resume"] == "resumed"


def test_hello_picks_newest_common_version() -> None:
    server = ServerProtocol(T0, supported_versions=(1, 2, 3))
    server.receive_text(hello(versions=[4, 2, 1]), T0)

    [received] = server.events_received()
    assert isinstance(received, HelloReceived)
    assert received.version == 2
    server.accept(User(id="alice"), latest_seq=0)
    assert frames_of(server)[0]["version"] == 2


def test_valid_token_is_accepted_by_authenticate(link: Link) -> None:
    app = App(APP_ID, SECRET, identity_verification=True)
    link.client.connect(T0, token=create_user_token(app, "alice"))
    link.pump()
    [received] = link.take_server_events()
    assert isinstance(received, HelloReceived)

    authenticate(app, received.user_id, token=received.credentials.token)
    link.server.accept(User(id="alice"), latest_seq=0)
    link.pump()

    assert isinstance(link.take_client_events()[0], Connected)


@pytest.mark.parametrize(
    ("credentials", "code"),
    [
        ({}, "credentials_missing"),
        ({"token": TOKEN_SECRET_PART}, "token_malformed"),
        ({"signature": "ab" * 32}, "signature_mismatch"),
    ],
    ids=["missing", "malformed-token", "wrong-signature"],
)
def test_rejected_credentials_close_with_4001(
    link: Link, credentials: dict[str, str], code: str
) -> None:
    app = App(APP_ID, SECRET, identity_verification=True)
    link.client.connect(T0, token=credentials.get("token"), signature=credentials.get("signature"))
    link.pump()
    [received] = link.take_server_events()
    assert isinstance(received, HelloReceived)

    with pytest.raises(AuthError) as caught:
        authenticate(
            app,
            received.user_id,
            token=received.credentials.token,
            signature=received.credentials.signature,
        )
    link.server.reject(caught.value)
    link.pump()

    assert link.server_closed == Close(CloseCode.AUTHENTICATION_FAILED, code)
    [disconnected] = link.take_client_events()
    assert isinstance(disconnected, Disconnected)
    assert disconnected.code == 4001
    assert disconnected.policy is ReconnectPolicy.NEW_CREDENTIALS
    assert isinstance(disconnected.error, AuthError)
    assert disconnected.error.code == code
    assert TOKEN_SECRET_PART not in disconnected.error.message
    assert link.server.state is ServerState.CLOSED
    assert link.client.state is ClientState.DISCONNECTED


def test_reject_with_unexpected_error_hides_details() -> None:
    server = ServerProtocol(T0)
    server.receive_text(hello(), T0)
    server.events_received()

    server.reject(RuntimeError("connection to db at 10.0.0.5 failed"))

    error, close = error_and_close(server)
    assert close.code is CloseCode.INTERNAL_ERROR
    assert error["code"] == "internal_error"
    assert "10.0.0.5" not in error["message"]
    assert error["message"] == (
        "the server failed to handle the hello; the server log has the details"
    )


def test_credentials_never_in_repr_or_errors() -> None:
    server = ServerProtocol(T0)
    server.receive_text(hello(credentials={"token": TOKEN_SECRET_PART}), T0)
    [received] = server.events_received()
    assert TOKEN_SECRET_PART not in repr(received)

    bad = ServerProtocol(T0)
    bad.receive_text(hello(credentials={"token": TOKEN_SECRET_PART * 400}), T0)
    error, _ = error_and_close(bad)
    assert TOKEN_SECRET_PART not in error["message"]
    assert error["message"].startswith(
        "field 'credentials.token' of the hello frame is invalid (value hidden)"
    )


def test_reauthenticate_error_hides_token() -> None:
    server = open_server()

    server.receive_text(
        json.dumps({"type": "reauthenticate", "id": "r", "credentials": {"token": 12345678}}),
        T0,
    )

    [error] = frames_of(server)
    assert error["id"] == "r"
    assert "12345678" not in error["message"]
    assert server.state is ServerState.OPEN


def test_accept_and_reject_need_a_hello() -> None:
    server = ServerProtocol(T0)

    with pytest.raises(InvalidState, match=r"cannot call accept\(\) in state awaiting_hello"):
        server.accept(User(id="alice"), latest_seq=0)
    with pytest.raises(InvalidState, match=r"cannot call reject\(\) in state awaiting_hello"):
        server.reject(AuthError("no"))


def test_accept_after_close_does_nothing() -> None:
    server = ServerProtocol(T0)
    server.receive_text(hello(), T0)
    server.connection_closed()

    server.accept(User(id="alice"), latest_seq=0)
    server.reject(AuthError("late"))

    assert server.frames_to_send() == []
    assert server.state is ServerState.CLOSED


def test_client_connect_rejects_another_user() -> None:
    client = ClientProtocol(APP_ID, "alice")

    with pytest.raises(InvalidInput, match=r"user\.id 'bob' must equal userId 'alice'"):
        client.connect(T0, user=User(id="bob"))
    assert client.state is ClientState.DISCONNECTED


def test_client_connect_twice_is_invalid(link: Link) -> None:
    link.client.connect(T0)

    with pytest.raises(InvalidState, match="cannot connect in state connecting"):
        link.client.connect(T0)


# -- versions ---------------------------------------------------------------------------


def test_unsupported_version_closes_with_4002() -> None:
    server = ServerProtocol(T0)

    server.receive_text(hello(versions=[0, 3]), T0)

    error, close = error_and_close(server)
    assert close == Close(CloseCode.UNSUPPORTED_VERSION, "unsupported_version")
    assert error["code"] == "unsupported_version"
    assert error["kind"] == "protocol_error"
    assert error["message"] == (
        "protocol versions [0, 3] are not supported: this server speaks 1, 2; update the client"
    )
    assert server.events_received() == []


def test_newer_hello_fields_still_get_version_error() -> None:
    server = ServerProtocol(T0)

    server.receive_text(hello(versions=[7], compression="zstd"), T0)

    error, close = error_and_close(server)
    assert error["code"] == "unsupported_version"
    assert close.code is CloseCode.UNSUPPORTED_VERSION


def test_client_reports_unsupported_version() -> None:
    link = Link(client=ClientProtocol(APP_ID, "alice", supported_versions=(5,)))

    link.client.connect(T0)
    link.pump()

    [disconnected] = link.take_client_events()
    assert isinstance(disconnected, Disconnected)
    assert disconnected.policy is ReconnectPolicy.STOP
    assert disconnected.error.code == "unsupported_version"


def test_client_rejects_version_it_did_not_offer() -> None:
    client = ClientProtocol(APP_ID, "alice")
    client.connect(T0)
    client.frames_to_send()

    client.receive_text(
        json.dumps(
            {
                "type": "welcome",
                "version": 3,
                "user": {"id": "alice"},
                "limits": {
                    "maxFrameBytes": 100,
                    "heartbeatInterval": 1,
                    "idleTimeout": 2,
                    "maxInFlightRequests": 1,
                },
                "seq": 0,
                "resume": "fresh",
            }
        ),
        T0,
    )

    assert client.close_to_send() == Close(CloseCode.PROTOCOL_ERROR, "protocol_error")
    [disconnected] = client.events_received()
    assert isinstance(disconnected, Disconnected)
    assert "protocol version 3" in disconnected.error.message


# -- malformed frames ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{", "frame is not valid JSON: Expecting property name enclosed in double quotes"),
        ("hello", "frame is not valid JSON: Expecting value at line 1 column 1"),
        ('{"type": "ping", "x": NaN}', "frame is not valid JSON: NaN is not a JSON number"),
        ("[" * 100_000 + "]" * 100_000, "frame is not valid JSON: it is nested too deeply"),
        ("[1, 2]", "frame is a JSON array, but it must be a JSON object with a 'type' field"),
        ('"hello"', "frame is a JSON string, but it must be a JSON object"),
        ('{"versions": [1]}', "frame has no 'type' field: use one of hello, ping, pong,"),
        ('{"type": 5}', "unknown frame type 5: use one of hello, ping, pong, sync_user,"),
        ('{"type": "subscribe"}', 'unknown frame type "subscribe": use one of hello,'),
    ],
    ids=[
        "truncated",
        "not-json",
        "nan",
        "deep-nesting",
        "array",
        "string",
        "missing-type",
        "type-not-string",
        "unknown-type",
    ],
)
def test_malformed_frame_closes_with_1002(text: str, message: str) -> None:
    server = ServerProtocol(T0, ServerLimits(max_frame_bytes=1_000_000))

    server.receive_text(text, T0)

    error, close = error_and_close(server)
    assert close == Close(CloseCode.PROTOCOL_ERROR, "protocol_error")
    assert error["code"] == "protocol_error"
    assert error["kind"] == "protocol_error"
    assert error["message"].startswith(message), error["message"]
    assert server.state is ServerState.CLOSED


def test_unknown_type_message_lists_every_client_type() -> None:
    server = ServerProtocol(T0)

    server.receive_text('{"type": "subscribe"}', T0)

    error, _ = error_and_close(server)
    assert error["message"] == 'unknown frame type "subscribe": use one of ' + ", ".join(
        CLIENT_FRAME_TYPES
    )


def test_invalid_hello_field_closes_and_names_it() -> None:
    server = ServerProtocol(T0)

    server.receive_text(hello(userId="a/b"), T0)

    error, close = error_and_close(server)
    assert close.code is CloseCode.PROTOCOL_ERROR
    assert error["message"].startswith(
        "field 'userId' of the hello frame has invalid value \"a/b\": string should match pattern"
    )


def test_missing_hello_field_is_named() -> None:
    server = ServerProtocol(T0)

    server.receive_text(json.dumps({"type": "hello", "versions": [2], "appId": APP_ID}), T0)

    error, _ = error_and_close(server)
    assert error["message"] == "field 'userId' of the hello frame is missing"


def test_hello_user_of_another_id_is_rejected() -> None:
    server = ServerProtocol(T0)

    server.receive_text(hello(user={"id": "mallory"}), T0)

    error, close = error_and_close(server)
    assert close.code is CloseCode.PROTOCOL_ERROR
    assert error["message"] == (
        "hello frame is invalid: user.id 'mallory' must equal userId 'alice', "
        "because a connection can only write its own user"
    )


def test_binary_frame_closes_with_1002() -> None:
    server = open_server()

    server.receive_bytes(b"\x00\x01", T0)

    error, close = error_and_close(server)
    assert close.code is CloseCode.PROTOCOL_ERROR
    assert error["message"] == "binary frame of 2 bytes received: send JSON in text frames"


# -- invalid requests ----------------------------------------------------------------------------


def test_missing_request_field_keeps_connection() -> None:
    server = open_server()

    server.receive_text(json.dumps({"type": "get_conversation", "id": "7"}), T0)

    [error] = frames_of(server)
    assert error == {
        "type": "error",
        "id": "7",
        "code": "invalid_input",
        "kind": "invalid_input",
        "message": "field 'conversationId' of the get_conversation frame is missing",
    }
    assert server.close_to_send() is None
    assert server.state is ServerState.OPEN
    assert server.events_received() == []


def test_text_over_limit_names_field_value_and_limit() -> None:
    server = open_server()
    request = {
        "type": "send_message",
        "id": "8",
        "conversationId": "c1",
        "text": "x" * (MAX_TEXT_LENGTH + 1),
        "idempotencyKey": "k",
    }

    server.receive_text(json.dumps(request), T0)

    [error] = frames_of(server)
    assert error["id"] == "8"
    assert error["code"] == "invalid_input"
    assert error["message"] == (
        "field 'text' of the send_message frame has invalid value "
        f'"{"x" * 39}... (20001 characters): string should have at most 20000 characters'
    )


def test_send_without_idempotency_key_is_invalid() -> None:
    server = open_server()

    server.receive_text(
        json.dumps({"type": "send_message", "id": "9", "conversationId": "c1", "text": "hi"}),
        T0,
    )

    [error] = frames_of(server)
    assert error["message"] == "field 'idempotencyKey' of the send_message frame is missing"


def test_unknown_request_field_lists_allowed_fields() -> None:
    server = open_server()

    server.receive_text(
        json.dumps({"type": "get_conversation", "id": "1", "conversationId": "c", "limit": 3}),
        T0,
    )

    [error] = frames_of(server)
    assert error["message"] == (
        "field 'limit' is not allowed in the get_conversation frame: use type, id, conversationId"
    )


def test_nested_field_error_names_path_and_counts_others() -> None:
    server = open_server()

    server.receive_text(
        json.dumps(
            {
                "type": "sync_conversation",
                "id": "1",
                "conversationId": "c",
                "newUsers": [{"id": "bob"}, {"id": "carol", "photoUrl": 5}],
                "participants": {"bob": {"access": "Owner"}},
            }
        ),
        T0,
    )

    [error] = frames_of(server)
    assert error["message"] == (
        "field 'participants.bob.access' of the sync_conversation frame has invalid value "
        "\"Owner\": input should be 'Read' or 'ReadWrite' (and 1 more problem)"
    )


@pytest.mark.parametrize(
    ("request_id", "message"),
    [
        (None, "get_conversation frame has no 'id' field: every request needs a client-chosen id"),
        ("a b", "field 'id' of the get_conversation frame has invalid value \"a b\""),
        ("", "field 'id' of the get_conversation frame has invalid value \"\""),
        (7, "field 'id' of the get_conversation frame has invalid value 7"),
    ],
    ids=["missing", "space", "empty", "number"],
)
def test_request_without_valid_id_closes(request_id: object, message: str) -> None:
    server = open_server()
    data: dict[str, object] = {"type": "get_conversation", "conversationId": "c"}
    if request_id is not None:
        data["id"] = request_id

    server.receive_text(json.dumps(data), T0)

    error, close = error_and_close(server)
    assert close.code is CloseCode.PROTOCOL_ERROR
    assert error["message"].startswith(message), error["message"]


def test_reused_request_id_closes() -> None:
    server = open_server()
    request = json.dumps({"type": "get_conversation", "id": "1", "conversationId": "c"})
    server.receive_text(request, T0)

    server.receive_text(request, T0)

    error, close = error_and_close(server)
    assert close.code is CloseCode.PROTOCOL_ERROR
    assert error["message"] == (
        "request id '1' is already used by a request without a response: "
        "use a new id for each request"
    )


def test_request_id_reusable_after_response() -> None:
    server = open_server()
    request = json.dumps({"type": "list_conversations", "id": "1"})
    server.receive_text(request, T0)
    server.send_result("1", [])

    server.receive_text(request, T0)

    assert len(server.events_received()) == 2
    assert server.state is ServerState.OPEN


def test_requests_over_in_flight_limit_are_rejected() -> None:
    server = open_server(limits=ServerLimits(max_in_flight_requests=2))
    for number in range(3):
        server.receive_text(json.dumps({"type": "list_conversations", "id": str(number)}), T0)

    assert len(server.events_received()) == 2
    [rejected] = frames_of(server)
    assert rejected["id"] == "2"
    assert rejected["code"] == "too_many_requests"
    assert rejected["message"] == (
        "request '2' rejected: 2 requests are without a response, and the limit is 2 "
        "(max_in_flight_requests); wait for responses before sending more"
    )
    assert server.state is ServerState.OPEN


# -- frame size ---------------------------------------------------------------------------------


def test_oversized_frame_closes_with_1009() -> None:
    server = open_server(limits=ServerLimits(max_frame_bytes=100))
    # 40 characters of 3 UTF-8 bytes each: under 100 characters, over 100 bytes.
    text = json.dumps(
        {"type": "send_message", "id": "1", "conversationId": "c", "text": "€" * 40},
        ensure_ascii=False,
    )
    size = len(text.encode())

    server.receive_text(text, T0)

    error, close = error_and_close(server)
    assert close == Close(CloseCode.MESSAGE_TOO_BIG, "frame_too_big")
    assert error["code"] == "frame_too_big"
    assert error["message"] == (
        f"frame of {size} bytes is larger than the limit of 100 bytes (max_frame_bytes): "
        "shorten the text or the custom data"
    )


def _get_conversation_of_size(size: int) -> str:
    """A get_conversation frame of exactly ``size`` bytes."""
    empty = json.dumps({"type": "get_conversation", "id": "1", "conversationId": ""})
    return json.dumps(
        {"type": "get_conversation", "id": "1", "conversationId": "c" * (size - len(empty))}
    )


def test_frame_at_size_limit_is_accepted() -> None:
    server = open_server(limits=ServerLimits(max_frame_bytes=200))

    server.receive_text(_get_conversation_of_size(200), T0)

    assert len(server.events_received()) == 1
    assert server.state is ServerState.OPEN


def test_frame_one_byte_over_limit_closes() -> None:
    server = open_server(limits=ServerLimits(max_frame_bytes=200))

    server.receive_text(_get_conversation_of_size(201), T0)

    error, close = error_and_close(server)
    assert close.code is CloseCode.MESSAGE_TOO_BIG
    assert error["message"].startswith("frame of 201 bytes is larger than the limit of 200 bytes")


def test_default_frame_limit_fits_longest_escaped_text() -> None:
    server = open_server()
    text = json.dumps(
        {
            "type": "send_message",
            "id": "1",
            "conversationId": "c",
            "text": "\x01" * MAX_TEXT_LENGTH,
            "custom": {f"key{number}": "v" * 1000 for number in range(100)},
            "idempotencyKey": "k" * 200,
        }
    )

    server.receive_text(text, T0)

    [received] = server.events_received()
    assert isinstance(received, RequestReceived)
    assert isinstance(received.request, SendMessage)


# -- state ---------------------------------------------------------------------------------------


def test_request_before_hello_closes() -> None:
    server = ServerProtocol(T0)

    server.receive_text(json.dumps({"type": "list_conversations", "id": "1"}), T0)

    error, close = error_and_close(server)
    assert close.code is CloseCode.PROTOCOL_ERROR
    assert error["message"] == (
        "the first frame must be a hello frame, got a list_conversations frame: "
        "send hello and wait for the welcome before sending requests"
    )
    assert server.events_received() == []


def test_invalid_request_before_hello_closes() -> None:
    server = ServerProtocol(T0)

    server.receive_text(json.dumps({"type": "get_conversation", "id": "1"}), T0)

    error, close = error_and_close(server)
    assert close.code is CloseCode.PROTOCOL_ERROR
    assert error["message"].startswith("get_conversation frame arrived before the welcome")


def test_request_while_authenticating_closes() -> None:
    server = ServerProtocol(T0)
    server.receive_text(hello(), T0)
    server.events_received()

    server.receive_text(json.dumps({"type": "list_conversations", "id": "1"}), T0)

    error, close = error_and_close(server)
    assert close.code is CloseCode.PROTOCOL_ERROR
    assert error["message"] == (
        "list_conversations frame arrived before the welcome: "
        "wait for the welcome before sending other frames"
    )
    assert server.events_received() == []


def test_second_hello_closes() -> None:
    server = open_server()

    server.receive_text(hello(), T0)

    error, close = error_and_close(server)
    assert close.code is CloseCode.PROTOCOL_ERROR
    assert error["message"] == "hello frame arrived twice: send it once, as the first frame"


def test_frames_after_close_are_ignored() -> None:
    server = open_server()
    server.connection_closed()

    server.receive_text(json.dumps({"type": "list_conversations", "id": "1"}), T0)
    server.receive_text("{", T0)

    assert server.events_received() == []
    assert server.frames_to_send() == []
    assert server.close_to_send() is None


def test_server_responds_to_ping() -> None:
    server = open_server()

    server.receive_text('{"type": "ping"}', T0)

    assert frames_of(server) == [{"type": "pong"}]


def test_request_received_carries_validated_request() -> None:
    server = open_server()

    server.receive_text(
        json.dumps({"type": "get_conversation", "id": "abc", "conversationId": "c1"}), T0
    )

    assert server.events_received() == [
        RequestReceived(request_id="abc", request=GetConversation(conversation_id="c1"))
    ]
    assert server.in_flight == 1


# -- responses -------------------------------------------------------------------------------------


def test_send_result_checks_result_type() -> None:
    server = open_server()
    server.receive_text(
        json.dumps({"type": "get_conversation", "id": "1", "conversationId": "c"}), T0
    )

    with pytest.raises(TypeError, match="result of the get_conversation request '1' must be"):
        server.send_result("1", User(id="alice"))

    assert server.in_flight == 1
    assert server.frames_to_send() == []


def test_send_result_for_unknown_request_is_invalid() -> None:
    server = open_server()

    with pytest.raises(InvalidState, match="no request with id 'x' waits for a response"):
        server.send_result("x", None)
    with pytest.raises(InvalidState, match="no request with id 'x' waits for a response"):
        server.send_error("x", ChatError("no"))


def test_send_error_hides_unexpected_exception() -> None:
    server = open_server()
    server.receive_text(json.dumps({"type": "list_conversations", "id": "1"}), T0)

    server.send_error("1", KeyError("secret row 42"))

    [error] = frames_of(server)
    assert error == {
        "type": "error",
        "id": "1",
        "code": "internal_error",
        "kind": "chat_error",
        "message": "the server failed to run the list_conversations request '1'; "
        "the server log has the details",
    }


def test_responses_after_close_are_dropped() -> None:
    server = open_server()
    server.receive_text(json.dumps({"type": "list_conversations", "id": "1"}), T0)
    server.connection_closed()

    server.send_result("1", [])
    server.send_error("1", ChatError("late"))

    assert server.frames_to_send() == []


# -- boundaries ----------------------------------------------------------------------------------


_FORBIDDEN_MODULES = {
    "asyncio",
    "socket",
    "ssl",
    "select",
    "selectors",
    "threading",
    "multiprocessing",
    "time",
    "websockets",
    "starlette",
    "uvicorn",
    "httpx",
}
_FORBIDDEN_PACKAGE_MODULES = {"service", "store", "broker", "session", "embedded", "components"}


def test_protocol_package_imports_no_io() -> None:
    package = Path(__file__).parent.parent / "talkjs_components" / "protocol"
    sources = sorted(package.glob("*.py"))
    assert len(sources) >= 8

    for source in sources:
        tree = ast.parse(source.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level == 2:
                    parent = (node.module or "").split(".")[0]
                    assert parent not in _FORBIDDEN_PACKAGE_MODULES, (source.name, parent)
                names = [node.module or ""] if node.level == 0 else []
            else:
                continue
            for name in names:
                assert name.split(".")[0] not in _FORBIDDEN_MODULES, (source.name, name)


def _doc_examples() -> list[str]:
    text = (Path(__file__).parent.parent / "docs" / "protocol.md").read_text(encoding="utf-8")
    return re.findall(r"```json\n(.*?)```", text, flags=re.DOTALL)


def test_doc_examples_cover_every_frame_type() -> None:
    types = {json.loads(example)["type"] for example in _doc_examples()}

    assert types == set(CLIENT_FRAME_TYPES) | {"welcome", "result", "error", "event"}


@pytest.mark.parametrize("example", _doc_examples())
def test_doc_example_decodes(example: str) -> None:
    frame_type = json.loads(example)["type"]

    if frame_type in CLIENT_FRAME_TYPES:
        decode_client_frame(example, max_bytes=10_000, supported_versions=SUPPORTED_VERSIONS)
    if frame_type not in CLIENT_FRAME_TYPES or frame_type in ("ping", "pong"):
        decode_server_frame(example)
