"""TalkSession against the embedded backend and against a chat server, on real SQLite files.

Each test runs twice (the ``any_backend`` fixture): with the in-process
transport, and with the websocket transport to a server on 127.0.0.1. Closing
and starting the backend restarts the server in the second run.
"""

from __future__ import annotations

import asyncio
import functools
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from talkjs_components.auth import create_signature, create_user_token
from talkjs_components.broker.memory import MemoryBroker
from talkjs_components.errors import AuthError, ChatError, SessionDestroyed
from talkjs_components.models import (
    ChatEvent,
    ConversationAttributes,
    ConversationUpdated,
    EventsPage,
    MessageDeleted,
    MessageEdited,
    MessageSent,
    MessagesRead,
    UnreadConversation,
    UnreadsSnapshot,
    User,
)
from talkjs_components.service import TRUSTED, ChatService, Limits
from talkjs_components.session import (
    Backoff,
    BoxKind,
    SessionMessage,
    SessionStatus,
    TalkSession,
    UIBox,
    one_on_one_id,
)
from talkjs_components.session.transport import InProcessTransport, Transport
from talkjs_components.store.sqlite import SQLiteStore

from .remote_backend import ChatBackend
from .waiting import wait_until

EMBEDDED_ONLY = pytest.mark.embedded_only(
    reason="subclasses InProcessTransport to interleave service calls with its own"
)


@pytest.fixture
def backend(any_backend: ChatBackend) -> ChatBackend:
    """The backend of each run: embedded, then a chat server."""
    return any_backend


def _session(backend: ChatBackend, user_id: str = "alice") -> TalkSession:
    token = create_user_token(backend.app, user_id)
    return TalkSession(backend.app.app_id, user_id, token=token)


async def test_session_ready_with_token(backend: ChatBackend) -> None:
    session = _session(backend)
    await session.wait_ready()
    try:
        assert session.status is SessionStatus.READY
        assert session.me.name == "Alice"
        assert session.unreads.current == []
    finally:
        session.destroy()


async def test_session_ready_with_signature(backend: ChatBackend) -> None:
    signature = create_signature(backend.app, "bob").upper()
    session = TalkSession(backend.app.app_id, "bob", signature=signature)
    await session.wait_ready()
    session.destroy()
    assert session.status is SessionStatus.DESTROYED


async def test_session_token_fetcher_async(backend: ChatBackend) -> None:
    calls: list[str] = []

    async def fetch_token() -> str:
        calls.append("fetch")
        return create_user_token(backend.app, "alice")

    session = TalkSession(backend.app.app_id, "alice", token_fetcher=fetch_token)
    await session.wait_ready()
    session.destroy()
    assert calls == ["fetch"]


async def test_session_without_credentials_fails(backend: ChatBackend) -> None:
    session = TalkSession(backend.app.app_id, "alice")
    with pytest.raises(AuthError) as caught:
        await session.wait_ready()
    assert caught.value.code == "credentials_missing"
    assert session.status is SessionStatus.FAILED
    assert not session.is_alive


async def test_session_token_of_other_user_fails(backend: ChatBackend) -> None:
    token = create_user_token(backend.app, "bob")
    session = TalkSession(backend.app.app_id, "alice", token=token)
    with pytest.raises(AuthError) as caught:
        await session.wait_ready()
    assert caught.value.code == "token_subject"
    assert "alice" in caught.value.message


async def test_session_unknown_user_id_fails(backend: ChatBackend) -> None:
    session = _session(backend, "dave")
    with pytest.raises(AuthError) as caught:
        await session.wait_ready()
    assert caught.value.code == "user_not_found"
    assert "sync_user" in caught.value.message


async def test_session_sync_user_writes_fields(backend: ChatBackend) -> None:
    token = create_user_token(backend.app, "dave")
    me = User(id="dave", name="Dave", locale="fa-IR")
    session = TalkSession(backend.app.app_id, me, token=token)
    await session.wait_ready()
    session.destroy()
    stored = await backend.service.get_user("dave")
    assert stored.name == "Dave"
    assert stored.locale == "fa-IR"


