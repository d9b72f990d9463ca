"""Custom message actions in a ReactPy Layout: who gets which action, handlers, invalid props."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from talkjs_components import Chatbox, Inbox, MessageAction, MessageActionEvent, Popup
from talkjs_components.components.chatbox_props import parse_chatbox_props
from talkjs_components.components.message_actions import (
    MessageActionRunner,
    compile_message_actions,
)
from talkjs_components.components.message_cache import MessageCache
from talkjs_components.embedded import EmbeddedBackend
from talkjs_components.errors import InvalidInput
from talkjs_components.models import AccessLevel, Conversation, Message, MessageType, Participation
from talkjs_components.service import TRUSTED

from .layout_tools import LayoutRunner, alice_session, find_all
from .waiting import wait_until

QUOTE = MessageAction(name="quote", label="Quote", params={"style": "inline"})
NOTE = MessageAction(name="note", label="Add note", allowed="own")
REPORT = MessageAction(name="report", label="Report", allowed="others")


def _bubble(runner: LayoutRunner, message_id: str) -> dict[str, Any] | None:
    bubbles = find_all(
        runner.model,
        lambda node: node.get("attributes", {}).get("data-message-id") == message_id,
    )
    return bubbles[0] if bubbles else None


def _menu(runner: LayoutRunner, message_id: str) -> dict[str, Any] | None:
    """Return the "Message actions" menu element of a message, or ``None``."""
    bubble = _bubble(runner, message_id)
    if bubble is None:
        return None
    menus = find_all(bubble, lambda node: node.get("tagName") == "MessageActionMenu")
    return menus[0] if menus else None


def _labels(runner: LayoutRunner, message_id: str) -> list[str]:
    """Return the labels of a message's menu items; empty when it has no menu."""
    menu = _menu(runner, message_id)
    if menu is None:
        return []
    return [action["label"] for action in menu["attributes"]["actions"]]


def _shown(runner: LayoutRunner, *message_ids: str) -> bool:
    return all(_bubble(runner, message_id) is not None for message_id in message_ids)


async def _pick(runner: LayoutRunner, message_id: str, name: str) -> None:
    """Send the event the browser sends when the user picks action ``name``."""
    menu = _menu(runner, message_id)
    if menu is None:
        raise LookupError(f"message {message_id!r} has no menu")
    target = menu["eventHandlers"]["onAction"]["target"]
    await runner.layout.deliver(
        {"type": "layout-event", "target": target, "data": [{"name": name}]}
    )


async def test_allowed_rules(backend: EmbeddedBackend) -> None:
    mine = await backend.service.send_message(TRUSTED, "group", "mine", sender_id="alice")
    theirs = await backend.service.send_message(TRUSTED, "group", "theirs", sender_id="bob")
    system = await backend.service.send_message(
        TRUSTED, "group", "Bob joined", type=MessageType.SYSTEM
    )
    chatbox = Chatbox(conversation_id="group", message_actions=[QUOTE, NOTE, REPORT])
    async with LayoutRunner(alice_session(backend, chatbox)) as runner:
        # Edit and Delete come once the conversation has loaded, after the messages.
        await runner.until(lambda r: _shown(r, system.id) and bool(_buttons(r, mine.id)))
        assert _labels(runner, mine.id) == ["Quote", "Add note"]
        assert _labels(runner, theirs.id) == ["Quote", "Report"]
        assert _menu(runner, system.id) is None
        assert _buttons(runner, mine.id) == ["Edit message", "Delete message"]
        assert _buttons(runner, theirs.id) == []


def _buttons(runner: LayoutRunner, message_id: str) -> list[str]:
    """Return the labels of the buttons that Python renders in a message."""
    bubble = _bubble(runner, message_id)
    buttons = find_all(bubble, lambda node: node.get("tagName") == "button") if bubble else []
    return [button["attributes"].get("aria-label") for button in buttons]


async def test_menu_props_for_the_browser(backend: EmbeddedBackend) -> None:
    sent = await backend.service.send_message(TRUSTED, "group", "hello", sender_id="bob")
    chatbox = Chatbox(conversation_id="group", message_actions=[QUOTE])
    async with LayoutRunner(alice_session(backend, chatbox)) as runner:
        await runner.until(lambda r: _menu(r, sent.id) is not None)
        menu = _menu(runner, sent.id)
        assert menu is not None
        assert menu["attributes"]["label"] == "Message actions"
        # Only names and labels reach the browser; params stay on the server.
        assert menu["attributes"]["actions"] == [{"name": "quote", "label": "Quote"}]


async def test_no_actions_without_prop(backend: EmbeddedBackend) -> None:
    sent = await backend.service.send_message(TRUSTED, "group", "hello", sender_id="bob")
    async with LayoutRunner(alice_session(backend, Chatbox(conversation_id="group"))) as runner:
        await runner.until(lambda r: _shown(r, sent.id))
        assert _menu(runner, sent.id) is None


