"""The Inbox, Popup and accessibility test page, served by uvicorn in a child process.

Tests share one server per module and keep apart by using separate "worlds":
``POST /control/seed`` with ``{"world": "w1"}`` creates the users
``w1-alice``, ``w1-bob`` and ``w1-carol`` and four conversations of alice,
each with one message (see :data:`CONVERSATIONS`). The page then shows that
world with these query parameters:

- ``world`` and ``user`` (alice, bob or carol) pick the signed-in user;
- ``view``: ``inbox`` (default), ``popup`` or ``chatbox`` (the group);
- Inbox: ``conversation`` (a short conversation name, for ``conversation_id``),
  ``sync=1`` (``sync_conversation`` of a new conversation named "synced"),
  ``filter`` (a ``feed_filter`` as JSON), ``header=0`` (``show_feed_header``
  false) and ``prevent`` (a short name whose selection
  ``on_select_conversation`` prevents);
- Popup: ``keep_open=1``, ``launcher`` (a launcher mode) and ``show`` (``1``
  or ``0`` for the initial ``show`` prop).

Buttons under the box change props and read refs, and the "Events" list shows
what the box's handlers and those buttons recorded, so a test can read them.
``POST /control/send`` and ``POST /control/conversation`` write through the
backend, as another user's client or the app's server would.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from reactpy import Ref, component, html, use_location, use_ref, use_state
from reactpy.executors.asgi import ReactPy
from reactpy.types import VdomDict
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from talkjs_components import Chatbox, Inbox, Popup, Session, TalkSession, User, embedded
from talkjs_components.auth import create_user_token
from talkjs_components.components.inbox import ConversationSelectedEvent, SelectConversationEvent
from talkjs_components.models import AccessLevel, ConversationAttributes, Participation
from talkjs_components.service import TRUSTED
from talkjs_components.session import ConversationBuilder, UIBox

APP_ID = "boxes-test"
USER_NAMES = {"alice": "Alice", "bob": "Bob", "carol": "Carol"}

# Carol's photo, inline so the page loads nothing from the network.
CAROL_PHOTO = (
    "data:image/svg+xml,"
    "%3Csvg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 40 40'%3E"
    "%3Crect width='40' height='40' fill='%23c2410c'/%3E"
    "%3Ccircle cx='20' cy='16' r='7' fill='%23fde7d9'/%3E"
    "%3Cellipse cx='20' cy='36' rx='13' ry='10' fill='%23fde7d9'/%3E%3C/svg%3E"
)


@dataclass(frozen=True)
class SeedConversation:
    """A conversation of every world, with its first message."""

    name: str
    subject: str | None
    members: tuple[str, ...]
    sender: str
    text: str
    custom: dict[str, str | None]
    alice_reads: bool = False
    alice_access: AccessLevel = AccessLevel.READ_WRITE


# Oldest first, so the feed shows them in reverse order.
CONVERSATIONS = (
    SeedConversation(
        "news",
        "Announcements",
        ("alice", "carol"),
        "carol",
        "Office closed on Friday",
        {"category": "news"},
        alice_reads=True,
        alice_access=AccessLevel.READ,
    ),
    SeedConversation(
        "group",
        "Team",
        ("alice", "bob", "carol"),
        "bob",
        "Welcome to the team",
        {"category": "work"},
    ),
    SeedConversation("carol", None, ("alice", "carol"), "carol", "Carol says hi", {}),
    SeedConversation("bob", None, ("alice", "bob"), "bob", "Hi Alice from Bob", {}),
)

backend = embedded.configure(
    APP_ID, secret_key="sk_test_" + "b" * 40, database=os.environ["TALKJS_DATA"]
)


def world_id(world: str, name: str) -> str:
    """Return the id of a user or conversation ``name`` in ``world``."""
    return f"{world}-{name}"


SEED_SPACING = 0.002
"""Seconds between seeded messages, so each has its own time in ms and the feed order is fixed."""


async def seed_world(request: Request) -> JSONResponse:
    """Create a world's users, conversations and messages, and return each message's time in ms."""
    world = str((await request.json())["world"])
    service = (await embedded.get_backend(APP_ID)).service
    for name, display_name in USER_NAMES.items():
        photo = CAROL_PHOTO if name == "carol" else None
        await service.upsert_user(
            User(id=world_id(world, name), name=display_name, photo_url=photo)
        )
    times: dict[str, int] = {}
    for seeded in CONVERSATIONS:
        conversation_id = world_id(world, seeded.name)
        participants = {
            world_id(world, member): Participation(
                access=seeded.alice_access if member == "alice" else AccessLevel.READ_WRITE
            )
            for member in seeded.members
        }
        attributes = ConversationAttributes(subject=seeded.subject, custom=seeded.custom or None)
        await service.sync_conversation(TRUSTED, conversation_id, attributes, participants)
        await asyncio.sleep(SEED_SPACING)
        message = await service.send_message(
            TRUSTED, conversation_id, seeded.text, sender_id=world_id(world, seeded.sender)
        )
        times[seeded.name] = message.created_at
        if seeded.alice_reads:
            await service.mark_read(world_id(world, "alice"), conversation_id)
    return JSONResponse({"times": times})


async def send(request: Request) -> JSONResponse:
    """Send ``text`` to a world's conversation as ``sender``, and return the message id."""
    body = await request.json()
    world = str(body["world"])
    service = (await embedded.get_backend(APP_ID)).service
    message = await service.send_message(
        TRUSTED,
        world_id(world, str(body["conversation"])),
        str(body["text"]),
        sender_id=world_id(world, str(body["sender"])),
    )
    return JSONResponse({"id": message.id, "created_at": message.created_at})