async def test_destroyed_session_raises(backend: ChatBackend) -> None:
    session = _session(backend)
    await session.wait_ready()
    session.destroy()
    with pytest.raises(SessionDestroyed) as caught:
        await session.send_message("group", "hello")
    assert "send_message" in caught.value.message
    with pytest.raises(SessionDestroyed):
        session.on_message(lambda message: None)


async def test_on_message_payload(backend: ChatBackend) -> None:
    session = _session(backend)
    received: list[SessionMessage] = []
    session.on_message(received.append)
    await session.wait_ready()
    await backend.service.send_message(TRUSTED, "group", "hi alice", sender_id="bob")
    await wait_until(lambda: len(received) == 1, what="alice's on_message")
    session.destroy()

    message = received[0]
    assert message.body == "hi alice"
    assert message.sender_id == "bob"
    assert message.sender is not None and message.sender.name == "Bob"
    assert message.is_by_me is False
    assert message.conversation.id == "group"
    assert message.type == "text"


async def test_on_message_includes_own_messages(backend: ChatBackend) -> None:
    session = _session(backend)
    received: list[SessionMessage] = []
    session.on_message(received.append)
    await session.wait_ready()
    await session.send_message("group", "from me")
    await wait_until(lambda: len(received) == 1, what="own message")
    session.destroy()
    assert received[0].is_by_me is True


async def test_unsubscribed_handler_not_called(backend: ChatBackend) -> None:
    session = _session(backend)
    received: list[SessionMessage] = []
    later: list[SessionMessage] = []
    subscription = session.on_message(received.append)
    session.on_message(later.append)
    await session.wait_ready()
    subscription.unsubscribe()
    await backend.service.send_message(TRUSTED, "group", "after", sender_id="bob")
    await wait_until(lambda: len(later) == 1, what="the remaining handler")
    session.destroy()
    assert received == []


async def test_unreads_rise_and_clear(backend: ChatBackend) -> None:
    session = _session(backend)
    changes: list[list[UnreadConversation]] = []
    session.unreads.on_change(changes.append)
    await session.wait_ready()
    await wait_until(lambda: len(changes) == 1, what="the initial unreads")
    assert changes[0] == []

    await backend.service.send_message(TRUSTED, "group", "one", sender_id="bob")
    await backend.service.send_message(TRUSTED, "group", "two", sender_id="carol")
    await wait_until(
        lambda: bool(changes[-1]) and changes[-1][0].unread_message_count == 2,
        what="two unread messages",
    )
    assert changes[-1][0].last_message.text == "two"

    await session.mark_read("group")
    await wait_until(lambda: changes[-1] == [], what="unreads to clear")
    session.destroy()


async def test_unreads_late_handler_gets_current(backend: ChatBackend) -> None:
    await backend.service.send_message(TRUSTED, "group", "waiting", sender_id="bob")
    session = _session(backend)
    await session.wait_ready()
    changes: list[list[UnreadConversation]] = []
    session.unreads.on_change(changes.append)
    await wait_until(lambda: len(changes) == 1, what="the current unreads")
    session.destroy()
    assert [unread.unread_message_count for unread in changes[0]] == [1]


async def test_conversation_builder_sync_and_send(backend: ChatBackend) -> None:
    session = _session(backend)
    await session.wait_ready()
    conversation = session.get_or_create_conversation(one_on_one_id("alice", "bob"))
    conversation.set_participant("alice")
    conversation.set_participant("bob", access="Read")
    conversation.subject = "Plans"
    message = await conversation.send_message("lunch?")
    session.destroy()

    stored = await backend.service.get_conversation(TRUSTED, conversation.id)
    assert stored.subject == "Plans"
    assert stored.participants["bob"].access == "Read"
    assert message.text == "lunch?"


def test_one_on_one_id_is_symmetric() -> None:
    assert one_on_one_id("alice", "bob") == one_on_one_id("bob", "alice")
    assert len(one_on_one_id("alice", "bob")) == 20


def test_one_on_one_id_known_value() -> None:
    # sha1('["alice","bob"]') computed independently with `printf '%s' ... | sha1sum`.
    assert one_on_one_id(User(id="bob"), "alice") == "4714b845b86fbe0ed913"