async def test_guest_gets_no_actions(backend: EmbeddedBackend) -> None:
    sent = await backend.service.send_message(TRUSTED, "group", "hello", sender_id="bob")
    chatbox = Chatbox(conversation_id="group", as_guest=True, message_actions=[QUOTE, REPORT])
    async with LayoutRunner(alice_session(backend, chatbox)) as runner:
        await runner.until(lambda r: _shown(r, sent.id))
        assert _menu(runner, sent.id) is None


async def test_read_only_participant_gets_actions(backend: EmbeddedBackend) -> None:
    await backend.service.sync_conversation(
        TRUSTED,
        "announcements",
        participants={"alice": Participation(access=AccessLevel.READ), "bob": Participation()},
    )
    sent = await backend.service.send_message(TRUSTED, "announcements", "news", sender_id="bob")
    picked: list[str] = []
    chatbox = Chatbox(
        conversation_id="announcements",
        message_actions=[REPORT],
        on_custom_message_action=lambda event: picked.append(event.message.body),
    )
    async with LayoutRunner(alice_session(backend, chatbox)) as runner:
        await runner.until(lambda r: _menu(r, sent.id) is not None)
        await _pick(runner, sent.id, "report")
        await wait_until(lambda: picked == ["news"], what="the report handler")


async def test_predicate_action_follows_message(backend: EmbeddedBackend) -> None:
    ticket = await backend.service.send_message(
        TRUSTED, "group", "printer broken", sender_id="bob", custom={"status": "open"}
    )
    chat = await backend.service.send_message(TRUSTED, "group", "lunch?", sender_id="carol")
    close = MessageAction(
        name="close", label="Close ticket", allowed={"custom": {"status": ["==", "open"]}}
    )
    thank = MessageAction(name="thank", label="Thank", allowed={"sender": {"id": ["==", "carol"]}})
    chatbox = Chatbox(conversation_id="group", message_actions=[close, thank])
    async with LayoutRunner(alice_session(backend, chatbox)) as runner:
        await runner.until(lambda r: _shown(r, ticket.id, chat.id))
        assert _labels(runner, ticket.id) == ["Close ticket"]
        assert _labels(runner, chat.id) == ["Thank"]

        await backend.service.edit_message(TRUSTED, "group", ticket.id, custom={"status": "closed"})
        await runner.until(lambda r: _menu(r, ticket.id) is None)
        await backend.service.edit_message(TRUSTED, "group", ticket.id, custom={"status": "open"})
        await runner.until(lambda r: _labels(r, ticket.id) == ["Close ticket"])


async def test_event_has_current_message(backend: EmbeddedBackend) -> None:
    sent = await backend.service.send_message(TRUSTED, "group", "first draft", sender_id="bob")
    own = await backend.service.send_message(TRUSTED, "group", "my note", sender_id="alice")
    events: list[MessageActionEvent] = []
    chatbox = Chatbox(
        conversation_id="group", message_actions=[QUOTE], on_custom_message_action=events.append
    )
    async with LayoutRunner(alice_session(backend, chatbox)) as runner:
        await runner.until(lambda r: _shown(r, sent.id, own.id))
        await backend.service.edit_message(TRUSTED, "group", sent.id, text="final text")
        await runner.until(lambda r: "final text" in r.text)
        await _pick(runner, sent.id, "quote")
        await _pick(runner, own.id, "quote")
        await wait_until(lambda: len(events) == 2, what="two action events")

    theirs, mine = events
    assert theirs.action == "quote"
    assert theirs.params == {"style": "inline"}
    assert theirs.message.id == sent.id
    assert theirs.message.body == "final text"
    assert theirs.message.sender_id == "bob"
    assert theirs.message.sender is not None
    assert theirs.message.sender.name == "Bob"
    assert theirs.message.is_by_me is False
    assert theirs.message.conversation.id == "group"
    assert mine.message.body == "my note"
    assert mine.message.is_by_me is True


async def test_params_are_a_copy(backend: EmbeddedBackend) -> None:
    sent = await backend.service.send_message(TRUSTED, "group", "hello", sender_id="bob")
    seen: list[dict[str, str]] = []

    def spoil(event: MessageActionEvent) -> None:
        seen.append(dict(event.params))
        event.params["style"] = "changed"

    chatbox = Chatbox(
        conversation_id="group", message_actions=[QUOTE], on_custom_message_action=spoil
    )
    async with LayoutRunner(alice_session(backend, chatbox)) as runner:
        await runner.until(lambda r: _menu(r, sent.id) is not None)
        await _pick(runner, sent.id, "quote")
        await _pick(runner, sent.id, "quote")
        await wait_until(lambda: len(seen) == 2, what="two action events")
    assert seen == [{"style": "inline"}, {"style": "inline"}]
    assert QUOTE.params == {"style": "inline"}