async def create_conversation(request: Request) -> JSONResponse:
    """Create a conversation of ``members`` with ``subject`` and a first message from ``sender``."""
    body = await request.json()
    world = str(body["world"])
    service = (await embedded.get_backend(APP_ID)).service
    conversation_id = world_id(world, str(body["name"]))
    participants = {world_id(world, str(member)): Participation() for member in body["members"]}
    attributes = ConversationAttributes(subject=body.get("subject"))
    await service.sync_conversation(TRUSTED, conversation_id, attributes, participants)
    await service.send_message(
        TRUSTED, conversation_id, str(body["text"]), sender_id=world_id(world, str(body["sender"]))
    )
    return JSONResponse({"id": conversation_id})


control = Starlette(
    routes=[
        Route("/control/seed", seed_world, methods=["POST"]),
        Route("/control/send", send, methods=["POST"]),
        Route("/control/conversation", create_conversation, methods=["POST"]),
    ]
)


@dataclass(frozen=True)
class Query:
    """The page's query parameters."""

    world: str
    user: str
    view: str
    conversation: str | None
    sync: bool
    feed_filter: Any
    show_feed_header: bool
    prevent: str | None
    keep_open: bool
    launcher: str
    show: bool | None

    @classmethod
    def parse(cls, query_string: str) -> Query:
        values = {name: items[0] for name, items in parse_qs(query_string.lstrip("?")).items()}
        show = values.get("show")
        return cls(
            world=values.get("world", "main"),
            user=values.get("user", "alice"),
            view=values.get("view", "inbox"),
            conversation=values.get("conversation"),
            sync=values.get("sync") == "1",
            feed_filter=json.loads(values["filter"]) if "filter" in values else None,
            show_feed_header=values.get("header") != "0",
            prevent=values.get("prevent"),
            keep_open=values.get("keep_open") == "1",
            launcher=values.get("launcher", "always"),
            show=None if show is None else show == "1",
        )


def _button(label: str, on_click: Callable[[Any], Any]) -> VdomDict:
    return html.button({"type": "button", "onClick": on_click}, label)


def _ref_name(ref: Ref[UIBox | None]) -> str:
    return ref.current.kind.value if ref.current is not None else "none"


