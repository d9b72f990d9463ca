"""Tests of the protocol's timers, shutdown and close codes.

Time is passed as seconds after ``T0``; nothing here sleeps.
"""

from __future__ import annotations

import json
import math

import pytest

from talkjs_components.errors import AuthError, InvalidInput
from talkjs_components.models import User
from talkjs_components.protocol import (
    ClientProtocol,
    ClientState,
    Close,
    CloseCode,
    Connected,
    Disconnected,
    GetConversation,
    ListConversations,
    ReconnectPolicy,
    RequestFailed,
    RequestReceived,
    ResponseReceived,
    ServerLimits,
    ServerProtocol,
    ServerState,
    reconnect_policy,
)

from .test_protocol import APP_ID, T0, Link, error_and_close, frames_of, hello, open_server

# -- server heartbeat ------------------------------------------------------------------


def test_server_pings_after_heartbeat_interval() -> None:
    server = open_server()
    assert server.next_deadline() == T0 + 20

    server.handle_timer(T0 + 19.9)
    assert server.frames_to_send() == []

    server.handle_timer(T0 + 20)
    assert frames_of(server) == [{"type": "ping"}]
    assert server.next_deadline() == T0 + 60

    server.handle_timer(T0 + 30)
    assert server.frames_to_send() == []


def test_any_received_frame_restarts_heartbeat() -> None:
    server = open_server()
    server.handle_timer(T0 + 20)
    server.frames_to_send()

    server.receive_text('{"type": "pong"}', T0 + 25)

    assert server.next_deadline() == T0 + 45
    server.handle_timer(T0 + 60)
    assert frames_of(server) == [{"type": "ping"}]
    assert server.state is ServerState.OPEN


def test_server_closes_idle_connection() -> None:
    server = open_server()
    server.handle_timer(T0 + 20)
    server.frames_to_send()

    server.handle_timer(T0 + 60)

    error, close = error_and_close(server)
    assert close == Close(CloseCode.IDLE_TIMEOUT, "idle_timeout")
    assert error["code"] == "idle_timeout"
    assert error["message"] == (
        "no frame arrived from the client for 60 s (idle_timeout): respond to each ping with a pong"
    )
    assert server.state is ServerState.CLOSED
    assert server.next_deadline() is None


def test_late_timer_closes_without_ping() -> None:
    server = open_server()

    server.handle_timer(T0 + 100)

    _, close = error_and_close(server)
    assert close.code is CloseCode.IDLE_TIMEOUT


def test_custom_heartbeat_limits_are_used() -> None:
    server = open_server(limits=ServerLimits(heartbeat_interval=1.5, idle_timeout=4))

    assert server.next_deadline() == T0 + 1.5
    server.handle_timer(T0 + 1.5)
    assert server.next_deadline() == T0 + 4


@pytest.mark.parametrize("state", ["awaiting_hello", "authenticating"])
def test_server_closes_slow_handshake(state: str) -> None:
    server = ServerProtocol(T0)
    if state == "authenticating":
        server.receive_text(hello(), T0 + 3)
    assert server.next_deadline() == T0 + 10

    server.handle_timer(T0 + 9.9)
    assert server.frames_to_send() == []
    server.handle_timer(T0 + 10)

    error, close = error_and_close(server)
    assert close == Close(CloseCode.IDLE_TIMEOUT, "handshake_timeout")
    assert error["message"] == (
        "the handshake did not complete within 10 s (handshake_timeout): "
        "send the hello as the first frame"
    )


def test_heartbeats_keep_quiet_link_open() -> None:
    link = Link()
    link.handshake()

    for second in range(1, 301):
        link.now = T0 + second
        link.server.handle_timer(link.now)
        link.client.handle_timer(link.now)
        link.pump()

    assert link.server.state is ServerState.OPEN
    assert link.client.state is ClientState.OPEN
    assert link.server_closed is None
    assert link.client_closed is None


# -- client timers --------------------------------------------------------------------------


def test_client_closes_when_welcome_is_late() -> None:
    client = ClientProtocol(APP_ID, "alice", handshake_timeout=5)
    client.connect(T0)
    assert client.next_deadline() == T0 + 5

    client.handle_timer(T0 + 4.9)
    assert client.events_received() == []
    client.handle_timer(T0 + 5)

    assert client.close_to_send() == Close(CloseCode.IDLE_TIMEOUT, "handshake_timeout")
    [disconnected] = client.events_received()
    assert isinstance(disconnected, Disconnected)
    assert disconnected.policy is ReconnectPolicy.RECONNECT
    assert disconnected.error.code == "handshake_timeout"
    assert disconnected.error.message == "no welcome arrived within 5 s of the hello"
    assert client.state is ClientState.DISCONNECTED


