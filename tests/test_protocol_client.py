"""Tests of the client protocol: requests and responses, idempotent sends, events and resume."""

from __future__ import annotations

import json
from typing import Any

import pytest

from talkjs_components.errors import (
    AuthError,
    ChatError,
    InvalidInput,
    NotFound,
    PermissionDenied,
    StorageError,
)
from talkjs_components.models import (
    AccessLevel,
    ChatEvent,
    Conversation,
    ConversationAttributes,
    ConversationUpdated,
    EventsPage,
    Message,
    MessageDeleted,
    MessageEdited,
    MessageSent,
    MessagesPage,
    MessagesRead,
    Participation,
    PresenceChanged,
    TypingChanged,
    UnreadConversation,
    UnreadsSnapshot,
    User,
)
from talkjs_components.protocol import (
    ClientProtocol,
    ClientState,
    Close,
    CloseCode,
    Connected,
    DeleteMessage,
    Disconnected,
    EditMessage,
    EventFrameEncoder,
    EventReceived,
    EventsAfter,
    GetConversation,
    GetUnreadsSnapshot,
    GetUsers,
    HelloReceived,
    InvalidState,
    LeaveConversation,
    ListConversations,
    ListMessages,
    MarkRead,
    OnlineUsers,
    ProtocolError,
    Reauthenticate,
    ReconnectPolicy,
    ReloadNeeded,
    Request,
    RequestFailed,
    RequestReceived,
    ResponseReceived,
    ResumeStatus,
    SendMessage,
    ServerLimits,
    ServerProtocol,
    SetTyping,
    SyncConversation,
    SyncUser,
    WireCredentials,
)
from talkjs_components.protocol.codec import decode_server_frame, encode_event_frame, encode_frame
from talkjs_components.protocol.frames import EventFrame
from talkjs_components.protocol.requests import REQUEST_TYPES

from .test_protocol import APP_ID, T0, Link, frames_of

BOB = User(id="bob", name="Bob")
CONVERSATION = Conversation(
    id="c1", participants={"alice": Participation(), "bob": Participation()}, created_at=1
)
MESSAGE = Message(id="m1", conversation_id="c1", sender_id="alice", text="hi", created_at=2, seq=3)
TYPING = TypingChanged(conversation=CONVERSATION, user_id="bob", typing=True, expires_at=9)


def stored_event(seq: int) -> ConversationUpdated:
    """An event of the event log, at position ``seq``."""
    return ConversationUpdated(conversation=CONVERSATION, seq=seq)


ROUND_TRIPS: list[tuple[Request, object]] = [
    (SyncUser(user=User(id="alice", name="Alice")), User(id="alice", name="Alice")),
    (GetUsers(user_ids=["bob", "carol"]), {"bob": BOB}),
    (
        SyncConversation(
            conversation_id="c1",
            attributes=ConversationAttributes(subject="Lunch"),
            participants={"bob": Participation(access=AccessLevel.READ)},
            new_users=[BOB],
        ),
        CONVERSATION,
    ),
    (GetConversation(conversation_id="c1"), CONVERSATION),
    (ListConversations(), [CONVERSATION]),
    (
        SendMessage(conversation_id="c1", text="hi", custom={"a": "b"}, idempotency_key="k1"),
        MESSAGE,
    ),
    (
        ListMessages(conversation_id="c1", limit=10, before="m9"),
        MessagesPage(messages=[MESSAGE], has_more=True),
    ),
    (MarkRead(conversation_id="c1", message_id="m1"), None),
    (EditMessage(conversation_id="c1", message_id="m1", text="x", custom={"a": None}), MESSAGE),
    (DeleteMessage(conversation_id="c1", message_id="m1"), None),
    (SetTyping(conversation_id="c1", typing=True), None),
    (LeaveConversation(conversation_id="c1"), None),
    (OnlineUsers(user_ids=["bob"]), ["bob"]),
    (
        GetUnreadsSnapshot(),
        UnreadsSnapshot(
            unreads=[
                UnreadConversation(
                    conversation=CONVERSATION, last_message=MESSAGE, unread_message_count=1
                )
            ],
            read_positions={"c1": 2},
            as_of_event_seq=3,
        ),
    ),
    (
        EventsAfter(after_seq=2, limit=50),
        EventsPage(
            events=[
                MessageSent(conversation=CONVERSATION, message=MESSAGE, sender=BOB, seq=4),
                TYPING,
            ],
            has_more=False,
            next_after_seq=9,
        ),
    ),
    (Reauthenticate(credentials=WireCredentials(token="new-token")), None),
]