async def test_builder_creates_missing_participant(backend: ChatBackend) -> None:
    session = _session(backend)
    await session.wait_ready()
    conversation = session.get_or_create_conversation("with-erin")
    conversation.set_participant(session.me)
    conversation.set_participant(User(id="erin", name="Erin"))
    conversation.set_participant(User(id="bob", name="Not Bob"))
    synced = await conversation.sync()
    session.destroy()

    assert set(synced.participants) == {"alice", "bob", "erin"}
    assert (await backend.service.get_user("erin")).name == "Erin"
    # An existing user's profile is not overwritten by another user's session.
    assert (await backend.service.get_user("bob")).name == "Bob"


async def test_backend_restarts_after_close(backend: ChatBackend) -> None:
    await backend.service.send_message(TRUSTED, "group", "before restart", sender_id="bob")
    await backend.close()
    await backend.start()
    session = _session(backend)
    await session.wait_ready()
    page = await session.list_messages("group")
    session.destroy()
    assert [message.text for message in page.messages] == ["before restart"]


class SendDuringSnapshot(InProcessTransport):
    """The real in-process transport, with bob sending and alice reading between
    the subscription and the unreads snapshot: the interleaving that concurrent
    senders hit by chance."""

    async def get_unreads_snapshot(self) -> UnreadsSnapshot:
        service, _ = self._bound
        await service.send_message(TRUSTED, "group", "first while connecting", sender_id="bob")
        await service.mark_read("alice", "group")
        await service.send_message(TRUSTED, "group", "second while connecting", sender_id="bob")
        return await super().get_unreads_snapshot()


@EMBEDDED_ONLY
async def test_unreads_counted_once_while_connecting(backend: ChatBackend) -> None:
    token = create_user_token(backend.app, "alice")
    session = TalkSession(backend.app.app_id, "alice", token=token, transport=SendDuringSnapshot())
    await session.wait_ready()
    await backend.service.send_message(TRUSTED, "group", "after connecting", sender_id="bob")
    stored = {
        unread.conversation.id: unread.unread_message_count
        for unread in await backend.service.get_unreads("alice")
    }
    assert stored == {"group": 2}
    await wait_until(
        lambda: [u.unread_message_count for u in session.unreads.current or []] == [2],
        what="the session's count to match the store's",
    )
    # The queued events of the first message and the read are skipped, not applied late.
    await asyncio.sleep(0.05)
    assert [u.unread_message_count for u in session.unreads.current or []] == [2]
    session.destroy()


def _total_unread(session: TalkSession) -> int:
    return sum(unread.unread_message_count for unread in session.unreads.current or [])


def _unread_equals(session: TalkSession, expected: int) -> bool:
    return _total_unread(session) == expected


async def test_unreads_match_store_under_concurrent_sends(backend: ChatBackend) -> None:
    for attempt in range(20):
        await backend.service.mark_read("alice", "group")
        session = _session(backend)

        async def send_burst(attempt: int = attempt) -> None:
            for number in range(5):
                await backend.service.send_message(
                    TRUSTED, "group", f"m{attempt}-{number}", sender_id="bob"
                )

        await asyncio.gather(session.wait_ready(), send_burst())
        stored = sum(u.unread_message_count for u in await backend.service.get_unreads("alice"))
        await wait_until(
            functools.partial(_unread_equals, session, stored),
            what=f"attempt {attempt}: the session's count to match the store's {stored}",
        )
        await asyncio.sleep(0.01)
        assert _total_unread(session) == stored
        session.destroy()


async def test_session_reconnects_and_resumes(backend: ChatBackend) -> None:
    """A backend restart drops the session; it reconnects and delivers what it missed once."""
    statuses: list[SessionStatus] = []
    received: list[str] = []
    errors: list[str] = []
    session = TalkSession(
        backend.app.app_id,
        "alice",
        token=create_user_token(backend.app, "alice"),
        # Slow enough that the message below is sent before the session is back.
        retry_backoff=Backoff(initial=0.3, maximum=0.3, jitter=0),
    )
    session.on_status_change(statuses.append)
    session.on_message(lambda message: received.append(message.body))
    session.on_error(lambda error: errors.append(error.code))
    await session.wait_ready()
    await backend.service.send_message(TRUSTED, "group", "before", sender_id="bob")
    await wait_until(lambda: received == ["before"], what="the live message")

    await backend.close()
    await wait_until(lambda: session.status is SessionStatus.RECONNECTING, what="reconnecting")
    await backend.start()
    await backend.service.send_message(TRUSTED, "group", "while away", sender_id="bob")
    await wait_until(lambda: session.status is SessionStatus.READY, timeout=5, what="reconnect")
    await backend.service.send_message(TRUSTED, "group", "after", sender_id="carol")
    await wait_until(lambda: received[-1:] == ["after"], what="the next live message")
    await asyncio.sleep(0.05)
    session.destroy()

    assert received == ["before", "while away", "after"]
    assert statuses == [
        SessionStatus.READY,
        SessionStatus.RECONNECTING,
        SessionStatus.READY,
        SessionStatus.DESTROYED,
    ]
    assert errors == ["connection_lost"]