async def test_mapping_handlers(backend: EmbeddedBackend, caplog: pytest.LogCaptureFixture) -> None:
    sent = await backend.service.send_message(TRUSTED, "group", "hello", sender_id="bob")
    quoted: list[str] = []
    pin = MessageAction(name="pin", label="Pin")
    chatbox = Chatbox(
        conversation_id="group",
        message_actions=[QUOTE, pin],
        on_custom_message_action={"quote": lambda event: quoted.append(event.action)},
    )
    caplog.set_level(logging.DEBUG, logger="talkjs_components.ui")
    async with LayoutRunner(alice_session(backend, chatbox)) as runner:
        await runner.until(lambda r: _labels(r, sent.id) == ["Quote", "Pin"])
        # Events of one target run in order, so "pin" is done once "quote" is.
        await _pick(runner, sent.id, "pin")
        await _pick(runner, sent.id, "quote")
        await wait_until(lambda: quoted == ["quote"], what="the quote handler")
    ignored = [
        record.getMessage()
        for record in caplog.records
        if record.name == "talkjs_components.ui" and record.levelno == logging.DEBUG
    ]
    assert "on_custom_message_action has no handler for action 'pin'; ignored" in ignored


async def test_async_handler_awaited(backend: EmbeddedBackend) -> None:
    sent = await backend.service.send_message(TRUSTED, "group", "ship it", sender_id="bob")

    async def reply(event: MessageActionEvent) -> None:
        await backend.service.send_message(
            TRUSTED, "group", f"> {event.message.body}", sender_id="alice"
        )

    chatbox = Chatbox(
        conversation_id="group",
        messageActions=[QUOTE],
        onCustomMessageAction={"quote": reply},
    )
    async with LayoutRunner(alice_session(backend, chatbox)) as runner:
        await runner.until(lambda r: _menu(r, sent.id) is not None)
        await _pick(runner, sent.id, "quote")
        await runner.until(lambda r: "> ship it" in r.text)


async def test_failing_handler_logged(
    backend: EmbeddedBackend, caplog: pytest.LogCaptureFixture
) -> None:
    sent = await backend.service.send_message(TRUSTED, "group", "hello", sender_id="bob")
    calls: list[str] = []

    async def broken(event: MessageActionEvent) -> None:
        calls.append(event.action)
        raise RuntimeError("handler bug")

    chatbox = Chatbox(
        conversation_id="group", message_actions=[QUOTE], on_custom_message_action=broken
    )
    async with LayoutRunner(alice_session(backend, chatbox)) as runner:
        await runner.until(lambda r: _menu(r, sent.id) is not None)
        await _pick(runner, sent.id, "quote")
        await _pick(runner, sent.id, "quote")
        await wait_until(lambda: len(calls) == 2, what="both calls of the failing handler")
    failures = [record for record in caplog.records if record.exc_info is not None]
    assert len(failures) == 2
    assert failures[0].getMessage() == (
        f"on_custom_message_action handler of user 'alice' failed for action 'quote' "
        f"on message {sent.id!r}"
    )


async def test_inbox_and_popup_pass_actions(backend: EmbeddedBackend) -> None:
    sent = await backend.service.send_message(TRUSTED, "group", "hello", sender_id="bob")
    inbox = Inbox(conversation_id="group", messageActions=[REPORT])
    async with LayoutRunner(alice_session(backend, inbox)) as runner:
        await runner.until(lambda r: _labels(r, sent.id) == ["Report"])
    popup = Popup(conversation_id="group", show=True, message_actions=[QUOTE])
    async with LayoutRunner(alice_session(backend, popup)) as runner:
        await runner.until(lambda r: _labels(r, sent.id) == ["Quote"])


async def test_invalid_actions_shown_as_alert(backend: EmbeddedBackend) -> None:
    chatbox = Chatbox(conversation_id="group", message_actions=[QUOTE, QUOTE])
    async with LayoutRunner(alice_session(backend, chatbox)) as runner:
        await runner.until(lambda r: bool(_alerts(r)))
        assert _alerts(runner) == [
            "Chatbox message_actions[1].name 'quote' is also the name of message_actions[0]: "
            "give each action a unique name"
        ]


def _alerts(runner: LayoutRunner) -> list[str]:
    elements = find_all(
        runner.model, lambda node: node.get("attributes", {}).get("role") == "alert"
    )
    return ["".join(str(child) for child in element.get("children", [])) for element in elements]