def event_seqs(events: list[Any]) -> list[int | None]:
    """Return the ``seq`` of each event of a list of EventReceived."""
    seqs: list[int | None] = []
    for received in events:
        assert isinstance(received, EventReceived)
        seqs.append(received.event.seq)
    return seqs


def open_link(**server_limits: Any) -> Link:
    """A link whose handshake is done, with the server limits given."""
    link = Link(server=ServerProtocol(T0, ServerLimits(**server_limits)))
    link.handshake()
    link.take_client_events()
    return link


def reconnect(link: Link, **accept: Any) -> tuple[Link, HelloReceived]:
    """Drop ``link``'s connection, then connect its client to a new server."""
    link.server.connection_closed()
    link.client.connection_closed(None)
    new_link = Link(client=link.client)
    new_link.client_events = link.take_client_events()
    received = new_link.handshake(**accept)
    return new_link, received


class FakeChat:
    """Stores sent messages once per idempotency key, like ChatService.send_message."""

    def __init__(self) -> None:
        self.messages: dict[str, Message] = {}

    def send(self, request: SendMessage) -> Message:
        stored = self.messages.get(request.idempotency_key)
        if stored is None:
            stored = Message(
                id=f"m{len(self.messages) + 1}",
                conversation_id=request.conversation_id,
                sender_id="alice",
                text=request.text,
                created_at=1,
            )
            self.messages[request.idempotency_key] = stored
        return stored


# -- requests and responses -----------------------------------------------------------


def test_round_trips_cover_every_request_type() -> None:
    assert {request.type for request, _ in ROUND_TRIPS} == set(REQUEST_TYPES)


@pytest.mark.parametrize(
    ("request_model", "result"), ROUND_TRIPS, ids=[request.type for request, _ in ROUND_TRIPS]
)
def test_request_round_trip(request_model: Request, result: object) -> None:
    link = open_link()

    request_id = link.client.request(request_model)
    link.pump()

    [received] = link.take_server_events()
    assert received == RequestReceived(request_id=request_id, request=request_model)
    assert isinstance(received, RequestReceived)
    assert received.request.model_dump() == request_model.model_dump()

    link.server.send_result(request_id, result)
    link.pump()

    [response] = link.take_client_events()
    assert response == ResponseReceived(request_id=request_id, request=request_model, result=result)
    assert link.client.pending_requests == 0


def test_partial_updates_keep_unset_fields_off_the_wire() -> None:
    client = ClientProtocol(APP_ID, "alice")
    link = Link(client=client)
    link.handshake()
    client.request(SyncUser(user=User(id="alice", photo_url=None)))
    client.request(
        SyncConversation(
            conversation_id="c1",
            attributes=ConversationAttributes(subject=None),
            participants={"bob": Participation(notify=False)},
        )
    )

    sync_user, sync_conversation = frames_of(client)

    assert sync_user["user"] == {"id": "alice", "photoUrl": None}
    assert sync_conversation["attributes"] == {"subject": None}
    # Bob's access is not sent, so the server keeps his stored access.
    assert sync_conversation["participants"] == {"bob": {"notify": False}}
    link.server.receive_text(json.dumps(sync_user), T0)
    link.server.receive_text(json.dumps(sync_conversation), T0)
    [received_user, received_conversation] = link.server.events_received()
    assert isinstance(received_user, RequestReceived)
    assert isinstance(received_user.request, SyncUser)
    assert received_user.request.user.model_fields_set == {"id", "photo_url"}
    assert isinstance(received_conversation, RequestReceived)
    assert isinstance(received_conversation.request, SyncConversation)
    participants = received_conversation.request.participants
    assert participants is not None
    assert participants["bob"].model_fields_set == {"notify"}


