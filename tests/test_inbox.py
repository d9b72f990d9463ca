"""Inbox rendered in a ReactPy Layout, without a browser: feed, selection, filter, refs."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

from reactpy import Ref, component, html, use_state

from talkjs_components import Inbox, TalkSession
from talkjs_components.components.inbox import (
    PREVIEW_LENGTH,
    ConversationSelectedEvent,
    SelectConversationEvent,
)
from talkjs_components.embedded import EmbeddedBackend
from talkjs_components.models import ConversationAttributes, Participation
from talkjs_components.service import TRUSTED
from talkjs_components.session import UIBox

from .layout_tools import LayoutRunner, alice_session, find_all, text_of
from .waiting import wait_until


async def settle(runner: LayoutRunner, quiet: float = 0.2) -> None:
    """Apply updates until none arrives for ``quiet`` seconds."""
    while True:
        try:
            await runner.render(timeout=quiet)
        except TimeoutError:
            return


def record_paths(runner: LayoutRunner) -> list[str]:
    """Record the path of every update the layout produces from now on.

    Call it before entering the runner. The list fills as updates arrive.
    """
    paths: list[str] = []
    render = runner.layout.render

    async def recording_render() -> Any:
        update = await render()
        paths.append(update["path"])
        return update

    runner.layout.render = recording_render  # type: ignore[method-assign]
    return paths


async def _pair(backend: EmbeddedBackend, conversation_id: str, other: str) -> None:
    """Create a conversation of alice and ``other``."""
    participants = {"alice": Participation(), other: Participation()}
    await backend.service.sync_conversation(TRUSTED, conversation_id, participants=participants)


def _items(runner: LayoutRunner) -> list[dict[str, Any]]:
    return find_all(
        runner.model,
        lambda node: (
            "data-conversation-id" in node.get("attributes", {})
            and not node["attributes"].get("hidden")
        ),
    )


def _feed_ids(runner: LayoutRunner) -> list[str]:
    return [item["attributes"]["data-conversation-id"] for item in _items(runner)]


def _item(runner: LayoutRunner, conversation_id: str) -> dict[str, Any]:
    for item in _items(runner):
        if item["attributes"]["data-conversation-id"] == conversation_id:
            return item
    raise LookupError(f"no feed item for {conversation_id!r}; feed: {_feed_ids(runner)}")


def _by_class(model: Any, class_name: str) -> list[dict[str, Any]]:
    return find_all(
        model, lambda node: class_name in node.get("attributes", {}).get("className", "").split()
    )


def _badge(runner: LayoutRunner, conversation_id: str) -> str:
    """Return the visible unread count of a feed item, "" without a badge."""
    badges = _by_class(_item(runner, conversation_id), "tjs-feed__badge")
    if not badges:
        return ""
    visible = find_all(badges[0], lambda node: node.get("attributes", {}).get("aria-hidden"))
    return text_of(visible[0])


def _current(runner: LayoutRunner) -> list[str]:
    """Return the ids of the items marked aria-current."""
    return [
        item["attributes"]["data-conversation-id"]
        for item in _items(runner)
        if find_all(item, lambda node: node.get("attributes", {}).get("aria-current") == "true")
    ]


def _chat_pane(runner: LayoutRunner) -> dict[str, Any]:
    return _by_class(runner.model, "tjs-inbox__chat")[0]


def _pointer(model: Any, predicate: Callable[[dict[str, Any]], bool], path: str = "") -> str:
    """Return the JSON pointer of the first element that matches, in the form of update paths."""
    if predicate(model):
        return path
    for index, child in enumerate(model.get("children", ())):
        if isinstance(child, dict):
            with contextlib.suppress(LookupError):
                return _pointer(child, predicate, f"{path}/children/{index}")
    raise LookupError(f"no matching element under {path!r}")


def _has_class(class_name: str) -> Callable[[dict[str, Any]], bool]:
    return lambda node: class_name in node.get("attributes", {}).get("className", "").split()


def _is_item(conversation_id: str) -> Callable[[dict[str, Any]], bool]:
    return lambda node: node.get("attributes", {}).get("data-conversation-id") == conversation_id


def _inbox_classes(runner: LayoutRunner) -> list[str]:
    classes: str = _by_class(runner.model, "tjs-inbox")[0]["attributes"]["className"]
    return classes.split()


async def _handler(runner: LayoutRunner, element: dict[str, Any], name: str) -> None:
    """Fire the first ``name`` handler in ``element`` with an empty event."""
    found = find_all(element, lambda node: name in node.get("eventHandlers", {}))
    if not found:
        raise LookupError(f"no {name!r} handler in {text_of(element)!r}")
    target = found[0]["eventHandlers"][name]["target"]
    await runner.layout.deliver({"type": "layout-event", "target": target, "data": [{}]})


async def _click_item(runner: LayoutRunner, conversation_id: str) -> None:
    await _handler(runner, _item(runner, conversation_id), "onClick")


def _loaded(runner: LayoutRunner) -> bool:
    return bool(_items(runner)) or "No conversations to show" in runner.text


async def test_feed_lists_conversations_by_activity(backend: EmbeddedBackend) -> None:
    await _pair(backend, "with-bob", "bob")
    await _pair(backend, "with-carol", "carol")
    await backend.service.sync_conversation(
        TRUSTED, "not-mine", participants={"bob": Participation(), "carol": Participation()}
    )
    await backend.service.send_message(TRUSTED, "with-bob", "older from bob", sender_id="bob")
    await asyncio.sleep(0.005)
    await backend.service.send_message(TRUSTED, "with-carol", "newer by me", sender_id="alice")

    async with LayoutRunner(alice_session(backend, Inbox())) as runner:
        await runner.until(_loaded)
        assert _feed_ids(runner) == ["with-carol", "with-bob", "group"]
        carol = text_of(_item(runner, "with-carol"))
        assert "Carol" in carol
        assert "You: newer by me" in carol
        assert "Bob: older from bob" in text_of(_item(runner, "with-bob"))
        group = text_of(_item(runner, "group"))
        assert "Bob, Carol" in group
        assert "No messages yet" in group
        assert _badge(runner, "with-bob") == "1"
        assert _badge(runner, "with-carol") == ""
        feed = find_all(runner.model, lambda node: node.get("attributes", {}).get("role") == "list")
        assert feed[0]["attributes"]["aria-label"] == "Conversations"
        assert "Conversations" in text_of(_by_class(runner.model, "tjs-inbox__feed-header")[0])


async def test_preview_isolates_bidirectional_text(backend: EmbeddedBackend) -> None:
    await backend.service.send_message(TRUSTED, "group", "שלום  עולם\nline", sender_id="bob")
    async with LayoutRunner(alice_session(backend, Inbox())) as runner:
        await runner.until(_loaded)
        preview = _by_class(_item(runner, "group"), "tjs-feed__preview")[0]
        isolated = find_all(preview, lambda node: node.get("tagName") == "bdi")
        assert [text_of(node) for node in isolated] == ["Bob", "שלום עולם line"]
        assert all(node["attributes"]["dir"] == "auto" for node in isolated)


async def test_preview_is_plain_and_short(backend: EmbeddedBackend) -> None:
    long_text = "*Bold* and _italic_ " + "word " * 100
    await backend.service.send_message(TRUSTED, "group", long_text, sender_id="bob")
    async with LayoutRunner(alice_session(backend, Inbox())) as runner:
        await runner.until(_loaded)
        preview = text_of(_by_class(_item(runner, "group"), "tjs-feed__preview")[0])
        assert preview.startswith("Bob: Bold and italic word word")
        assert preview.endswith("…")
        assert len(preview) == len("Bob: ") + PREVIEW_LENGTH + 1


async def test_new_message_reorders_and_counts(backend: EmbeddedBackend) -> None:
    await _pair(backend, "with-bob", "bob")
    await backend.service.send_message(TRUSTED, "group", "first", sender_id="carol")
    async with LayoutRunner(alice_session(backend, Inbox())) as runner:
        await runner.until(_loaded)
        assert _feed_ids(runner) == ["group", "with-bob"]

        await backend.service.send_message(TRUSTED, "with-bob", "ping", sender_id="bob")
        await runner.until(lambda r: _feed_ids(r) == ["with-bob", "group"])
        await runner.until(lambda r: _badge(r, "with-bob") == "1")
        assert "Bob: ping" in text_of(_item(runner, "with-bob"))

        await backend.service.send_message(TRUSTED, "with-bob", "pong", sender_id="bob")
        await runner.until(lambda r: _badge(r, "with-bob") == "2")
        assert "Bob: pong" in text_of(_item(runner, "with-bob"))

        await backend.service.mark_read("alice", "with-bob")
        await runner.until(lambda r: _badge(r, "with-bob") == "")
        assert _badge(runner, "group") == "1"


async def test_new_conversation_appears(backend: EmbeddedBackend) -> None:
    async with LayoutRunner(alice_session(backend, Inbox())) as runner:
        await runner.until(_loaded)
        assert _feed_ids(runner) == ["group"]
        await backend.service.sync_conversation(
            TRUSTED,
            "fresh",
            ConversationAttributes(subject="Fresh topic"),
            participants={"alice": Participation(), "carol": Participation()},
        )
        await runner.until(lambda r: _feed_ids(r) == ["fresh", "group"])
        assert "Fresh topic" in text_of(_item(runner, "fresh"))

        await backend.service.remove_participant(TRUSTED, "fresh", "alice")
        await runner.until(lambda r: _feed_ids(r) == ["group"])
        # Let the renders that follow the removal finish before the layout closes.
        await settle(runner)


async def test_edit_and_delete_update_preview(backend: EmbeddedBackend) -> None:
    await backend.service.send_message(TRUSTED, "group", "first", sender_id="bob")
    last = await backend.service.send_message(TRUSTED, "group", "second", sender_id="bob")
    async with LayoutRunner(alice_session(backend, Inbox())) as runner:
        await runner.until(lambda r: "Bob: second" in r.text)
        await backend.service.edit_message("bob", "group", last.id, text="second, edited")
        await runner.until(lambda r: "Bob: second, edited" in r.text)
        await backend.service.delete_message("bob", "group", last.id)
        await runner.until(lambda r: "Bob: first" in text_of(_item(r, "group")))


async def test_click_selects_and_opens_chat(backend: EmbeddedBackend) -> None:
    await _pair(backend, "with-bob", "bob")
    await backend.service.send_message(TRUSTED, "with-bob", "message for alice", sender_id="bob")
    async with LayoutRunner(alice_session(backend, Inbox())) as runner:
        await runner.until(_loaded)
        assert _current(runner) == []
        assert "No conversation selected" in text_of(_chat_pane(runner))
        assert "tjs-inbox--chat-open" not in _inbox_classes(runner)

        await _click_item(runner, "with-bob")
        await runner.until(lambda r: "message for alice" in text_of(_chat_pane(r)))
        assert _current(runner) == ["with-bob"]
        assert "tjs-inbox--chat-open" in _inbox_classes(runner)

        back = _by_class(runner.model, "tjs-inbox__back")[0]
        assert back["attributes"]["aria-label"] == "Back to conversations"
        await _handler(runner, back, "onClick")
        await runner.until(lambda r: "tjs-inbox--chat-open" not in _inbox_classes(r))
        assert _current(runner) == []


async def test_prevent_default_keeps_selection(backend: EmbeddedBackend) -> None:
    await _pair(backend, "with-bob", "bob")
    events: list[SelectConversationEvent] = []

    def on_select(event: SelectConversationEvent) -> None:
        events.append(event)
        if event.conversation.id == "with-bob":
            event.prevent_default()

    inbox = Inbox(conversation_id="group", on_select_conversation=on_select)
    async with LayoutRunner(alice_session(backend, inbox)) as runner:
        await runner.until(lambda r: _current(r) == ["group"])
        await _click_item(runner, "with-bob")
        await wait_until(lambda: len(events) == 1, what="on_select_conversation")
        await settle(runner)
        assert _current(runner) == ["group"]
        event = events[0]
        assert event.default_prevented
        assert event.me.id == "alice"
        assert sorted(user.id for user in event.participants) == ["alice", "bob"]
        assert [user.name for user in event.participants if user.id == "bob"] == ["Bob"]


async def test_late_prevent_default_is_ignored(backend: EmbeddedBackend) -> None:
    await _pair(backend, "with-bob", "bob")
    handled = asyncio.Event()

    async def on_select(event: SelectConversationEvent) -> None:
        event.prevent_default()
        handled.set()

    inbox = Inbox(on_select_conversation=on_select)
    async with LayoutRunner(alice_session(backend, inbox)) as runner:
        await runner.until(_loaded)
        await _click_item(runner, "with-bob")
        await asyncio.wait_for(handled.wait(), 5)
        await runner.until(lambda r: _current(r) == ["with-bob"])


async def test_conversation_selected_fires(backend: EmbeddedBackend) -> None:
    await _pair(backend, "with-bob", "bob")
    selected: list[ConversationSelectedEvent] = []
    ref: Ref[UIBox | None] = Ref(None)
    inbox = Inbox(on_conversation_selected=selected.append, inbox_ref=ref)
    async with LayoutRunner(alice_session(backend, inbox)) as runner:
        await runner.until(_loaded)
        await runner.until(lambda r: len(selected) == 1)
        assert selected[0].conversation is None
        assert selected[0].participants == []

        await _click_item(runner, "with-bob")
        await runner.until(lambda r: len(selected) == 2)
        clicked = selected[1].conversation
        assert clicked is not None
        assert clicked.id == "with-bob"
        assert sorted(user.id for user in selected[1].participants) == ["alice", "bob"]

        assert ref.current is not None
        ref.current.select("group")
        await runner.until(lambda r: len(selected) == 3)
        chosen = selected[2].conversation
        assert chosen is not None
        assert chosen.id == "group"
        await runner.until(lambda r: _current(r) == ["group"])


async def test_feed_filter_and_clear(backend: EmbeddedBackend) -> None:
    await backend.service.sync_conversation(
        TRUSTED,
        "support",
        ConversationAttributes(custom={"topic": "support"}),
        participants={"alice": Participation(), "bob": Participation()},
    )
    controls: dict[str, Callable[[Any], None]] = {}

    @component
    def Filtered() -> Any:
        feed_filter, set_filter = use_state({"custom": {"topic": ["==", "support"]}})
        controls["set"] = set_filter
        return alice_session(backend, Inbox(feed_filter=feed_filter))

    async with LayoutRunner(Filtered()) as runner:
        await runner.until(lambda r: _feed_ids(r) == ["support"])
        controls["set"](None)
        await runner.until(lambda r: _feed_ids(r) == ["support", "group"])
        controls["set"]({"custom": {"topic": ["==", "billing"]}})
        await runner.until(lambda r: "No conversations to show" in r.text)
        assert _feed_ids(runner) == []


async def test_unread_filter_follows_reads(backend: EmbeddedBackend) -> None:
    await _pair(backend, "with-bob", "bob")
    await backend.service.send_message(TRUSTED, "with-bob", "unread", sender_id="bob")
    async with LayoutRunner(
        alice_session(backend, Inbox(feed_filter={"hasUnreadMessages": True}))
    ) as runner:
        await runner.until(lambda r: _feed_ids(r) == ["with-bob"])
        await backend.service.send_message(TRUSTED, "group", "now unread too", sender_id="carol")
        await runner.until(lambda r: _feed_ids(r) == ["group", "with-bob"])
        await backend.service.mark_read("alice", "with-bob")
        await runner.until(lambda r: _feed_ids(r) == ["group"])


async def test_invalid_feed_filter_shows_alert(backend: EmbeddedBackend) -> None:
    inbox = Inbox(feed_filter={"subject": ["=", "x"]})
    async with LayoutRunner(alice_session(backend, inbox)) as runner:
        await runner.until(lambda r: "unknown operator" in r.text)
        alerts = find_all(
            runner.model, lambda node: node.get("attributes", {}).get("role") == "alert"
        )
        assert len(alerts) == 1
        assert "feedFilter.subject" in text_of(alerts[0])
        assert _feed_ids(runner) == []


async def test_invalid_props_show_alert(backend: EmbeddedBackend) -> None:
    builder_inbox = Inbox(
        conversation_id="group",
        sync_conversation=lambda session: session.get_or_create_conversation("x"),
    )
    async with LayoutRunner(alice_session(backend, builder_inbox)) as runner:
        assert "one of conversation_id and sync_conversation" in runner.text
    twice = Inbox(feed_filter=None, show_feed_header=False, showFeedHeader=True)
    async with LayoutRunner(alice_session(backend, twice)) as runner:
        assert "'show_feed_header' twice" in runner.text
    # A Chatbox prop is checked before any conversation is selected.
    unselected = Inbox(highlighted_words=5)
    async with LayoutRunner(alice_session(backend, unselected)) as runner:
        assert "highlighted_words must be a list of strings, got 5" in runner.text
    not_a_ref = Inbox(inbox_ref=5)
    async with LayoutRunner(alice_session(backend, not_a_ref)) as runner:
        assert "Inbox inbox_ref must be a reactpy.Ref (use_ref(None)), got int" in runner.text


async def test_camel_case_props(backend: EmbeddedBackend) -> None:
    selected: list[ConversationSelectedEvent] = []
    inbox = Inbox(
        conversationId="group",
        showFeedHeader=False,
        onConversationSelected=selected.append,
        className="mine",
    )
    async with LayoutRunner(alice_session(backend, inbox)) as runner:
        await runner.until(lambda r: _current(r) == ["group"])
        assert not _by_class(runner.model, "tjs-inbox__feed-header")
        assert "mine" in _inbox_classes(runner)
        await runner.until(lambda r: bool(selected))


async def test_inbox_ref_set_and_cleared(backend: EmbeddedBackend) -> None:
    ref: Ref[UIBox | None] = Ref(None)
    session_ref: Ref[TalkSession | None] = Ref(None)
    controls: dict[str, Callable[[bool], None]] = {}

    @component
    def Toggle() -> Any:
        mounted, set_mounted = use_state(True)
        controls["show"] = set_mounted
        inbox = Inbox(inbox_ref=ref) if mounted else html.p("no inbox")
        return alice_session(backend, inbox, session_ref=session_ref)

    async with LayoutRunner(Toggle()) as runner:
        await runner.until(_loaded)
        await wait_until(lambda: ref.current is not None, what="inbox_ref")
        box = ref.current
        assert box is not None
        session = session_ref.current
        assert session is not None
        assert session.get_inboxes() == [box]

        controls["show"](False)
        await runner.until(lambda r: "no inbox" in r.text)
        await wait_until(lambda: ref.current is None, what="inbox_ref to clear")
        assert not box.is_alive
        assert session.get_inboxes() == []


async def test_session_inbox_select(backend: EmbeddedBackend) -> None:
    await _pair(backend, "with-bob", "bob")
    session_ref: Ref[TalkSession | None] = Ref(None)
    async with LayoutRunner(alice_session(backend, Inbox(), session_ref=session_ref)) as runner:
        await runner.until(_loaded)
        session = session_ref.current
        assert session is not None
        await wait_until(lambda: bool(session.get_inboxes()), what="the inbox to register")
        inbox = session.get_inboxes()[0]
        inbox.select("with-bob")
        await runner.until(lambda r: _current(r) == ["with-bob"])
        assert inbox.current_conversation_id == "with-bob"
        inbox.select(None)
        await runner.until(lambda r: _current(r) == [])
        assert inbox.current_conversation_id is None


async def test_props_selection_and_sync_conversation(backend: EmbeddedBackend) -> None:
    def build(session: TalkSession) -> Any:
        conversation = session.get_or_create_conversation("synced")
        conversation.subject = "Synced here"
        conversation.set_participant(session.me)
        return conversation

    async with LayoutRunner(alice_session(backend, Inbox(sync_conversation=build))) as runner:
        await runner.until(lambda r: _current(r) == ["synced"])
        assert "Synced here" in text_of(_item(runner, "synced"))
        assert "tjs-inbox--chat-open" in _inbox_classes(runner)


async def test_feed_change_leaves_chat_alone(backend: EmbeddedBackend) -> None:
    """A message in another conversation updates only the feed, not the chat pane."""
    await _pair(backend, "with-bob", "bob")
    for number in range(20):
        await backend.service.send_message(TRUSTED, "group", f"history {number}", sender_id="carol")
    runner = LayoutRunner(alice_session(backend, Inbox(conversation_id="group")))
    recorded = record_paths(runner)
    async with runner:
        await runner.until(lambda r: "history 19" in r.text and "with-bob" in _feed_ids(r))
        await settle(runner)
        applied = len(recorded)
        await backend.service.send_message(TRUSTED, "with-bob", "elsewhere", sender_id="bob")
        await runner.until(lambda r: _feed_ids(r)[0] == "with-bob" and _badge(r, "with-bob") == "1")
        await settle(runner)
        paths = recorded[applied:]
        feed = _pointer(runner.model, _has_class("tjs-inbox__feed"))
        assert paths
        assert all(path.startswith(feed + "/") for path in paths), (feed, paths)


async def test_notification_click_selects(backend: EmbeddedBackend) -> None:
    session_ref: Ref[TalkSession | None] = Ref(None)
    async with LayoutRunner(alice_session(backend, Inbox(), session_ref=session_ref)) as runner:
        await runner.until(_loaded)
        session = session_ref.current
        assert session is not None
        session.desktop_notifications.report_permission("granted")
        session.set_desktop_notification_enabled(True)
        await backend.service.send_message(TRUSTED, "group", "ping", sender_id="bob")
        await wait_until(lambda: session.desktop_notifications.latest is not None)

        session.desktop_notifications.report_clicked("group")
        await runner.until(lambda r: _current(r) == ["group"], timeout=1)
        await runner.until(lambda r: "ping" in text_of(_chat_pane(r)))


async def test_prop_change_replaces_click_choice(backend: EmbeddedBackend) -> None:
    await _pair(backend, "with-bob", "bob")
    await _pair(backend, "with-carol", "carol")
    controls: dict[str, Callable[[str], None]] = {}

    @component
    def Controlled() -> Any:
        selected, set_selected = use_state("group")
        controls["select"] = set_selected
        return alice_session(backend, Inbox(conversation_id=selected))

    async with LayoutRunner(Controlled()) as runner:
        await runner.until(lambda r: _current(r) == ["group"])
        await _click_item(runner, "with-bob")
        await runner.until(lambda r: _current(r) == ["with-bob"])
        controls["select"]("with-carol")
        await runner.until(lambda r: _current(r) == ["with-carol"])


async def test_feed_consistent_after_burst(backend: EmbeddedBackend) -> None:
    """Messages arriving faster than renders still leave the right order and counts."""
    others = ["bob", "carol"]
    conversation_ids = [f"burst-{number}" for number in range(6)]
    for number, conversation_id in enumerate(conversation_ids):
        await _pair(backend, conversation_id, others[number % 2])
    async with LayoutRunner(alice_session(backend, Inbox())) as runner:
        await runner.until(lambda r: len(_feed_ids(r)) == 7)
        expected: dict[str, int] = {}
        for round_number in range(5):
            for number in (3, 0, 5, 1, 4, 2):
                conversation_id = conversation_ids[number]
                sender = others[number % 2]
                text = f"round {round_number} in {conversation_id}"
                await backend.service.send_message(TRUSTED, conversation_id, text, sender_id=sender)
                expected[conversation_id] = expected.get(conversation_id, 0) + 1
            await _click_item(runner, conversation_ids[round_number])
        order = ["burst-2", "burst-4", "burst-1", "burst-5", "burst-0", "burst-3", "group"]
        await runner.until(lambda r: _feed_ids(r) == order)
        await runner.until(lambda r: all(_badge(r, c) == str(n) for c, n in expected.items()))
        await runner.until(lambda r: _current(r) == ["burst-4"])
        for conversation_id in conversation_ids:
            assert f"round 4 in {conversation_id}" in text_of(_item(runner, conversation_id))


async def test_top_message_updates_only_item(backend: EmbeddedBackend) -> None:
    """A message that keeps the order re-renders its item, not the feed list."""
    await _pair(backend, "with-bob", "bob")
    await backend.service.send_message(TRUSTED, "group", "first", sender_id="carol")
    runner = LayoutRunner(alice_session(backend, Inbox()))
    recorded = record_paths(runner)
    async with runner:
        await runner.until(lambda r: _feed_ids(r) == ["group", "with-bob"])
        await settle(runner)
        applied = len(recorded)
        await backend.service.send_message(TRUSTED, "group", "second", sender_id="carol")
        await runner.until(lambda r: _badge(r, "group") == "2")
        await settle(runner)
        assert "Carol: second" in text_of(_item(runner, "group"))
        feed_list = _pointer(runner.model, _has_class("tjs-feed"))
        item = _pointer(runner.model, _is_item("group"))
        paths = recorded[applied:]
        assert paths
        for path in paths:
            assert item.startswith(path), (item, path)
            assert path.startswith(feed_list + "/"), (feed_list, path)
