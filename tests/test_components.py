"""Session, hooks and Chatbox rendered in a ReactPy Layout, without a browser."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from typing import Any

import pytest
from reactpy import Ref, component, html, use_state
from reactpy.types import VdomDict

from talkjs_components import Chatbox, TalkSession, use_session, use_unreads
from talkjs_components.components.session import _resolve_me
from talkjs_components.embedded import EmbeddedBackend
from talkjs_components.errors import InvalidInput
from talkjs_components.models import UnreadConversation, User
from talkjs_components.service import TRUSTED
from talkjs_components.session import SessionMessage

from .layout_tools import LayoutRunner, alice_session, find_all
from .waiting import wait_until


@component
def ShowUser() -> VdomDict:
    session = use_session()
    return html.p(f"user={session.me.id if session else 'none'}")


@component
def Middle() -> VdomDict:
    return html.section(ShowUser())


@component
def ShowUnreads() -> VdomDict:
    unreads = use_unreads()
    if unreads is None:
        return html.p("unreads=none")
    return html.p(f"unreads={sum(u.unread_message_count for u in unreads)}")


async def test_context_reaches_grandchild(backend: EmbeddedBackend) -> None:
    async with LayoutRunner(alice_session(backend, html.div(Middle()))) as runner:
        assert "user=none" in runner.text
        await runner.until(lambda r: "user=alice" in r.text)


async def test_hooks_outside_session_return_none() -> None:
    async with LayoutRunner(html.div(ShowUser(), ShowUnreads())) as runner:
        assert runner.text == "user=noneunreads=none"


async def test_session_ref_set_then_cleared(backend: EmbeddedBackend) -> None:
    ref: Ref[TalkSession | None] = Ref(None)
    controls: dict[str, Callable[[bool], None]] = {}

    @component
    def Toggle() -> Any:
        shown, set_shown = use_state(True)
        controls["show"] = set_shown
        if not shown:
            return html.p("unmounted")
        return alice_session(backend, ShowUser(), session_ref=ref)

    async with LayoutRunner(Toggle()) as runner:
        await runner.until(lambda r: "user=alice" in r.text)
        session = ref.current
        assert isinstance(session, TalkSession)
        assert session.is_alive

        controls["show"](False)
        await runner.until(lambda r: "unmounted" in r.text)
        await wait_until(lambda: ref.current is None, what="session_ref to clear")
        assert not session.is_alive


async def test_session_destroyed_when_layout_closes(backend: EmbeddedBackend) -> None:
    ref: Ref[TalkSession | None] = Ref(None)
    async with LayoutRunner(alice_session(backend, ShowUser(), session_ref=ref)) as runner:
        await runner.until(lambda r: "user=alice" in r.text)
        session = ref.current
    assert session is not None
    assert not session.is_alive
    assert ref.current is None


async def test_on_message_and_unreads_fire(backend: EmbeddedBackend) -> None:
    messages: list[SessionMessage] = []
    unread_lists: list[list[UnreadConversation]] = []
    root = alice_session(
        backend,
        ShowUser(),
        ShowUnreads(),
        on_message=messages.append,
        on_unreads_change=unread_lists.append,
    )
    async with LayoutRunner(root) as runner:
        await runner.until(lambda r: "unreads=0" in r.text)
        assert unread_lists == [[]]

        await backend.service.send_message(TRUSTED, "group", "hello alice", sender_id="bob")
        await runner.until(lambda r: "unreads=1" in r.text)
        await wait_until(lambda: bool(messages), what="on_message")
        assert [message.body for message in messages] == ["hello alice"]
        assert unread_lists[-1][0].unread_message_count == 1


async def test_new_handler_identity_keeps_session(backend: EmbeddedBackend) -> None:
    """A new handler lambda on every render neither recreates the session nor loses events."""
    received: list[str] = []
    controls: dict[str, Callable[[int], None]] = {}
    ref: Ref[TalkSession | None] = Ref(None)

    @component
    def Rerendering() -> Any:
        count, set_count = use_state(0)
        controls["set"] = set_count
        return alice_session(
            backend,
            html.p(f"render={count}"),
            ShowUser(),
            on_message=lambda message: received.append(f"{count}:{message.body}"),
            session_ref=ref,
        )

    async with LayoutRunner(Rerendering()) as runner:
        await runner.until(lambda r: "user=alice" in r.text)
        first_session = ref.current
        assert first_session is not None
        controls["set"](1)
        await runner.until(lambda r: "render=1" in r.text)
        await backend.service.send_message(TRUSTED, "group", "after rerender", sender_id="bob")
        await wait_until(lambda: bool(received), what="on_message")
        await asyncio.sleep(0.05)
        assert received == ["1:after rerender"]
        assert ref.current is first_session
        assert first_session.is_alive


@pytest.mark.parametrize(
    ("user_id", "sync_user"),
    [(None, None), ("alice", User(id="alice")), ("", None), (None, "alice")],
)
def test_session_user_props_validated(user_id: Any, sync_user: Any) -> None:
    with pytest.raises(InvalidInput) as caught:
        _resolve_me(user_id, sync_user)
    assert "user_id" in caught.value.message or "sync_user" in caught.value.message


def test_session_sync_user_callable_resolved() -> None:
    assert _resolve_me(None, lambda: User(id="erin", name="Erin")) == User(id="erin", name="Erin")


async def test_chatbox_shows_history_and_live_messages(backend: EmbeddedBackend) -> None:
    await backend.service.send_message(TRUSTED, "group", "first", sender_id="bob")
    async with LayoutRunner(alice_session(backend, Chatbox(conversation_id="group"))) as runner:
        await runner.until(lambda r: "first" in r.text)
        rows = find_all(runner.model, lambda node: "data-message-id" in node.get("attributes", {}))
        assert len(rows) == 1
        logs = find_all(
            runner.model, lambda node: node.get("attributes", {}).get("label") == "Messages"
        )
        assert logs, "the message list is labelled Messages"

        await backend.service.send_message(TRUSTED, "group", "second", sender_id="carol")
        await runner.until(lambda r: "second" in r.text)
        assert "Carol" in runner.text


async def test_chatbox_marks_conversation_read(backend: EmbeddedBackend) -> None:
    await backend.service.send_message(TRUSTED, "group", "unread one", sender_id="bob")
    assert (await backend.service.get_unreads("alice"))[0].unread_message_count == 1
    async with LayoutRunner(alice_session(backend, Chatbox(conversation_id="group"))) as runner:
        # Loaded: the message shows and the header names the other participants.
        await runner.until(lambda r: "unread one" in r.text and "Bob, Carol" in r.text)
        # Opening alone does not mark read: the browser reports the messages seen.
        assert (await backend.service.get_unreads("alice"))[0].unread_message_count == 1
        await runner.trigger("onSeen", {"lastId": None})
        for _ in range(200):
            if not await backend.service.get_unreads("alice"):
                break
            await asyncio.sleep(0.01)
        assert await backend.service.get_unreads("alice") == []


async def _unread_counts(backend: EmbeddedBackend, user_id: str) -> dict[str, int]:
    unreads = await backend.service.get_unreads(user_id)
    return {unread.conversation.id: unread.unread_message_count for unread in unreads}


async def test_chatbox_marks_read_only_up_to_shown_message(backend: EmbeddedBackend) -> None:
    shown = await backend.service.send_message(TRUSTED, "group", "shown one", sender_id="bob")
    async with LayoutRunner(alice_session(backend, Chatbox(conversation_id="group"))) as runner:
        await runner.until(lambda r: "shown one" in r.text and "Bob, Carol" in r.text)
        # A message arrives after the browser rendered the list and before its
        # report reached the server: it must stay unread.
        await backend.service.send_message(TRUSTED, "group", "not yet seen", sender_id="bob")
        await runner.until(lambda r: "not yet seen" in r.text)
        await runner.trigger("onSeen", {"lastId": shown.id})
        for _ in range(500):
            if await _unread_counts(backend, "alice") == {"group": 1}:
                break
            await asyncio.sleep(0.01)
        assert await _unread_counts(backend, "alice") == {"group": 1}
        # A report naming a message the list does not hold marks nothing.
        await runner.trigger("onSeen", {"lastId": "no-such-message"})
        assert await _unread_counts(backend, "alice") == {"group": 1}


async def test_chatbox_not_participant_shows_error(backend: EmbeddedBackend) -> None:
    await backend.service.sync_conversation(TRUSTED, "private", participants={})
    async with LayoutRunner(alice_session(backend, Chatbox(conversation_id="private"))) as runner:
        await runner.until(lambda r: "Could not load the conversation" in r.text)
        assert "private" in runner.text


async def test_chatbox_shows_reconnecting_and_resumes(backend: EmbeddedBackend) -> None:
    async with LayoutRunner(alice_session(backend, Chatbox(conversation_id="group"))) as runner:
        await runner.until(lambda r: "No messages yet" in r.text)
        await backend.close()
        await runner.until(lambda r: "Reconnecting" in r.text)
        await backend.start()
        await backend.service.send_message(TRUSTED, "group", "sent while away", sender_id="bob")
        await runner.until(
            lambda r: "sent while away" in r.text and "Reconnecting" not in r.text, timeout=10
        )
        rows = find_all(runner.model, lambda node: "data-message-id" in node.get("attributes", {}))
        assert len(rows) == 1


def _more_rows_than(count: int, runner: LayoutRunner) -> bool:
    return len(rows(runner)) > count


def rows(runner: LayoutRunner) -> list[dict[str, Any]]:
    return find_all(runner.model, lambda node: "data-message-id" in node.get("attributes", {}))


async def test_new_message_update_small_with_long_history(backend: EmbeddedBackend) -> None:
    """With 1,000 messages shown, one new message sends a small update, not the list."""
    for number in range(1000):
        sender = "bob" if number % 3 else "carol"
        await backend.service.send_message(TRUSTED, "group", f"history {number}", sender_id=sender)
    async with LayoutRunner(alice_session(backend, Chatbox(conversation_id="group"))) as runner:
        await runner.until(lambda r: "history 999" in r.text and "Bob, Carol" in r.text)
        while len(rows(runner)) < 1000:
            shown = len(rows(runner))
            await runner.trigger("onNearTop", {})
            await runner.until(functools.partial(_more_rows_than, shown), timeout=10)
        assert "history 0" in runner.text

        runner.update_sizes.clear()
        await backend.service.send_message(TRUSTED, "group", "the new one", sender_id="bob")
        await runner.until(lambda r: "the new one" in r.text)
        assert len(rows(runner)) == 1001
        assert runner.update_sizes, "the new message arrived as an update"
        assert max(runner.update_sizes) <= 8 * 1024