@pytest.mark.parametrize(
    "error",
    [
        NotFound("conversation 'c9' not found"),
        PermissionDenied("user 'alice' may not read conversation 'c9'"),
        InvalidInput("key reused for another message", code="idempotency_key_reused"),
        AuthError("The user token expired.", code="token_expired"),
        StorageError("database is locked"),
        ChatError("something else", code="odd_code"),
    ],
    ids=lambda error: error.code,
)
def test_error_response_rebuilds_error_class(error: ChatError) -> None:
    link = open_link()
    request_id = link.client.request(GetConversation(conversation_id="c9"))
    link.pump()

    link.server.send_error(request_id, error)
    link.pump()

    [failed] = link.take_client_events()
    assert isinstance(failed, RequestFailed)
    assert failed.request_id == request_id
    assert type(failed.error) is type(error)
    assert failed.error.code == error.code
    assert failed.error.message == error.message
    assert link.client.state is ClientState.OPEN


def test_malformed_result_fails_only_that_request() -> None:
    link = open_link()
    request_id = link.client.request(GetConversation(conversation_id="c1"))
    link.client.frames_to_send()

    link.client.receive_text(
        json.dumps({"type": "result", "id": request_id, "result": {"id": "c/1"}}), T0
    )

    [failed] = link.client.events_received()
    assert isinstance(failed, RequestFailed)
    assert isinstance(failed.error, ProtocolError)
    assert failed.error.message.startswith(
        "field 'id' of the result frame has invalid value \"c/1\""
    )
    assert link.client.state is ClientState.OPEN


def test_response_to_unknown_request_closes_client() -> None:
    link = open_link()

    link.client.receive_text(json.dumps({"type": "result", "id": "99", "result": None}), T0)

    assert link.client.close_to_send() == Close(CloseCode.PROTOCOL_ERROR, "protocol_error")
    [disconnected] = link.client.events_received()
    assert isinstance(disconnected, Disconnected)
    assert disconnected.policy is ReconnectPolicy.STOP
    assert disconnected.error.message == "result frame for unknown request id '99'"


def test_malformed_server_frame_closes_client() -> None:
    link = open_link()

    link.client.receive_text('{"type": "welcome"}', T0)

    assert link.client.close_to_send() == Close(CloseCode.PROTOCOL_ERROR, "protocol_error")
    [disconnected] = link.client.events_received()
    assert isinstance(disconnected, Disconnected)
    assert disconnected.error.message == (
        "field 'version' of the welcome frame is missing (and 4 more problems)"
    )


def test_requests_before_welcome_go_out_in_order() -> None:
    link = Link()
    link.client.connect(T0)
    first = link.client.request(ListConversations())
    second = link.client.send_message("c1", "hi")
    third = link.client.request(GetConversation(conversation_id="c1"))

    assert [sent["type"] for sent in frames_of(link.client)] == ["hello"]

    link.server.receive_text(
        json.dumps({"type": "hello", "versions": [2], "appId": APP_ID, "userId": "alice"}), T0
    )
    link.server.events_received()
    link.server.accept(User(id="alice"), latest_seq=0)
    link.pump()

    received = link.take_server_events()
    assert [event.request_id for event in received] == [first, second, third]


def test_client_keeps_to_in_flight_limit() -> None:
    link = open_link(max_in_flight_requests=2)
    ids = [link.client.request(ListConversations()) for _ in range(3)]
    link.pump()

    assert [event.request_id for event in link.take_server_events()] == ids[:2]

    link.server.send_result(ids[0], [])
    link.pump()

    assert [event.request_id for event in link.take_server_events()] == ids[2:]


def test_client_fails_request_over_frame_limit() -> None:
    link = open_link(max_frame_bytes=300)

    request_id = link.client.send_message("c1", "x" * 400)
    link.pump()

    [failed] = link.take_client_events()
    assert isinstance(failed, RequestFailed)
    assert failed.request_id == request_id
    assert isinstance(failed.error, InvalidInput)
    assert failed.error.code == "frame_too_big"
    assert failed.error.message.startswith("send_message request not sent: frame of ")
    assert failed.error.message.endswith(
        "bytes is larger than the limit of 300 bytes (max_frame_bytes): "
        "shorten the text or the custom data"
    )
    assert link.take_server_events() == []
    assert link.client.state is ClientState.OPEN


def test_send_message_generates_distinct_keys() -> None:
    client = ClientProtocol(APP_ID, "alice", key_prefix="tab7")

    client.send_message("c1", "one")
    client.send_message("c1", "one")
    client.send_message("c1", "two", idempotency_key="mine")

    keys = [request.idempotency_key for _, request in client.unacknowledged_sends]
    assert keys == ["tab7-1", "tab7-2", "mine"]


