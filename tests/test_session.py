"""TalkSession against the embedded backend on a real SQLite file."""

from __future__ import annotations

import asyncio
import functools

import pytest

from talkjs_components.auth import create_signature, create_user_token
from talkjs_components.embedded import EmbeddedBackend
from talkjs_components.errors import AuthError, SessionDestroyed
from talkjs_components.models import UnreadConversation, UnreadsSnapshot, User
from talkjs_components.service import TRUSTED
from talkjs_components.session import (
    Backoff,
    SessionMessage,
    SessionStatus,
    TalkSession,
    one_on_one_id,
)
from talkjs_components.session.transport import InProcessTransport

from .waiting import wait_until


def _session(backend: EmbeddedBackend, user_id: str = "alice") -> TalkSession:
    token = create_user_token(backend.app, user_id)
    return TalkSession(backend.app.app_id, user_id, token=token)


async def test_session_ready_with_token(backend: EmbeddedBackend) -> None:
    session = _session(backend)
    await session.wait_ready()
    try:
        assert session.status is SessionStatus.READY
        assert session.me.name == "Alice"
        assert session.unreads.current == []
    finally:
        session.destroy()


async def test_session_ready_with_signature(backend: EmbeddedBackend) -> None:
    signature = create_signature(backend.app, "bob").upper()
    session = TalkSession(backend.app.app_id, "bob", signature=signature)
    await session.wait_ready()
    session.destroy()
    assert session.status is SessionStatus.DESTROYED


async def test_session_token_fetcher_async(backend: EmbeddedBackend) -> None:
    calls: list[str] = []

    async def fetch_token() -> str:
        calls.append("fetch")
        return create_user_token(backend.app, "alice")

    session = TalkSession(backend.app.app_id, "alice", token_fetcher=fetch_token)
    await session.wait_ready()
    session.destroy()
    assert calls == ["fetch"]


async def test_session_without_credentials_fails(backend: EmbeddedBackend) -> None:
    session = TalkSession(backend.app.app_id, "alice")
    with pytest.raises(AuthError) as caught:
        await session.wait_ready()
    assert caught.value.code == "credentials_missing"
    assert session.status is SessionStatus.FAILED
    assert not session.is_alive


async def test_session_token_of_other_user_fails(backend: EmbeddedBackend) -> None:
    token = create_user_token(backend.app, "bob")
    session = TalkSession(backend.app.app_id, "alice", token=token)
    with pytest.raises(AuthError) as caught:
        await session.wait_ready()
    assert caught.value.code == "token_subject"
    assert "alice" in caught.value.message


async def test_session_unknown_user_id_fails(backend: EmbeddedBackend) -> None:
    session = _session(backend, "dave")
    with pytest.raises(AuthError) as caught:
        await session.wait_ready()
    assert caught.value.code == "user_not_found"
    assert "sync_user" in caught.value.message


async def test_session_sync_user_writes_fields(backend: EmbeddedBackend) -> None:
    token = create_user_token(backend.app, "dave")
    me = User(id="dave", name="Dave", locale="fa-IR")
    session = TalkSession(backend.app.app_id, me, token=token)
    await session.wait_ready()
    session.destroy()
    stored = await backend.service.get_user("dave")
    assert stored.name == "Dave"
    assert stored.locale == "fa-IR"


async def test_destroyed_session_raises(backend: EmbeddedBackend) -> None:
    session = _session(backend)
    await session.wait_ready()
    session.destroy()
    with pytest.raises(SessionDestroyed) as caught:
        await session.send_message("group", "hello")
    assert "send_message" in caught.value.message
    with pytest.raises(SessionDestroyed):
        session.on_message(lambda message: None)


async def test_on_message_payload(backend: EmbeddedBackend) -> None:
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


async def test_on_message_includes_own_messages(backend: EmbeddedBackend) -> None:
    session = _session(backend)
    received: list[SessionMessage] = []
    session.on_message(received.append)
    await session.wait_ready()
    await session.send_message("group", "from me")
    await wait_until(lambda: len(received) == 1, what="own message")
    session.destroy()
    assert received[0].is_by_me is True


async def test_unsubscribed_handler_not_called(backend: EmbeddedBackend) -> None:
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


async def test_unreads_rise_and_clear(backend: EmbeddedBackend) -> None:
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


async def test_unreads_late_handler_gets_current(backend: EmbeddedBackend) -> None:
    await backend.service.send_message(TRUSTED, "group", "waiting", sender_id="bob")
    session = _session(backend)
    await session.wait_ready()
    changes: list[list[UnreadConversation]] = []
    session.unreads.on_change(changes.append)
    await wait_until(lambda: len(changes) == 1, what="the current unreads")
    session.destroy()
    assert [unread.unread_message_count for unread in changes[0]] == [1]


async def test_conversation_builder_sync_and_send(backend: EmbeddedBackend) -> None:
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


async def test_builder_creates_missing_participant(backend: EmbeddedBackend) -> None:
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


async def test_backend_restarts_after_close(backend: EmbeddedBackend) -> None:
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


async def test_unreads_counted_once_while_connecting(backend: EmbeddedBackend) -> None:
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


async def test_unreads_match_store_under_concurrent_sends(backend: EmbeddedBackend) -> None:
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


async def test_session_reconnects_and_resumes(backend: EmbeddedBackend) -> None:
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


async def test_reconnect_keeps_unread_counts(backend: EmbeddedBackend) -> None:
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


async def test_reconnect_waits_for_backend(backend: EmbeddedBackend) -> None:
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
