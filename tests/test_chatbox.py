"""Chatbox features in a ReactPy Layout: props, editing, deleting, typing, events."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from reactpy import Ref
from websockets.asyncio.server import ServerConnection
from websockets.asyncio.server import serve as serve_websocket

from talkjs_components import Chatbox, TalkSession
from talkjs_components.auth import App, create_user_token
from talkjs_components.components.chatbox import _Presence
from talkjs_components.components.chatbox_events import (
    LeaveConversationEvent,
    SendMessageEvent,
)
from talkjs_components.components.chatbox_props import (
    CHATBOX_EVENTS,
    CHATBOX_PROPS,
    parse_chatbox_props,
)
from talkjs_components.embedded import EmbeddedBackend
from talkjs_components.errors import InvalidInput
from talkjs_components.models import (
    AccessLevel,
    ChatEvent,
    Conversation,
    Participation,
    PresenceChanged,
    UnreadsSnapshot,
    User,
)
from talkjs_components.protocol import HelloReceived, ServerProtocol
from talkjs_components.protocol.requests import OnlineUsers
from talkjs_components.service import TRUSTED, Limits
from talkjs_components.session import UIBox, WebSocketTransport

from .layout_tools import LayoutRunner, alice_session, find_all, text_of
from .remote_backend import ChatBackend
from .test_session import age_all_events, service_while_closed
from .waiting import wait_until


@pytest.fixture
def backend(any_backend: ChatBackend) -> ChatBackend:
    """Each Chatbox test runs twice: on the embedded backend, and on a chat server."""
    return any_backend


def _loaded(runner: LayoutRunner) -> bool:
    return "Bob, Carol" in runner.text


def _elements(runner: LayoutRunner, tag: str) -> list[dict[str, Any]]:
    return find_all(runner.model, lambda node: node.get("tagName") == tag)


async def _click(runner: LayoutRunner, label: str) -> None:
    """Click the first button whose text or aria-label is ``label``."""
    for button in _elements(runner, "button"):
        attributes = button.get("attributes", {})
        texts = "".join(child for child in button.get("children", []) if isinstance(child, str))
        if label in (texts, attributes.get("aria-label")):
            target = button["eventHandlers"]["onClick"]["target"]
            await runner.layout.deliver({"type": "layout-event", "target": target, "data": [{}]})
            return
    raise LookupError(f"no button {label!r}")


def test_props_camel_case_and_validation() -> None:
    options = parse_chatbox_props(
        {
            "showChatHeader": False,
            "messageField": {"placeholder": "Write", "enterSendsMessage": False},
            "highlightedWords": ["urgent"],
            "theme": {"accent": "#0a7"},
            "dir": "rtl",
            "onSendMessage": print,
        }
    )
    assert options.show_chat_header is False
    assert options.message_field.placeholder == "Write"
    assert options.message_field.enter_sends_message is False
    assert options.highlighted_words == ("urgent",)
    assert options.css_variables() == {"--tjs-accent": "#0a7"}
    assert options.dir == "rtl"
    assert "on_send_message" in options.events


@pytest.mark.parametrize(
    ("props", "fragment"),
    [
        ({"onSendMesage": print}, "no event 'onSendMesage'"),
        ({"colour": "red"}, "no prop 'colour'"),
        ({"dir": "up"}, "'ltr', 'rtl' or 'auto'"),
        ({"message_field": {"size": 3}}, "no option 'size'"),
        ({"theme": {"Accent!": "red"}}, "theme name 'Accent!' is invalid"),
        ({"theme": {"accent": "red; color: blue"}}, "without ';'"),
        ({"highlighted_words": "urgent"}, "list of strings"),
        # Values that are not iterable raised TypeError from the check.
        ({"highlighted_words": 5}, "list of strings, got 5"),
        ({"message_filter": {"type": ["=", "UserMessage"]}}, "unknown operator '='"),
        # These passed the check and failed while rendering or in an effect.
        ({"style": 5}, "style must be a dict of CSS property names"),
        ({"style": {"height": object()}}, "style must be a dict of CSS property names"),
        ({"chatbox_ref": 5}, "chatbox_ref must be a reactpy.Ref"),
    ],
)
def test_invalid_props_rejected(props: dict[str, Any], fragment: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_chatbox_props(props)
    assert fragment in caught.value.message


@pytest.mark.parametrize("value", [5, 1.5, True, object(), "x", b"x", [1], ("a", 3), {1: 2}])
def test_wrong_kind_values_raise_invalid_input(value: object) -> None:
    # Every prop and event rejects a value of the wrong kind with InvalidInput,
    # which the boxes show as an alert, and never with another exception.
    failures: list[str] = []
    for name in [*CHATBOX_PROPS, *CHATBOX_EVENTS]:
        try:
            parse_chatbox_props({name: value})
        except InvalidInput:
            continue
        except Exception as exc:
            failures.append(f"{name}: {type(exc).__name__}: {exc}")

    assert failures == []


async def test_invalid_props_shown_as_alert(backend: EmbeddedBackend) -> None:
    root = alice_session(backend, Chatbox(conversation_id="group", dir="sideways"))
    async with LayoutRunner(root) as runner:
        await runner.until(lambda r: "'ltr', 'rtl' or 'auto'" in r.text)


async def test_chatbox_ref_set_and_cleared(backend: EmbeddedBackend) -> None:
    ref: Ref[UIBox | None] = Ref(None)
    session_ref: Ref[TalkSession | None] = Ref(None)
    root = alice_session(
        backend, Chatbox(conversation_id="group", chatbox_ref=ref), session_ref=session_ref
    )
    async with LayoutRunner(root) as runner:
        await runner.until(lambda r: _loaded(r) and ref.current is not None)
        box = ref.current
        assert box is not None
        assert box.current_conversation_id == "group"
        assert box.is_alive
    assert ref.current is None
    assert not box.is_alive


async def test_message_filter_and_highlights(backend: EmbeddedBackend) -> None:
    await backend.service.send_message(TRUSTED, "group", "urgent: lunch", sender_id="bob")
    await backend.service.send_message(TRUSTED, "group", "from carol", sender_id="carol")
    chatbox = Chatbox(
        conversation_id="group",
        message_filter={"sender": {"id": ["==", "bob"]}},
        highlighted_words=["urgent"],
    )
    async with LayoutRunner(alice_session(backend, chatbox)) as runner:
        await runner.until(lambda r: _loaded(r) and "lunch" in r.text)
        assert "from carol" not in runner.text
        marks = _elements(runner, "mark")
        assert [mark["children"] for mark in marks] == [["urgent"]]


async def test_header_and_composer_can_hide(backend: EmbeddedBackend) -> None:
    chatbox = Chatbox(
        conversation_id="group", show_chat_header=False, message_field={"visible": False}
    )
    async with LayoutRunner(alice_session(backend, chatbox)) as runner:
        await runner.until(lambda r: "No messages yet" in r.text)
        assert "Bob, Carol" not in runner.text
        assert not find_all(runner.model, lambda node: "onSend" in node.get("eventHandlers", {}))


async def test_edit_own_message(backend: EmbeddedBackend) -> None:
    await backend.service.send_message(TRUSTED, "group", "tpyo here", sender_id="alice")
    async with LayoutRunner(alice_session(backend, Chatbox(conversation_id="group"))) as runner:
        await runner.until(lambda r: _loaded(r) and "tpyo here" in r.text)
        await _click(runner, "Edit message")
        await runner.until(lambda r: bool(find_all(r.model, _has_handler("onSave"))))
        await runner.trigger("onSave", {"text": "typo fixed"})
        await runner.until(lambda r: "typo fixed" in r.text and "(edited)" in r.text)
    page = await backend.service.list_messages(TRUSTED, "group")
    assert page.messages[0].text == "typo fixed"


async def test_delete_asks_first(backend: EmbeddedBackend) -> None:
    await backend.service.send_message(TRUSTED, "group", "oops", sender_id="alice")
    async with LayoutRunner(alice_session(backend, Chatbox(conversation_id="group"))) as runner:
        await runner.until(lambda r: _loaded(r) and "oops" in r.text)
        await _click(runner, "Delete message")
        await runner.until(lambda r: "Delete this message?" in r.text)
        assert (await backend.service.list_messages(TRUSTED, "group")).messages
        await _click(runner, "Delete")
        await runner.until(lambda r: "oops" not in r.text)
    assert (await backend.service.list_messages(TRUSTED, "group")).messages == []


async def test_others_messages_have_no_actions(backend: EmbeddedBackend) -> None:
    await backend.service.send_message(TRUSTED, "group", "bob's", sender_id="bob")
    async with LayoutRunner(alice_session(backend, Chatbox(conversation_id="group"))) as runner:
        await runner.until(lambda r: _loaded(r) and "bob's" in r.text)
        labels = [b.get("attributes", {}).get("aria-label") for b in _elements(runner, "button")]
        assert "Edit message" not in labels


async def test_edits_and_deletes_arrive_live(backend: EmbeddedBackend) -> None:
    sent = await backend.service.send_message(TRUSTED, "group", "first draft", sender_id="bob")
    gone = await backend.service.send_message(TRUSTED, "group", "to be removed", sender_id="bob")
    async with LayoutRunner(alice_session(backend, Chatbox(conversation_id="group"))) as runner:
        await runner.until(lambda r: _loaded(r) and "to be removed" in r.text)
        await backend.service.edit_message("bob", "group", sent.id, text="final text")
        await backend.service.delete_message("bob", "group", gone.id)
        await runner.until(lambda r: "final text" in r.text and "to be removed" not in r.text)


async def test_reloads_after_missed_events_were_pruned(backend: EmbeddedBackend) -> None:
    # Messages sent while the session is away, whose events are pruned before
    # it reconnects, can't be replayed: the chatbox must load the list again.
    async with LayoutRunner(alice_session(backend, Chatbox(conversation_id="group"))) as runner:
        await runner.until(_loaded)
        await backend.close()
        async with service_while_closed(backend, Limits(event_retention_ms=60_000)) as other:
            await other.send_message(TRUSTED, "group", "sent while away", sender_id="bob")
            age_all_events(Path(backend.database), days=1)
            # Each write prunes up to two expired events, the session's last included.
            await other.send_message(TRUSTED, "group", "pruned soon", sender_id="bob")
            await other.send_message(TRUSTED, "group", "last one", sender_id="bob")
        await backend.start()
        await runner.until(lambda r: "sent while away" in r.text and "last one" in r.text)


async def test_typing_indicator_shows_and_clears(backend: EmbeddedBackend) -> None:
    async with LayoutRunner(alice_session(backend, Chatbox(conversation_id="group"))) as runner:
        await runner.until(_loaded)
        await backend.service.set_typing("bob", "group", True)
        await runner.until(lambda r: "Bob is typing…" in r.text)
        await backend.service.set_typing("carol", "group", True)
        await runner.until(lambda r: "Bob and Carol are typing…" in r.text)
        await backend.service.send_message(TRUSTED, "group", "done", sender_id="bob")
        await runner.until(lambda r: "Carol is typing…" in r.text and "Bob and" not in r.text)
        await backend.service.set_typing("carol", "group", False)
        await runner.until(lambda r: "typing" not in r.text)


async def test_typing_cleared_when_typist_offline(backend: EmbeddedBackend) -> None:
    session_ref: Ref[TalkSession | None] = Ref(None)
    root = alice_session(backend, Chatbox(conversation_id="group"), session_ref=session_ref)
    async with LayoutRunner(root) as runner:
        await runner.until(lambda r: _loaded(r) and session_ref.current is not None)
        assert session_ref.current is not None
        offline: list[str] = []

        def record_offline(event: ChatEvent) -> None:
            if isinstance(event, PresenceChanged) and not event.online:
                offline.append(event.user_id)

        session_ref.current.on_event(record_offline)
        bob = _user_session(backend, "bob")
        try:
            await bob.wait_ready()
            await bob.set_typing("group", True)
            await runner.until(lambda r: _typing_label(r) == "Bob is typing…")
        finally:
            bob.destroy()
        await wait_until(lambda: "bob" in offline, what="bob's offline presence event")

        # The indicator is read at the next event after bob's offline one, so
        # no wait needs a bound below TYPING_EXPIRY_MS (8 s), after which bob's
        # typing expires anyway. Alice's session calls its handlers one event
        # at a time, in order, so once carol's typing shows, the indicator has
        # handled bob's presence event.
        await backend.service.set_typing("carol", "group", True)
        await runner.until(lambda r: "Carol" in _typing_label(r))
        assert _typing_label(runner) == "Carol is typing…"


async def test_composer_typing_reaches_others(backend: EmbeddedBackend) -> None:
    seen: list[tuple[str, bool]] = []
    backend.service.subscribe(
        "bob",
        lambda event: (
            seen.append((event.user_id, event.typing)) if event.type == "typing_changed" else None
        ),
    )
    async with LayoutRunner(alice_session(backend, Chatbox(conversation_id="group"))) as runner:
        await runner.until(_loaded)
        await runner.trigger("onTyping", {"typing": True})
        await wait_until(lambda: ("alice", True) in seen, what="alice's typing event")


async def test_send_message_override_and_cancel(backend: EmbeddedBackend) -> None:
    def shout(event: SendMessageEvent) -> None:
        if event.text == "secret":
            event.override(cancel=True)
        else:
            event.override(text=event.text.upper(), custom={"shouted": "yes"})

    chatbox = Chatbox(conversation_id="group", on_send_message=shout)
    async with LayoutRunner(alice_session(backend, chatbox)) as runner:
        await runner.until(_loaded)
        await runner.trigger("onSend", {"text": "secret", "key": "k1"})
        await runner.trigger("onSend", {"text": "hello", "key": "k2"})
        await runner.until(lambda r: "HELLO" in r.text)
    messages = (await backend.service.list_messages(TRUSTED, "group")).messages
    assert [(m.text, m.custom) for m in messages] == [("HELLO", {"shouted": "yes"})]


async def test_focus_and_blur_events(backend: EmbeddedBackend) -> None:
    events: list[str] = []
    chatbox = Chatbox(
        conversation_id="group",
        on_focus=lambda: events.append("focus"),
        on_blur=lambda: events.append("blur"),
    )
    async with LayoutRunner(alice_session(backend, chatbox)) as runner:
        await runner.until(_loaded)
        await runner.trigger("onFocus", {})
        await runner.trigger("onBlur", {})
        await wait_until(lambda: events == ["focus", "blur"], what="focus then blur")


async def test_leave_conversation_cancellable(backend: EmbeddedBackend) -> None:
    attempts: list[LeaveConversationEvent] = []

    def keep_first(event: LeaveConversationEvent) -> None:
        attempts.append(event)
        if len(attempts) == 1:
            event.prevent_default()

    chatbox = Chatbox(conversation_id="group", on_leave_conversation=keep_first)
    async with LayoutRunner(alice_session(backend, chatbox)) as runner:
        await runner.until(_loaded)
        await _click(runner, "Leave conversation")
        await wait_until(lambda: len(attempts) == 1)
        conversation = await backend.service.get_conversation(TRUSTED, "group")
        assert "alice" in conversation.participants
        await _click(runner, "Leave conversation")
        await wait_until(lambda: len(attempts) == 2)
        for _ in range(100):
            conversation = await backend.service.get_conversation(TRUSTED, "group")
            if "alice" not in conversation.participants:
                break
            await wait_until(lambda: True)
        assert "alice" not in conversation.participants


async def test_as_guest_is_read_only(backend: EmbeddedBackend) -> None:
    await backend.service.send_message(TRUSTED, "group", "unread", sender_id="bob")
    chatbox = Chatbox(conversation_id="group", as_guest=True)
    async with LayoutRunner(alice_session(backend, chatbox)) as runner:
        await runner.until(lambda r: _loaded(r) and "unread" in r.text)
        assert not find_all(runner.model, _has_handler("onSend"))
        await runner.trigger("onSeen", {})
    assert (await backend.service.get_unreads("alice"))[0].unread_message_count == 1


async def test_read_participant_cannot_write(backend: EmbeddedBackend) -> None:
    await backend.service.sync_conversation(
        TRUSTED,
        "announcements",
        participants={
            "alice": Participation(access=AccessLevel.READ),
            "bob": Participation(),
        },
    )
    async with LayoutRunner(
        alice_session(backend, Chatbox(conversation_id="announcements"))
    ) as runner:
        await runner.until(lambda r: "Bob" in r.text)
        composer = find_all(runner.model, _has_handler("onSend"))[0]
        assert composer["attributes"]["disabled"] is True


def _has_handler(name: str) -> Any:
    return lambda node: name in node.get("eventHandlers", {})


async def test_presence_in_header(backend: EmbeddedBackend) -> None:
    await backend.service.sync_conversation(
        TRUSTED, "pair", participants={"alice": Participation(), "bob": Participation()}
    )
    async with LayoutRunner(alice_session(backend, Chatbox(conversation_id="pair"))) as runner:
        await runner.until(lambda r: "Offline" in r.text)
        bob = TalkSession(backend.app.app_id, "bob", token=create_user_token(backend.app, "bob"))
        await bob.wait_ready()
        await runner.until(lambda r: "Online" in r.text)
        bob.destroy()
        await runner.until(lambda r: "Offline" in r.text)


async def test_group_presence_counts(backend: EmbeddedBackend) -> None:
    carol = TalkSession(backend.app.app_id, "carol", token=create_user_token(backend.app, "carol"))
    await carol.wait_ready()
    try:
        async with LayoutRunner(alice_session(backend, Chatbox(conversation_id="group"))) as runner:
            await runner.until(lambda r: "1 online" in r.text)
    finally:
        carol.destroy()


async def test_presence_of_partner_in_pair_only(backend: EmbeddedBackend) -> None:
    # Dave shares no conversation with alice but "pair", unlike bob and carol,
    # who are also in "group".
    await backend.service.upsert_user(User(id="dave", name="Dave"))
    await backend.service.sync_conversation(
        TRUSTED, "pair", participants={"alice": Participation(), "dave": Participation()}
    )
    async with LayoutRunner(alice_session(backend, Chatbox(conversation_id="pair"))) as runner:
        await runner.until(lambda r: "Dave" in r.text)
        assert _header_presence(runner) == ("Offline", "offline")

        # Dave may connect before the header's query of online_users returns,
        # so the first "Online" can come from the query. He then connects a
        # second time: the header queries only when it mounts or the
        # participants change, so every later change comes from a presence event.
        for _ in range(2):
            dave = _user_session(backend, "dave")
            try:
                await dave.wait_ready()
                await runner.until(lambda r: _header_presence(r) == ("Online", "online"))
            finally:
                dave.destroy()
            await runner.until(lambda r: _header_presence(r) == ("Offline", "offline"))


async def test_presence_of_participant_added_online(backend: EmbeddedBackend) -> None:
    # Dave is in no conversation when he connects, so his coming online
    # publishes no presence event. The header learns it only by querying
    # online_users again when he is added.
    await backend.service.upsert_user(User(id="dave", name="Dave"))
    await backend.service.sync_conversation(
        TRUSTED, "team", participants={"alice": Participation(), "bob": Participation()}
    )
    dave = _user_session(backend, "dave")
    try:
        await dave.wait_ready()
        async with LayoutRunner(alice_session(backend, Chatbox(conversation_id="team"))) as runner:
            await runner.until(lambda r: "Bob" in r.text)
            assert _header_presence(runner) == ("Offline", "offline")

            await backend.service.sync_conversation(
                TRUSTED, "team", participants={"dave": Participation()}
            )
            await runner.until(lambda r: _header_presence(r) == ("1 online", "online"))

            dave.destroy()
            await runner.until(lambda r: _header_presence(r) == ("0 online", "offline"))
    finally:
        dave.destroy()


async def test_header_names_added_participant(backend: EmbeddedBackend) -> None:
    await backend.service.upsert_user(User(id="dave", name="Dave"))
    await backend.service.sync_conversation(
        TRUSTED, "team", participants={"alice": Participation(), "bob": Participation()}
    )
    async with LayoutRunner(alice_session(backend, Chatbox(conversation_id="team"))) as runner:
        await runner.until(lambda r: _header_title(r) == "Bob")

        await backend.service.sync_conversation(
            TRUSTED, "team", participants={"dave": Participation()}
        )
        # By name, as for the participants read when the conversation opened.
        await runner.until(lambda r: "Dave" in _header_title(r))
        assert "dave" not in _header_title(runner)


async def test_header_picture(backend: EmbeddedBackend) -> None:
    await backend.service.upsert_user(User(id="bob", photo_url="https://example.com/bob.png"))
    await backend.service.sync_conversation(
        TRUSTED, "pair", participants={"alice": Participation(), "bob": Participation()}
    )
    async with LayoutRunner(alice_session(backend, Chatbox(conversation_id="pair"))) as runner:
        await runner.until(lambda r: "Bob" in r.text and bool(_large_avatars(r)))
        assert _large_avatars(runner)[0]["attributes"]["src"] == "https://example.com/bob.png"
    async with LayoutRunner(alice_session(backend, Chatbox(conversation_id="group"))) as runner:
        await runner.until(_loaded)
        assert _large_avatars(runner)[0]["children"] == ["BC"]


def _large_avatars(runner: LayoutRunner) -> list[dict[str, Any]]:
    return find_all(
        runner.model,
        lambda node: "tjs-avatar--large" in node.get("attributes", {}).get("className", ""),
    )


def _user_session(backend: ChatBackend, user_id: str) -> TalkSession:
    """Return a new ``TalkSession`` of ``user_id``, which makes the user online once ready."""
    token = create_user_token(backend.app, user_id)
    return TalkSession(backend.app.app_id, user_id, token=token)


def _typing_label(runner: LayoutRunner) -> str:
    """Return the text of the typing indicator, empty when no other participant types."""
    indicators = find_all(runner.model, lambda node: _has_class(node, "tjs-typing"))
    return "".join(text_of(indicator) for indicator in indicators)


def _header_presence(runner: LayoutRunner) -> tuple[str, str]:
    """Return the header's presence label and state (``online`` or ``offline``).

    Raises:
        LookupError: No presence element is rendered.
    """
    found = find_all(runner.model, lambda node: _has_class(node, "tjs-presence"))
    if not found:
        raise LookupError("no element with class tjs-presence is rendered")
    classes = found[0]["attributes"]["className"].split()
    state = "online" if "tjs-presence--online" in classes else "offline"
    return text_of(found[0]), state


def _header_title(runner: LayoutRunner) -> str:
    """Return the text of the Chatbox header's title."""
    return "".join(
        text_of(node) for node in find_all(runner.model, lambda node: _has_class(node, "tjs-title"))
    )