def test_default_key_prefix_differs_between_clients() -> None:
    first = ClientProtocol(APP_ID, "alice")
    second = ClientProtocol(APP_ID, "alice")

    assert first.new_idempotency_key() != second.new_idempotency_key()


def test_send_message_rejects_invalid_arguments() -> None:
    client = ClientProtocol(APP_ID, "alice")

    with pytest.raises(InvalidInput, match="field 'text' of the send_message frame has invalid"):
        client.send_message("c1", "x" * 20_001)
    assert client.pending_requests == 0


# -- idempotent send across reconnects ----------------------------------------------------


def test_unacked_send_is_resent_with_same_key() -> None:
    chat = FakeChat()
    link = open_link()
    request_id = link.client.send_message("c1", "hello")
    link.pump()
    [received] = link.take_server_events()
    assert isinstance(received, RequestReceived)
    assert isinstance(received.request, SendMessage)
    first = chat.send(received.request)
    # The message is stored, but the connection drops before the response arrives.

    new_link, _ = reconnect(link, resumed=True)

    events = new_link.take_client_events()
    assert [type(event) for event in events] == [Disconnected, Connected]
    [resent] = new_link.take_server_events()
    assert isinstance(resent, RequestReceived)
    assert resent.request_id == request_id
    assert resent.request == received.request

    assert isinstance(resent.request, SendMessage)
    new_link.server.send_result(request_id, chat.send(resent.request))
    new_link.pump()

    [response] = new_link.take_client_events()
    assert isinstance(response, ResponseReceived)
    assert isinstance(response.result, Message)
    assert response.result.id == first.id
    assert len(chat.messages) == 1
    assert new_link.client.unacknowledged_sends == []


def test_unacked_sends_are_kept_while_disconnected() -> None:
    link = open_link()
    request_id = link.client.send_message("c1", "hello", idempotency_key="k")
    link.pump()

    link.client.connection_closed(CloseCode.GOING_AWAY, "server_shutting_down")

    [disconnected] = link.client.events_received()
    assert isinstance(disconnected, Disconnected)
    assert disconnected.policy is ReconnectPolicy.RECONNECT
    assert link.client.unacknowledged_sends == [
        (request_id, SendMessage(conversation_id="c1", text="hello", idempotency_key="k"))
    ]


def test_other_lost_requests_fail_and_unsent_ones_wait() -> None:
    link = open_link()
    lost = link.client.request(MarkRead(conversation_id="c1"))
    link.pump()
    link.take_server_events()

    link.client.connection_closed(None)
    waiting = link.client.request(ListConversations())

    [failed, disconnected] = link.client.events_received()
    assert isinstance(failed, RequestFailed)
    assert failed.request_id == lost
    assert failed.error.code == "connection_lost"
    assert failed.error.message == (
        f"the connection closed before request {lost} (mark_read) got a response; "
        "the server may have run it"
    )
    assert isinstance(disconnected, Disconnected)
    assert disconnected.code == 1006
    assert disconnected.error.message == "the connection dropped without a close frame"
    assert link.client.frames_to_send() == []

    link.server.connection_closed()
    new_link = Link(client=link.client)
    new_link.handshake()

    [sent] = new_link.take_server_events()
    assert isinstance(sent, RequestReceived)
    assert sent.request_id == waiting


def test_close_fails_every_pending_request() -> None:
    link = open_link()
    sent = link.client.send_message("c1", "hello")
    link.pump()

    link.client.close()

    failed, disconnected = link.client.events_received()
    assert isinstance(failed, RequestFailed)
    assert failed.request_id == sent
    assert failed.error.code == "connection_closed"
    assert failed.error.message == (
        f"the client closed before request {sent} (send_message) got a response. "
        "The message may have been stored."
    )
    assert isinstance(disconnected, Disconnected)
    assert disconnected.policy is ReconnectPolicy.STOP
    assert link.client.close_to_send() == Close(CloseCode.NORMAL, "client closed")
    assert link.client.state is ClientState.CLOSED
    with pytest.raises(InvalidState, match="cannot send a list_conversations request"):
        link.client.request(ListConversations())


# -- events and resume ---------------------------------------------------------------------------