def test_camel_case_props_and_dict_actions() -> None:
    options = parse_chatbox_props(
        {
            "messageActions": [
                {"name": "quote", "label": "Quote", "params": {"style": "inline"}},
                {"name": "report", "label": "Report", "allowed": "others"},
            ],
            "onCustomMessageAction": {"quote": print},
        }
    )
    assert [action.name for action in options.message_actions] == ["quote", "report"]
    assert options.message_actions[0].params == (("style", "inline"),)
    assert options.message_actions[1].rule == "others"
    assert callable(options.events["on_custom_message_action"])


def test_equal_actions_compile_equal() -> None:
    first = compile_message_actions(
        [QUOTE, MessageAction("close", "Close", {"custom": {"a": "exists"}})]
    )
    second = compile_message_actions(
        [
            {"name": "quote", "label": "Quote", "params": {"style": "inline"}},
            {"name": "close", "label": "Close", "allowed": {"custom": {"a": "exists"}}},
        ]
    )
    assert first == second


LONG_NAME = "x" * 65


@pytest.mark.parametrize(
    ("props", "message"),
    [
        (
            {"message_actions": "quote"},
            "Chatbox message_actions must be a list of MessageAction, got str",
        ),
        (
            {"message_actions": [42]},
            "Chatbox message_actions[0] must be a MessageAction or a dict with keys "
            "name, label, allowed, params, got int",
        ),
        (
            {"message_actions": [{"name": "quote", "label": "Quote", "title": "x"}]},
            "Chatbox message_actions[0] has no key 'title'; valid keys are: "
            "name, label, allowed, params",
        ),
        (
            {"message_actions": [QUOTE, MessageAction("", "Empty")]},
            "Chatbox message_actions[1].name must be a non-empty string, got ''",
        ),
        (
            {"message_actions": [MessageAction(LONG_NAME, "Long")]},
            f"Chatbox message_actions[0].name {LONG_NAME!r} has 65 characters, "
            "more than the limit of 64: use a shorter name",
        ),
        (
            {"message_actions": [{"name": "quote"}]},
            "Chatbox message_actions[0].label must be a non-empty string, got None",
        ),
        (
            {"message_actions": [MessageAction("quote", "Quote", allowed="mine")]},
            "Chatbox message_actions[0].allowed 'mine' is invalid: use 'all', 'own', "
            "'others' or a MessagePredicate such as {'custom': {'status': ['==', 'open']}}",
        ),
        (
            {
                "message_actions": [
                    MessageAction("quote", "Quote", allowed={"sender": {"id": ["=", "bob"]}})
                ]
            },
            "Chatbox message_actions[0].allowed.sender.id: unknown operator '=' in ['=', 'bob']: "
            "use '==', '!=', 'oneOf' or '!oneOf'",
        ),
        (
            {"message_actions": [MessageAction("quote", "Quote", params={"n": 1})]},  # type: ignore[dict-item]
            "Chatbox message_actions[0].params must be a dict of strings to strings, got {'n': 1}",
        ),
        (
            {"on_custom_message_action": "quote"},
            "Chatbox event prop 'on_custom_message_action' must be a function or a dict of "
            "action names to functions, got str",
        ),
        (
            {"onCustomMessageAction": {"quote": "reply"}},
            "Chatbox onCustomMessageAction handler of action 'quote' must be a function, got str",
        ),
        (
            {"message_actions": [QUOTE], "messageActions": [QUOTE]},
            "Chatbox got 'message_actions' twice: pass one spelling of it",
        ),
    ],
)
def test_invalid_props_rejected(props: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_chatbox_props(props)
    assert caught.value.message == message


def _message(message_id: str, sender_id: str | None, seq: int, **fields: Any) -> Message:
    return Message(
        id=message_id,
        conversation_id="group",
        sender_id=sender_id,
        text=f"text of {message_id}",
        created_at=seq,
        seq=seq,
        **fields,
    )


async def test_runner_checks_before_calling() -> None:
    """A menu rendered before a change must not run an action that no longer applies."""
    cache = MessageCache()
    cache.reset(
        [
            _message("m1", "bob", 1),
            _message("m2", "alice", 2),
            _message("m3", None, 3, type=MessageType.SYSTEM),
        ],
        has_older=False,
    )
    calls: list[tuple[str, str]] = []

    def record(event: MessageActionEvent) -> None:
        calls.append((event.action, event.message.id))

    runner = MessageActionRunner(cache)
    runner.update(
        "alice", Conversation(id="group"), compile_message_actions([REPORT, QUOTE]), record
    )
    await runner.run("m2", "report")  # own message: "others" does not apply
    await runner.run("m3", "quote")  # system message
    await runner.run("m1", "pin")  # no such action
    await runner.run("gone", "quote")  # deleted meanwhile
    assert calls == []

    await runner.run("m1", "report")
    assert calls == [("report", "m1")]
    runner.update("alice", Conversation(id="group"), compile_message_actions([QUOTE]), record)
    await runner.run("m1", "report")  # removed from the props since
    assert calls == [("report", "m1")]