async def test_reconnect_keeps_unread_counts(backend: ChatBackend) -> None:
    session = TalkSession(
        backend.app.app_id,
        "alice",
        token=create_user_token(backend.app, "alice"),
        retry_backoff=Backoff(initial=0.3, maximum=0.3, jitter=0),
    )
    await session.wait_ready()
    await backend.service.send_message(TRUSTED, "group", "one", sender_id="bob")
    await wait_until(lambda: _total_unread(session) == 1, what="the first unread")
    await backend.close()
    await backend.start()
    await backend.service.send_message(TRUSTED, "group", "two", sender_id="bob")
    await wait_until(lambda: session.status is SessionStatus.READY, timeout=5)
    await backend.service.send_message(TRUSTED, "group", "three", sender_id="bob")
    await wait_until(lambda: _total_unread(session) == 3, what="three unread")
    await asyncio.sleep(0.05)
    assert _total_unread(session) == 3
    session.destroy()


async def test_reconnect_waits_for_backend(backend: ChatBackend) -> None:
    """A reconnecting session never restarts a backend the app closed."""
    session = TalkSession(
        backend.app.app_id,
        "alice",
        token=create_user_token(backend.app, "alice"),
        retry_backoff=Backoff(initial=0.02, maximum=0.05, jitter=0),
    )
    await session.wait_ready()
    await backend.close()
    await asyncio.sleep(0.3)
    assert not backend.started
    assert session.status is SessionStatus.RECONNECTING
    session.destroy()


# Resuming with the event log. While the embedded backend is closed, another
# service on the same file makes the changes, so the session cannot reconnect
# before they are all stored, whatever the timing.


@asynccontextmanager
async def service_while_closed(
    backend: ChatBackend, limits: Limits | None = None
) -> AsyncIterator[ChatService]:
    """Run a second service on the closed backend's database file, as another process would."""
    assert not backend.started
    service = ChatService(
        SQLiteStore(Path(backend.database), backend.app.app_id),
        MemoryBroker(),
        app_id=backend.app.app_id,
        limits=limits,
    )
    await service.start()
    try:
        yield service
    finally:
        await service.close()


class Recorder:
    """A session's stored events, messages and error codes, in the order delivered."""

    def __init__(self, session: TalkSession) -> None:
        self.events: list[ChatEvent] = []
        self.messages: list[str] = []
        self.errors: list[str] = []
        session.on_event(self.on_event)
        session.on_message(lambda message: self.messages.append(message.body))
        session.on_error(lambda error: self.errors.append(error.code))

    def on_event(self, event: ChatEvent) -> None:
        # Typing and presence events are not stored and have no seq.
        if event.seq is not None:
            self.events.append(event)


def _fast_session(backend: ChatBackend, transport: Transport | None = None) -> TalkSession:
    return TalkSession(
        backend.app.app_id,
        "alice",
        token=create_user_token(backend.app, "alice"),
        transport=transport,
        retry_backoff=Backoff(initial=0.02, maximum=0.05, jitter=0),
    )


async def _store_unread_counts(service: ChatService, user_id: str) -> dict[str, int]:
    return {
        unread.conversation.id: unread.unread_message_count
        for unread in await service.get_unreads(user_id)
    }


def _session_unread_counts(session: TalkSession) -> dict[str, int]:
    return {
        unread.conversation.id: unread.unread_message_count
        for unread in session.unreads.current or []
    }