def test_events_arrive_in_seq_order() -> None:
    link = Link()
    link.handshake(latest_seq=10)
    link.take_client_events()

    assert link.server.send_event(stored_event(11))
    assert link.server.send_event(stored_event(14))
    link.pump()

    assert link.take_client_events() == [
        EventReceived(event=stored_event(11)),
        EventReceived(event=stored_event(14)),
    ]
    assert link.client.last_seq == 14


def test_client_drops_events_it_already_saw() -> None:
    link = open_link()

    for seq in (11, 11, 9, 12):
        link.client.receive_text(
            json.dumps({"type": "event", "event": stored_event(seq).to_wire()}), T0
        )

    assert event_seqs(link.client.events_received()) == [11, 12]
    assert link.client.last_seq == 12


def test_events_without_seq_are_always_delivered() -> None:
    link = Link()
    link.handshake(latest_seq=10)
    link.take_client_events()

    assert link.server.send_event(TYPING)
    assert link.server.send_event(TYPING)
    link.pump()

    assert link.take_client_events() == [EventReceived(event=TYPING), EventReceived(event=TYPING)]
    assert link.client.last_seq == 10


def test_server_skips_events_at_or_below_last_sent() -> None:
    link = Link()
    link.handshake(latest_seq=10)

    assert not link.server.send_event(stored_event(10))
    assert link.server.send_event(stored_event(12))
    assert not link.server.send_event(stored_event(12))
    assert not link.server.send_event(stored_event(11))
    assert [sent["event"]["seq"] for sent in frames_of(link.server)] == [12]


def test_send_event_before_accept_is_invalid() -> None:
    server = ServerProtocol(T0)

    with pytest.raises(
        InvalidState, match="cannot send a conversation_updated event in state awaiting_hello"
    ):
        server.send_event(stored_event(3))


EVERY_EVENT_TYPE: list[ChatEvent] = [
    MessageSent(
        conversation=CONVERSATION,
        message=MESSAGE.model_copy(update={"text": "h\u00e9 \u05e9\u05dc\u05d5\u05dd \U0001f600"}),
        sender=User(id="alice", name="Ali\u00e7e"),
        seq=4,
    ),
    stored_event(5),
    MessagesRead(
        conversation=CONVERSATION,
        user_id="bob",
        last_read_message_id="m1",
        last_read_seq=3,
        unread_message_count=0,
        seq=6,
    ),
    MessageEdited(conversation=CONVERSATION, message=MESSAGE, seq=7),
    MessageDeleted(conversation=CONVERSATION, message_id="m1", message_seq=3, seq=8),
    TYPING,
    PresenceChanged(user_id="bob", online=True),
]


@pytest.mark.parametrize("event", EVERY_EVENT_TYPE, ids=lambda event: event.type)
def test_event_frame_encodings_agree(event: ChatEvent) -> None:
    fast = encode_event_frame(event)
    generic = encode_frame(EventFrame(event=event))

    assert json.loads(fast) == json.loads(generic)
    assert decode_server_frame(fast) == EventFrame(event=event)


def test_shared_encoder_encodes_event_once() -> None:
    encoder = EventFrameEncoder()
    servers = [ServerProtocol(T0, event_encoder=encoder) for _ in range(3)]
    for server in servers:
        server.receive_text(
            json.dumps({"type": "hello", "versions": [2], "appId": "app", "userId": "alice"}), T0
        )
        server.events_received()
        server.accept(User(id="alice"), latest_seq=0)
        server.frames_to_send()
    first = stored_event(1)

    for server in servers:
        server.send_event(first)
    sent = [server.frames_to_send() for server in servers]

    # The same str object: encoded once, not three times.
    assert sent[0][0] is sent[1][0]
    assert sent[1][0] is sent[2][0]
    assert json.loads(sent[0][0])["event"]["seq"] == 1


def test_shared_encoder_never_reuses_other_event() -> None:
    encoder = EventFrameEncoder()
    first = stored_event(1)
    equal_copy = stored_event(1)
    edited = MessageEdited(
        conversation=CONVERSATION, message=MESSAGE.model_copy(update={"text": "new"}), seq=2
    )

    texts = [encoder.encode(event) for event in (first, edited, equal_copy, first)]

    assert [json.loads(text)["event"]["seq"] for text in texts] == [1, 2, 1, 1]
    assert json.loads(texts[1])["event"]["message"]["text"] == "new"


