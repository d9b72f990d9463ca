"""A page for the Inbox and Popup browser tests, served by uvicorn in a child process.

Query parameters: ``view`` (``inbox`` or ``popup``), ``user`` (alice, bob or
carol), and for the popup ``keep_open=1`` and ``launcher`` (a launcher mode).
The first page load seeds three conversations of alice with one message
each. The page lists the popup's open and close events, so the test can read
them.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any
from urllib.parse import parse_qs

from reactpy import component, html, use_async_effect, use_location, use_state
from reactpy.executors.asgi import ReactPy
from reactpy.types import VdomDict

from talkjs_components import Inbox, Popup, Session, User, embedded
from talkjs_components.auth import create_user_token
from talkjs_components.models import ConversationAttributes, Participation
from talkjs_components.service import TRUSTED

APP_ID = "boxes-test"
USERS = {name: User(id=name, name=name.title()) for name in ("alice", "bob", "carol")}
CONVERSATIONS: dict[str, tuple[str | None, list[str], str, str]] = {
    # id: (subject, participants, sender of the first message, its text)
    "boxes-group": ("Team", ["alice", "bob", "carol"], "bob", "Welcome to the team"),
    "boxes-carol": (None, ["alice", "carol"], "carol", "Carol says hi"),
    "boxes-bob": (None, ["alice", "bob"], "bob", "Hi Alice from Bob"),
}

backend = embedded.configure(
    APP_ID, secret_key="sk_test_" + "b" * 40, database=os.environ["TALKJS_DATA"]
)
_seeded = asyncio.Event()
_seeding = asyncio.Lock()


async def seed() -> None:
    """Create the users, conversations and messages once per process."""
    async with _seeding:
        if _seeded.is_set():
            return
        service = (await embedded.get_backend(APP_ID)).service
        for user in USERS.values():
            await service.upsert_user(user)
        for conversation_id, (subject, members, sender, body) in CONVERSATIONS.items():
            attributes = ConversationAttributes(subject=subject) if subject else None
            participants = {member: Participation() for member in members}
            await service.sync_conversation(TRUSTED, conversation_id, attributes, participants)
            await service.send_message(TRUSTED, conversation_id, body, sender_id=sender)
            # Distinct times, so the feed order is the order above, reversed.
            await asyncio.sleep(0.01)
        _seeded.set()


@component
def Page() -> VdomDict:
    query = parse_qs(use_location().query_string.lstrip("?"))
    view = query.get("view", ["inbox"])[0]
    user_id = query.get("user", ["alice"])[0]
    keep_open = query.get("keep_open", ["0"])[0] == "1"
    launcher = query.get("launcher", ["always"])[0]
    ready, set_ready = use_state(_seeded.is_set())
    no_events: tuple[str, ...] = ()
    events, set_events = use_state(no_events)

    @use_async_effect(dependencies=[])
    async def prepare() -> None:
        await seed()
        set_ready(True)

    def record(name: str) -> Any:
        return lambda: set_events(lambda old: (*old, name))

    if not ready:
        return html.main(html.p("Seeding…"))
    if view == "popup":
        box: Any = Popup(
            conversation_id="boxes-group",
            keep_open=keep_open,
            launcher=launcher,
            on_open=record("open"),
            on_close=record("close"),
        )
    else:
        box = html.div({"style": {"height": "600px"}}, Inbox())
    return html.main(
        Session(
            box,
            app_id=APP_ID,
            user_id=user_id,
            token=create_user_token(backend.app, user_id),
        ),
        html.ul(
            {"aria-label": "Events"},
            [html.li({"key": str(index)}, name) for index, name in enumerate(events)],
        ),
    )


app = ReactPy(Page, async_rendering=False)