def _has_class(node: dict[str, Any], name: str) -> bool:
    return name in node.get("attributes", {}).get("className", "").split()


async def test_presence_heard_during_query_kept() -> None:
    # The server is the real protocol machine with scripted results. It sends
    # dave's presence event before the result of the header's online_users
    # query, and that result (computed before dave connected) lacks him. A
    # real server does this when the query waits on the broker's tracker
    # while the event is delivered. Then bob comes online. Both events are
    # newer than the result, so the header must end with both online.
    async def scripted_server(websocket: ServerConnection) -> None:
        loop = asyncio.get_running_loop()
        machine = ServerProtocol(loop.time())
        async for text in websocket:
            machine.receive_text(str(text), loop.time())
            for event in machine.events_received():
                if isinstance(event, HelloReceived):
                    machine.accept(User(id="alice", name="Alice"), latest_seq=0)
                elif isinstance(event.request, OnlineUsers):
                    machine.send_event(PresenceChanged(user_id="dave", online=True))
                    machine.send_result(event.request_id, [])
                    machine.send_event(PresenceChanged(user_id="bob", online=True))
                else:
                    snapshot = UnreadsSnapshot(unreads=[], read_positions={}, as_of_event_seq=0)
                    machine.send_result(event.request_id, snapshot)
            for frame in machine.frames_to_send():
                await websocket.send(frame)

    async with serve_websocket(scripted_server, "127.0.0.1", 0) as listening:
        port = next(iter(listening.sockets)).getsockname()[1]
        app = App("scripted", "sk_test_" + "s" * 40)
        session = TalkSession(
            app.app_id,
            "alice",
            token=create_user_token(app, "alice"),
            transport=WebSocketTransport(f"ws://127.0.0.1:{port}"),
        )
        group = Conversation(
            id="trio", participants={user: Participation() for user in ("alice", "bob", "dave")}
        )
        try:
            await session.wait_ready()
            async with LayoutRunner(_Presence(session, group)) as runner:
                await runner.until(lambda r: _header_presence(r) == ("2 online", "online"))
        finally:
            session.destroy()