def test_client_closes_silent_connection() -> None:
    link = Link()
    link.handshake()
    assert link.client.next_deadline() == T0 + 60

    link.client.receive_text('{"type": "ping"}', T0 + 30)
    assert frames_of(link.client) == [{"type": "pong"}]
    assert link.client.next_deadline() == T0 + 90

    link.client.handle_timer(T0 + 90)

    assert link.client.close_to_send() == Close(CloseCode.IDLE_TIMEOUT, "idle_timeout")
    events = link.client.events_received()
    disconnected = events[-1]
    assert isinstance(disconnected, Disconnected)
    assert disconnected.policy is ReconnectPolicy.RECONNECT
    assert disconnected.error.message == "no frame arrived from the server for 60 s"
    assert link.client.next_deadline() is None


def test_client_has_no_deadline_before_connect() -> None:
    client = ClientProtocol(APP_ID, "alice")

    assert client.next_deadline() is None
    client.handle_timer(T0 + 1000)
    assert client.events_received() == []


# -- limits ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("limits", "message"),
    [
        ({"max_frame_bytes": 0}, "max_frame_bytes must be a positive integer, got 0"),
        ({"max_in_flight_requests": True}, "max_in_flight_requests must be a positive integer"),
        ({"heartbeat_interval": -1}, "heartbeat_interval must be a positive number of seconds"),
        ({"idle_timeout": math.inf}, "idle_timeout must be a positive number of seconds, got inf"),
        ({"handshake_timeout": "10"}, "handshake_timeout must be a positive number of seconds"),
        (
            {"heartbeat_interval": 30, "idle_timeout": 30},
            "idle_timeout (30 s) must be longer than heartbeat_interval (30 s)",
        ),
    ],
    ids=["frame-zero", "in-flight-bool", "heartbeat-negative", "idle-inf", "string", "idle-short"],
)
def test_server_limits_reject_invalid_values(limits: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        ServerLimits(**limits)  # type: ignore[arg-type]  # invalid types are the point

    assert caught.value.message.startswith(message)


# -- shutdown ---------------------------------------------------------------------------------


def test_shutdown_drains_then_goes_away() -> None:
    link = Link()
    link.handshake()
    link.take_client_events()
    in_flight = link.client.request(GetConversation(conversation_id="c1"))
    link.pump()
    link.take_server_events()

    link.server.shutdown()
    link.pump()
    assert link.server.state is ServerState.CLOSING
    assert link.server_closed is None

    rejected = link.client.request(ListConversations())
    link.pump()
    assert link.take_server_events() == []
    assert link.take_client_events() == []

    link.server.send_error(in_flight, AuthError("late response", code="token_expired"))
    link.pump()

    assert link.server_closed == Close(CloseCode.GOING_AWAY, "server_shutting_down")
    failed, disconnected = link.take_client_events()
    assert isinstance(failed, RequestFailed)
    assert failed.request_id == in_flight
    assert isinstance(disconnected, Disconnected)
    assert disconnected.code == 1001
    assert disconnected.policy is ReconnectPolicy.RECONNECT
    assert link.client.pending_requests == 1

    new_link = Link(client=link.client)
    new_link.handshake()
    [resent] = new_link.take_server_events()
    assert isinstance(resent, RequestReceived)
    assert resent.request_id == rejected


def test_request_during_shutdown_gets_shutting_down_error() -> None:
    server = open_server()
    server.receive_text(json.dumps({"type": "list_conversations", "id": "1"}), T0)
    server.shutdown()

    server.receive_text(json.dumps({"type": "list_conversations", "id": "2"}), T0)
    server.receive_text(json.dumps({"type": "get_conversation", "id": "3"}), T0)

    rejected = frames_of(server)
    assert [frame["id"] for frame in rejected] == ["2", "3"]
    assert {frame["code"] for frame in rejected} == {"server_shutting_down"}
    assert rejected[0]["message"] == (
        "the server is shutting down and did not run request '2': send it again after reconnecting"
    )
    assert server.close_to_send() is None

    server.send_result("1", [])

    [result] = frames_of(server)
    assert result == {"type": "result", "id": "1", "result": []}
    assert server.close_to_send() == Close(CloseCode.GOING_AWAY, "server_shutting_down")


def test_shutdown_without_requests_closes_at_once() -> None:
    server = open_server()

    server.shutdown()

    assert server.frames_to_send() == []
    assert server.close_to_send() == Close(CloseCode.GOING_AWAY, "server_shutting_down")
    assert server.state is ServerState.CLOSED


@pytest.mark.parametrize("hello_received", [False, True], ids=["awaiting-hello", "authenticating"])
def test_shutdown_during_handshake_closes_at_once(hello_received: bool) -> None:
    server = ServerProtocol(T0)
    if hello_received:
        server.receive_text(hello(), T0)

    server.shutdown()

    assert server.close_to_send() == Close(CloseCode.GOING_AWAY, "server_shutting_down")
    server.accept(User(id="alice"), latest_seq=0)
    assert server.frames_to_send() == []


def test_shutdown_after_close_does_nothing() -> None:
    server = open_server()
    server.connection_closed()

    server.shutdown()
    server.shutdown()

    assert server.close_to_send() is None
    assert server.frames_to_send() == []


# -- closing -----------------------------------------------------------------------------------


def test_server_close_with_error_explains_it() -> None:
    link = Link()
    link.handshake()
    link.take_client_events()

    link.server.close(
        CloseCode.AUTHENTICATION_FAILED,
        AuthError("The user token expired.", code="token_expired"),
    )
    link.pump()

    assert link.server_closed == Close(CloseCode.AUTHENTICATION_FAILED, "token_expired")
    [disconnected] = link.take_client_events()
    assert isinstance(disconnected, Disconnected)
    assert disconnected.policy is ReconnectPolicy.NEW_CREDENTIALS
    assert isinstance(disconnected.error, AuthError)
    assert disconnected.error.code == "token_expired"
    assert disconnected.error.message == "The user token expired."


def test_server_close_without_error_sends_only_close() -> None:
    server = open_server()

    server.close(CloseCode.NORMAL)

    assert server.frames_to_send() == []
    assert server.close_to_send() == Close(CloseCode.NORMAL, "normal")
    assert server.close_to_send() is None


def test_client_reports_close_without_error_frame() -> None:
    link = Link()
    link.handshake()
    link.take_client_events()

    link.client.connection_closed(1012, "restart")

    [disconnected] = link.client.events_received()
    assert isinstance(disconnected, Disconnected)
    assert disconnected.code == 1012
    assert disconnected.reason == "restart"
    assert disconnected.policy is ReconnectPolicy.RECONNECT
    assert disconnected.error.code == "connection_lost"
    assert disconnected.error.message == (
        "the server closed the connection with code 1012 (restart)"
    )


def test_close_while_disconnected_fails_requests_quietly() -> None:
    client = ClientProtocol(APP_ID, "alice")
    request_id = client.request(ListConversations())

    client.close()

    [failed] = client.events_received()
    assert isinstance(failed, RequestFailed)
    assert failed.request_id == request_id
    assert failed.error.code == "connection_closed"
    assert client.close_to_send() is None
    client.close()
    assert client.events_received() == []


def test_connection_closed_twice_reports_once() -> None:
    link = Link()
    link.handshake()
    link.take_client_events()

    link.client.connection_closed(None)
    link.client.connection_closed(None)

    assert len(link.client.events_received()) == 1


def test_client_ignores_frames_while_disconnected() -> None:
    client = ClientProtocol(APP_ID, "alice")

    client.receive_text('{"type": "ping"}', T0)

    assert client.frames_to_send() == []
    assert client.events_received() == []


def test_reconnect_after_going_away_reaches_open() -> None:
    link = Link()
    link.handshake()
    link.server.shutdown()
    link.pump()

    new_link = Link(client=link.client)
    new_link.handshake(resumed=True)

    assert isinstance(new_link.take_client_events()[-1], Connected)
    assert new_link.client.state is ClientState.OPEN


def test_response_while_closing_reaches_client() -> None:
    link = Link()
    link.handshake()
    link.take_client_events()
    request_id = link.client.request(ListConversations())
    link.pump()
    link.server.shutdown()

    link.server.send_result(request_id, [])
    link.pump()

    response = link.take_client_events()[0]
    assert response == ResponseReceived(
        request_id=request_id, request=ListConversations(), result=[]
    )


@pytest.mark.parametrize(
    ("code", "policy"),
    [
        (None, ReconnectPolicy.RECONNECT),
        (1000, ReconnectPolicy.STOP),
        (1001, ReconnectPolicy.RECONNECT),
        (1002, ReconnectPolicy.STOP),
        (1006, ReconnectPolicy.RECONNECT),
        (1009, ReconnectPolicy.STOP),
        (1011, ReconnectPolicy.RECONNECT),
        (1012, ReconnectPolicy.RECONNECT),
        (4001, ReconnectPolicy.NEW_CREDENTIALS),
        (4002, ReconnectPolicy.STOP),
        (4003, ReconnectPolicy.RECONNECT),
        (4004, ReconnectPolicy.RECONNECT),
        (4999, ReconnectPolicy.RECONNECT),
    ],
)
def test_reconnect_policy_of_close_code(code: int | None, policy: ReconnectPolicy) -> None:
    assert reconnect_policy(code) is policy


def test_close_reason_is_cut_to_123_bytes() -> None:
    close = Close(CloseCode.NORMAL, "é" * 100)

    assert len(close.reason.encode()) <= 123
    assert close.reason.endswith("...")
    assert close.reason.startswith("é" * 60)