async def _send_marker(backend: ChatBackend, recorder: Recorder) -> None:
    """Send a live message and wait for it, so every event queued before it was handled."""
    await backend.service.send_message(TRUSTED, "group", "marker", sender_id="bob")
    await wait_until(lambda: recorder.messages[-1:] == ["marker"], what="the marker message")


async def test_reconnect_replays_missed_events_once(backend: ChatBackend) -> None:
    session = _fast_session(backend)
    recorder = Recorder(session)
    await session.wait_ready()
    await backend.service.send_message(TRUSTED, "group", "before", sender_id="bob")
    await wait_until(lambda: recorder.messages == ["before"], what="the live message")
    last_seen = recorder.events[-1].seq
    assert last_seen is not None

    await backend.close()
    await wait_until(lambda: session.status is SessionStatus.RECONNECTING, what="reconnecting")
    async with service_while_closed(backend) as other:
        to_edit = await other.send_message(TRUSTED, "group", "kept", sender_id="bob")
        to_delete = await other.send_message(TRUSTED, "group", "dropped", sender_id="bob")
        await other.edit_message("bob", "group", to_edit.id, text="kept, edited")
        await other.delete_message("bob", "group", to_delete.id)
        await other.mark_read("carol", "group")
        await other.sync_conversation("bob", "group", ConversationAttributes(subject="Team"))
        missed = (await other.events_after("alice", last_seen)).events
    await backend.start()
    await wait_until(lambda: session.status is SessionStatus.READY, what="the reconnect")
    await _send_marker(backend, recorder)
    stored_unreads = await _store_unread_counts(backend.service, "alice")
    session_unreads = _session_unread_counts(session)
    session.destroy()

    replayed = recorder.events[1:-1]
    assert [type(event) for event in replayed] == [
        MessageSent,
        MessageSent,
        MessageEdited,
        MessageDeleted,
        MessagesRead,
        ConversationUpdated,
    ]
    assert replayed == missed
    received = [event.seq or 0 for event in recorder.events]
    assert received == sorted(set(received))
    assert recorder.messages == ["before", "kept", "dropped", "marker"]
    assert recorder.errors == ["connection_lost"]
    # "before", the edited "kept" and "marker" are unread; "dropped" was deleted.
    assert stored_unreads == {"group": 3}
    assert session_unreads == stored_unreads


async def test_reconnect_after_pruned_events_reloads(backend: ChatBackend) -> None:
    session = _fast_session(backend)
    recorder = Recorder(session)
    await session.wait_ready()
    reloads: list[str | None] = []
    box = UIBox(session, BoxKind.CHATBOX)
    box.current_conversation_id = "group"
    box.on_reload = lambda: reloads.append(box.current_conversation_id)
    await backend.service.send_message(TRUSTED, "group", "before", sender_id="bob")
    await wait_until(lambda: recorder.messages == ["before"], what="the live message")

    await backend.close()
    await wait_until(lambda: session.status is SessionStatus.RECONNECTING, what="reconnecting")
    async with service_while_closed(backend, Limits(event_retention_ms=60_000)) as other:
        await other.send_message(TRUSTED, "group", "lost 1", sender_id="bob")
        age_all_events(Path(backend.database), days=1)
        # Each write prunes up to two expired events, so these two remove the
        # session's last event and the one after it.
        await other.send_message(TRUSTED, "group", "lost 2", sender_id="bob")
        await other.send_message(TRUSTED, "group", "lost 3", sender_id="bob")
    await backend.start()
    await wait_until(lambda: session.status is SessionStatus.READY, what="the reconnect")
    await _send_marker(backend, recorder)
    stored_unreads = await _store_unread_counts(backend.service, "alice")
    session_unreads = _session_unread_counts(session)
    session.destroy()

    assert recorder.errors == ["connection_lost", "resume_gap"]
    assert reloads == ["group"]
    # The lost messages were not delivered, but the reloaded unreads count them.
    assert recorder.messages == ["before", "marker"]
    assert stored_unreads == {"group": 5}
    assert session_unreads == stored_unreads


def age_all_events(database_path: Path, days: int) -> None:
    """Make every stored event ``days`` days older, as if that much time had passed."""
    with sqlite3.connect(database_path) as connection:
        connection.execute(
            "UPDATE events SET created_at = created_at - ?", (days * 24 * 60 * 60 * 1000,)
        )
    connection.close()