@component
def Page() -> VdomDict:
    query = Query.parse(use_location().query_string)
    no_events: tuple[str, ...] = ()
    events, set_events = use_state(no_events)
    mounted, set_mounted = use_state(True)
    conversation, set_conversation = use_state(query.conversation)
    feed_filter, set_feed_filter = use_state(query.feed_filter)
    show, set_show = use_state(query.show)
    box_ref: Ref[UIBox | None] = use_ref(None)
    user_id = world_id(query.world, query.user)

    def record(name: str) -> None:
        set_events(lambda old: (*old, name))

    def short(conversation_id: str | None) -> str:
        return (
            "none" if conversation_id is None else conversation_id.removeprefix(query.world + "-")
        )

    def select_conversation(event: SelectConversationEvent) -> None:
        record("select:" + short(event.conversation.id))
        if query.prevent is not None and short(event.conversation.id) == query.prevent:
            event.prevent_default()

    def conversation_selected(event: ConversationSelectedEvent) -> None:
        record("selected:" + short(event.conversation.id if event.conversation else None))

    def synced(session: TalkSession) -> ConversationBuilder:
        builder = session.get_or_create_conversation(world_id(query.world, "synced"))
        builder.subject = "Synced"
        builder.set_participant(session.me)
        builder.set_participant(User(id=world_id(query.world, "bob"), name="Bob"))
        return builder

    controls: list[VdomDict] = [
        _button("Check ref", lambda _event: record("ref:" + _ref_name(box_ref))),
        _button("Unmount box", lambda _event: set_mounted(False)),
    ]
    box: Any
    if query.view == "popup":
        box = Popup(
            conversation_id=world_id(query.world, "group"),
            show=show,
            keep_open=query.keep_open,
            launcher=query.launcher,
            popup_ref=box_ref,
            on_open=lambda: record("open"),
            on_close=lambda: record("close"),
        )
        controls += [
            _button("Open by prop", lambda _event: set_show(True)),
            _button("Close by prop", lambda _event: set_show(False)),
            _button(
                "Select Bob by ref",
                lambda _event: (
                    box_ref.current.select(world_id(query.world, "bob"))
                    if box_ref.current
                    else None
                ),
            ),
        ]
    elif query.view == "chatbox":
        box = html.div(
            {"style": {"height": "600px"}},
            Chatbox(conversation_id=world_id(query.world, "group"), chatbox_ref=box_ref),
        )
    else:
        selection: dict[str, Any] = {}
        if query.sync:
            selection["sync_conversation"] = synced
        elif conversation is not None:
            selection["conversation_id"] = world_id(query.world, conversation)
        box = html.div(
            {"style": {"height": "600px"}},
            Inbox(
                **selection,
                feed_filter=feed_filter,
                show_feed_header=query.show_feed_header,
                inbox_ref=box_ref,
                on_select_conversation=select_conversation,
                on_conversation_selected=conversation_selected,
            ),
        )
        controls += [
            _button("Show Bob by prop", lambda _event: set_conversation("bob")),
            _button(
                "Select Carol by ref",
                lambda _event: (
                    box_ref.current.select(world_id(query.world, "carol"))
                    if box_ref.current
                    else None
                ),
            ),
            _button("Clear filter", lambda _event: set_feed_filter(None)),
        ]
    return html.main(
        html.h1("Boxes test page"),
        Session(
            box if mounted else "",
            app_id=APP_ID,
            user_id=user_id,
            token=create_user_token(backend.app, user_id),
        ),
        html.div({"role": "group", "aria-label": "Test controls"}, *controls),
        html.ul(
            {"aria-label": "Events"},
            [html.li({"key": str(index)}, name) for index, name in enumerate(events)],
        ),
    )


Scope = MutableMapping[str, Any]


class BoxesApp:
    """ASGI app: the control routes under ``/control/``, and the ReactPy page for the rest."""

    def __init__(self) -> None:
        self.page = ReactPy(Page, async_rendering=False)

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/control/"):
            await control(scope, receive, send)
        else:
            await self.page(scope, receive, send)


app = BoxesApp()
