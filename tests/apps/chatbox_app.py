"""A page with one Chatbox for the Chatbox browser tests, served by uvicorn in a child process.

The users and conversations must exist in the SQLite file named by
``TALKJS_DATA`` (see tests/apps/chatbox_data.py). Query parameters choose the
props:

- ``user``: alice (the default), bob, carol or erin.
- ``conversation``: the ``conversation_id``; ``none`` passes ``None``.
- ``sync``: ``builder`` or ``callable`` selects ``conversation`` through
  ``sync_conversation`` instead, creating it with the user and bob and a
  subject that names the way it was made.
- ``switch``: comma-separated conversation ids, each with an "Open <id>" button.
- ``guest=1``, ``header=0``, ``dir``, ``theme=1``, ``styled=1``: ``as_guest``,
  ``show_chat_header``, ``dir``, a theme, and a class name with an inline style.
- ``placeholder``, ``enter=0``, ``field=hidden``, ``autofocus=0``,
  ``spellcheck=1``: the ``message_field`` options.
- ``loading=1``: the session fetches its token only after a click on "Finish
  connecting", and a custom ``loading_component`` shows until then.
- ``keep=1``: ``on_leave_conversation`` prevents leaving until "Allow leaving".

``on_send_message`` rewrites texts that start with ``shout: `` (upper case),
adds custom data ``tag`` for ``tag: `` and cancels ``cancel: ``. The "Events"
list records focus, blur and leave events, and the custom data of every
message the session hears about.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

from reactpy import Ref, component, html, use_location, use_ref, use_state
from reactpy.executors.asgi import ReactPy
from reactpy.types import VdomDict

from talkjs_components import (
    Chatbox,
    ConversationBuilder,
    Session,
    SessionMessage,
    TalkSession,
    embedded,
    use_session,
)
from talkjs_components.auth import create_user_token
from talkjs_components.components.chatbox_events import LeaveConversationEvent, SendMessageEvent
from talkjs_components.session import UIBox

from .chatbox_data import APP_ID, SECRET_KEY

backend = embedded.configure(APP_ID, secret_key=SECRET_KEY, database=os.environ["TALKJS_DATA"])

THEME = {"accent": "rgb(0, 119, 102)", "own-bg": "rgb(255, 240, 200)"}
ONLY_BOB = {"sender": {"id": ["==", "bob"]}}


def _build(session: TalkSession, conversation_id: str, subject: str) -> ConversationBuilder:
    builder = session.get_or_create_conversation(conversation_id)
    builder.subject = subject
    builder.set_participant(session.me.id)
    builder.set_participant("bob")
    return builder


def _message_field(query: dict[str, str]) -> dict[str, Any] | None:
    options: dict[str, Any] = {}
    if "placeholder" in query:
        options["placeholder"] = query["placeholder"]
    if query.get("enter") == "0":
        options["enterSendsMessage"] = False
    if query.get("field") == "hidden":
        options["visible"] = False
    if query.get("autofocus") == "0":
        options["autofocus"] = False
    if query.get("spellcheck") == "1":
        options["spellcheck"] = True
    return options or None


def _rewrite(event: SendMessageEvent) -> None:
    command, _, rest = event.text.partition(": ")
    if command == "shout":
        event.override(text=rest.upper())
    elif command == "tag":
        event.override(custom={"tag": rest})
    elif command == "cancel":
        event.override(cancel=True)


def _describe(box: UIBox | None) -> str:
    if box is None:
        return "empty"
    return f"box of {box.current_conversation_id}, alive: {box.is_alive}"


@component
def ChatArea(
    query: dict[str, str],
    conversation_id: str | None,
    chatbox_ref: Ref[UIBox | None],
    record: Callable[[str], None],
) -> VdomDict:
    """Render the Chatbox with the props that the query parameters request."""
    session = use_session()
    keep, set_keep = use_state(query.get("keep") == "1")
    only_bob, set_only_bob = use_state(False)
    highlight, set_highlight = use_state(False)

    def on_leave(event: LeaveConversationEvent) -> None:
        record(f"leave {event.conversation.id}")
        if keep:
            event.prevent_default()

    props: dict[str, Any] = {
        "as_guest": query.get("guest") == "1",
        "chatbox_ref": chatbox_ref,
        "show_chat_header": query.get("header") != "0",
        "message_field": _message_field(query),
        "theme": THEME if query.get("theme") == "1" else None,
        "dir": query.get("dir"),
        "class_name": "test-chatbox" if query.get("styled") == "1" else None,
        "style": {"maxWidth": "540px"} if query.get("styled") == "1" else None,
        "loading_component": (
            html.p({"className": "test-loading"}, "Connecting to the test chat…")
            if query.get("loading") == "1"
            else None
        ),
        "message_filter": ONLY_BOB if only_bob else None,
        "highlighted_words": ["apple"] if highlight else None,
        "on_send_message": _rewrite,
        "on_focus": lambda: record("focus"),
        "on_blur": lambda: record("blur"),
        "on_leave_conversation": on_leave,
    }
    sync = query.get("sync")
    if sync == "builder" and session is not None and conversation_id is not None:
        chatbox = Chatbox(
            sync_conversation=_build(session, conversation_id, "Made by a builder"), **props
        )
    elif sync == "callable" and conversation_id is not None:
        target = conversation_id

        def make(given: TalkSession) -> ConversationBuilder:
            return _build(given, target, f"Made for {given.me.id} by a function")

        chatbox = Chatbox(sync_conversation=make, **props)
    else:
        chatbox = Chatbox(conversation_id=conversation_id, **props)
    return html.div(
        html.div(
            html.button(
                {"onClick": lambda _event: set_only_bob(not only_bob)},
                "Show all" if only_bob else "Show only Bob",
            ),
            html.button(
                {"onClick": lambda _event: set_highlight(not highlight)},
                "Clear highlights" if highlight else "Highlight apple",
            ),
            html.button({"onClick": lambda _event: set_keep(False)}, "Allow leaving")
            if keep
            else "",
        ),
        html.div({"style": {"height": "520px", "width": "640px"}}, chatbox),
    )


@component
def Page() -> VdomDict:
    raw_query = parse_qs(use_location().query_string.lstrip("?"))
    query = {name: values[0] for name, values in raw_query.items()}
    user_id = query.get("user", "alice")
    initial = query.get("conversation", "chatbox")
    conversation_id, set_conversation_id = use_state(None if initial == "none" else initial)
    no_events: tuple[str, ...] = ()
    events, set_events = use_state(no_events)
    mounted, set_mounted = use_state(True)
    ref_state, set_ref_state = use_state("not read")
    chatbox_ref: Ref[UIBox | None] = use_ref(None)
    # The session of ``loading=1`` waits for this before it gets its token.
    connect_gate: Ref[asyncio.Event] = use_ref(asyncio.Event())

    def record(name: str) -> None:
        set_events(lambda old: (*old, name))

    def on_message(message: SessionMessage) -> None:
        for key, value in sorted(message.custom.items()):
            record(f"custom {key}={value}")

    async def fetch_token() -> str:
        await connect_gate.current.wait()
        return create_user_token(backend.app, user_id)

    loading = query.get("loading") == "1"
    switches = [name for name in query.get("switch", "").split(",") if name]
    return html.main(
        html.div(
            [
                html.button(
                    {"key": name, "onClick": lambda _event, name=name: set_conversation_id(name)},
                    f"Open {name}",
                )
                for name in switches
            ],
            html.button(
                {"onClick": lambda _event: set_mounted(not mounted)},
                "Unmount chatbox" if mounted else "Mount chatbox",
            ),
            html.button(
                {"onClick": lambda _event: set_ref_state(_describe(chatbox_ref.current))},
                "Read chatbox ref",
            ),
            html.button({"onClick": lambda _event: connect_gate.current.set()}, "Finish connecting")
            if loading
            else "",
            html.p({"role": "status", "aria-label": "Chatbox ref"}, ref_state),
        ),
        Session(
            ChatArea(query, conversation_id, chatbox_ref, record) if mounted else "",
            app_id=APP_ID,
            user_id=user_id,
            token=None if loading else create_user_token(backend.app, user_id),
            token_fetcher=fetch_token if loading else None,
            on_message=on_message,
        ),
        html.ul(
            {"aria-label": "Events"},
            [html.li({"key": str(index)}, name) for index, name in enumerate(events)],
        ),
    )


app = ReactPy(Page, async_rendering=False)