def test_next_hello_resumes_after_last_seen_event() -> None:
    link = Link()
    link.handshake(latest_seq=0)
    link.server.send_event(stored_event(3))
    link.server.send_event(stored_event(7))
    link.pump()
    link.take_client_events()

    new_link, received = reconnect(link, latest_seq=9, resumed=True)

    assert received.resume_after == 7
    [_, connected] = new_link.take_client_events()
    assert isinstance(connected, Connected)
    assert connected.resume is ResumeStatus.RESUMED
    assert not new_link.server.send_event(stored_event(7))
    assert new_link.server.send_event(stored_event(8))
    assert new_link.server.send_event(stored_event(9))
    new_link.pump()
    assert event_seqs(new_link.take_client_events()) == [8, 9]
    assert new_link.client.last_seq == 9


def test_resume_gap_reports_reload_needed() -> None:
    client = ClientProtocol(APP_ID, "alice", last_seq=7)
    link = Link(client=client)

    received = link.handshake(latest_seq=50, resumed=False)

    assert received.resume_after == 7
    connected, reload_needed = link.take_client_events()
    assert isinstance(connected, Connected)
    assert connected.resume is ResumeStatus.GAP
    assert reload_needed == ReloadNeeded(
        resume_after=7,
        seq=50,
        message="the server no longer has every event after seq 7: reload conversations, "
        "unreads and open message lists",
    )
    assert client.last_seq == 50
    assert not link.server.send_event(stored_event(49))
    assert link.server.send_event(stored_event(51))
    link.pump()
    assert event_seqs(link.take_client_events()) == [51]


def test_hello_carries_resume_position_from_constructor() -> None:
    client = ClientProtocol(APP_ID, "alice", last_seq=33)

    client.connect(T0)

    [hello] = frames_of(client)
    assert hello["resumeAfter"] == 33


@pytest.mark.parametrize(
    ("resume_after", "latest_seq", "resumed", "message"),
    [
        (None, 5, True, "resumed=True, but the hello did not ask to resume"),
        (12, 10, True, "resumed=True, but the hello's resume_after 12 is above latest_seq 10"),
        (None, -1, False, "latest_seq must be an integer >= 0, got -1"),
    ],
    ids=["not-asked", "above-latest", "negative"],
)
def test_accept_checks_resume_arguments(
    resume_after: int | None, latest_seq: int, resumed: bool, message: str
) -> None:
    server = ServerProtocol(T0)
    hello: dict[str, Any] = {"type": "hello", "versions": [2], "appId": APP_ID, "userId": "a"}
    if resume_after is not None:
        hello["resumeAfter"] = resume_after
    server.receive_text(json.dumps(hello), T0)

    with pytest.raises(InvalidInput, match=message):
        server.accept(User(id="a"), latest_seq=latest_seq, resumed=resumed)


@pytest.mark.parametrize(
    ("last_seq", "resume"),
    [(None, "resumed"), (None, "gap"), (5, "fresh")],
    ids=["resumed-unasked", "gap-unasked", "fresh-when-asked"],
)
def test_client_rejects_inconsistent_resume(last_seq: int | None, resume: str) -> None:
    client = ClientProtocol(APP_ID, "alice", last_seq=last_seq)
    client.connect(T0)
    client.frames_to_send()
    welcome = {
        "type": "welcome",
        "version": 2,
        "user": {"id": "alice"},
        "limits": {
            "maxFrameBytes": 1000,
            "heartbeatInterval": 1,
            "idleTimeout": 2,
            "maxInFlightRequests": 1,
        },
        "seq": 9,
        "resume": resume,
    }

    client.receive_text(json.dumps(welcome), T0)

    [disconnected] = client.events_received()
    assert isinstance(disconnected, Disconnected)
    assert disconnected.error.message.startswith(f"the welcome has resume {resume!r}")
    assert client.state is ClientState.DISCONNECTED


def test_event_before_welcome_closes_client() -> None:
    client = ClientProtocol(APP_ID, "alice")
    client.connect(T0)

    client.receive_text(json.dumps({"type": "event", "event": TYPING.to_wire()}), T0)

    assert client.close_to_send() == Close(CloseCode.PROTOCOL_ERROR, "protocol_error")
    [disconnected] = client.events_received()
    assert isinstance(disconnected, Disconnected)
    assert disconnected.error.message == "event frame arrived before the welcome"