class FailingFirstResume(InProcessTransport):
    """The real in-process transport, whose first ``events_after`` fails like a database error."""

    def __init__(self) -> None:
        super().__init__()
        self.failures = 0

    async def events_after(self, after_seq: int, *, limit: int) -> EventsPage:
        if self.failures == 0:
            self.failures += 1
            raise ChatError("the database is busy", code="storage_error")
        return await super().events_after(after_seq, limit=limit)


@EMBEDDED_ONLY
async def test_failed_resume_retried_without_duplicates(backend: ChatBackend) -> None:
    transport = FailingFirstResume()
    session = _fast_session(backend, transport)
    recorder = Recorder(session)
    await session.wait_ready()

    await backend.close()
    await wait_until(lambda: session.status is SessionStatus.RECONNECTING, what="reconnecting")
    async with service_while_closed(backend) as other:
        await other.send_message(TRUSTED, "group", "while away", sender_id="bob")
    await backend.start()
    await wait_until(lambda: session.status is SessionStatus.READY, what="the reconnect")
    await backend.service.set_typing("bob", "group", True)
    await _send_marker(backend, recorder)
    listeners = backend.service.listener_count("alice")
    session.destroy()

    assert transport.failures == 1
    assert recorder.messages == ["while away", "marker"]
    # The retry replaced the first attempt's subscription instead of adding one.
    assert listeners == 1
    assert recorder.errors == ["connection_lost"]


class ClosingDuringResume(InProcessTransport):
    """The real in-process transport; the backend closes during its first ``events_after``."""

    def __init__(self, backend: ChatBackend) -> None:
        super().__init__()
        self.backend = backend
        self.closed_during_resume = False

    async def events_after(self, after_seq: int, *, limit: int) -> EventsPage:
        if not self.closed_during_resume:
            self.closed_during_resume = True
            await self.backend.close()
        return await super().events_after(after_seq, limit=limit)


@EMBEDDED_ONLY
async def test_backend_closing_during_resume(backend: ChatBackend) -> None:
    """The lost connection of a failed attempt does not start a second reconnect."""
    transport = ClosingDuringResume(backend)
    session = _fast_session(backend, transport)
    recorder = Recorder(session)
    statuses: list[SessionStatus] = []
    session.on_status_change(statuses.append)
    await session.wait_ready()

    await backend.close()
    await backend.start()
    await wait_until(lambda: transport.closed_during_resume, what="the close during resume")
    await backend.start()
    await wait_until(lambda: session.status is SessionStatus.READY, what="the reconnect")
    await _send_marker(backend, recorder)
    session.destroy()

    assert statuses == [
        SessionStatus.READY,
        SessionStatus.RECONNECTING,
        SessionStatus.READY,
        SessionStatus.DESTROYED,
    ]
    assert recorder.errors == ["connection_lost"]
    assert recorder.messages == ["marker"]


class SendDuringResume(InProcessTransport):
    """The real in-process transport, with bob sending between the new subscription and
    the first ``events_after``: the message arrives both live and by replay."""

    async def events_after(self, after_seq: int, *, limit: int) -> EventsPage:
        service, _ = self._bound
        await service.send_message(TRUSTED, "group", "during resume", sender_id="bob")
        await service.mark_read("carol", "group")
        return await super().events_after(after_seq, limit=limit)


@EMBEDDED_ONLY
async def test_event_live_and_replayed_delivered_once(backend: ChatBackend) -> None:
    session = _fast_session(backend, SendDuringResume())
    recorder = Recorder(session)
    await session.wait_ready()

    await backend.close()
    await backend.start()
    await wait_until(lambda: session.status is SessionStatus.READY, what="the reconnect")
    await _send_marker(backend, recorder)
    stored_unreads = await _store_unread_counts(backend.service, "alice")
    session_unreads = _session_unread_counts(session)
    session.destroy()

    assert recorder.messages == ["during resume", "marker"]
    assert [type(event) for event in recorder.events] == [MessageSent, MessagesRead, MessageSent]
    assert stored_unreads == {"group": 2}
    assert session_unreads == stored_unreads
