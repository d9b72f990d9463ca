"""Demo-like pages for the docs' screenshots, served by uvicorn in a child process.

At start-up the app seeds a small team's conversations into the database named
by ``TALKJS_DATA``, and keeps Daniel and Lena online. The signed-in user is
Maya. Query parameter ``view``:

- ``chatbox``: the "Product launch" group in a ``Chatbox``;
- ``inbox``: an ``Inbox`` with "Product launch" selected;
- ``popup``: an app page with an open ``Popup`` of Maya's chat with Lena;
- ``rtl``: the Hebrew conversation in a ``Chatbox`` with ``dir="rtl"``.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qs

from reactpy import component, html, use_location
from reactpy.executors.asgi import ReactPy
from reactpy.types import VdomDict

from talkjs_components import Chatbox, Inbox, Popup, Session, embedded
from talkjs_components.auth import create_user_token
from talkjs_components.models import ConversationAttributes, Participation
from talkjs_components.service import TRUSTED, ChatService
from talkjs_components.subscription import Subscription

from .showcase_data import CONVERSATIONS, ME, READ_BY, USERS

logger = logging.getLogger("tests.apps.showcase")

APP_ID = "showcase"


backend = embedded.configure(
    APP_ID, secret_key="sk_test_" + "s" * 40, database=os.environ["TALKJS_DATA"]
)


SEED_SPACING = 0.002
"""Seconds between seeded messages, so each has its own time in ms and the feed order is fixed."""


async def seed(service: ChatService) -> None:
    """Write the users, conversations and messages."""
    for user in USERS:
        await service.upsert_user(user)
    for conversation_id, subject, members, messages in CONVERSATIONS:
        attributes = ConversationAttributes(subject=subject) if subject else None
        participants = {member: Participation() for member in members}
        await service.sync_conversation(TRUSTED, conversation_id, attributes, participants)
        for sender, text in messages:
            await asyncio.sleep(SEED_SPACING)
            await service.send_message(TRUSTED, conversation_id, text, sender_id=sender)
        for reader in READ_BY.get(conversation_id, []):
            await service.mark_read(reader, conversation_id)


_APP_PAGE_STYLE = """
body { margin: 0; font-family: system-ui, sans-serif; background: #f6f7f9; color: #1a202c; }
.showcase { box-sizing: border-box; height: 100vh; padding: 16px; }
.showcase-app { max-width: 640px; padding: 8px 32px; }
.showcase-app h1 { font-size: 1.4em; }
.showcase-app .card { background: #fff; border: 1px solid #d5dae1; border-radius: 10px;
  padding: 12px 16px; margin-bottom: 12px; }
"""


def _app_page() -> VdomDict:
    """Return the page of a made-up app under the Popup."""
    return html.div(
        {"className": "showcase-app"},
        html.h1("Acme Projects"),
        html.div(
            {"className": "card"},
            html.strong("Uploader 2.4"),
            html.p("Release candidate ready. 12 of 12 checks passed."),
        ),
        html.div(
            {"className": "card"},
            html.strong("Website refresh"),
            html.p("Design review on Thursday."),
        ),
    )


@component
def Page() -> VdomDict:
    query = parse_qs(use_location().query_string.lstrip("?"))
    view = query.get("view", ["chatbox"])[0]
    box: Any
    if view == "inbox":
        box = Inbox(conversation_id="launch")
    elif view == "popup":
        box = html.div(_app_page(), Popup(conversation_id="lena-maya", show=True))
    elif view == "rtl":
        box = Chatbox(conversation_id="yossi-maya", dir="rtl")
    else:
        box = Chatbox(conversation_id="launch")
    return html.div(
        {"className": "showcase"},
        html.style(_APP_PAGE_STYLE),
        Session(box, app_id=APP_ID, user_id=ME, token=create_user_token(backend.app, ME)),
    )


Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


class ShowcaseApp:
    """ASGI app: the ReactPy page, and a lifespan that seeds the data and keeps two users online."""

    def __init__(self) -> None:
        self.page = ReactPy(Page, async_rendering=False)
        self.presence: list[Subscription] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await self.page(scope, receive, send)
            return
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await backend.start()
                    await seed(backend.service)
                except Exception as exc:
                    logger.exception("showcase failed to start")
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                # A subscription with presence counts as a connected user.
                for user_id in ("daniel", "lena"):
                    self.presence.append(
                        backend.service.subscribe(user_id, lambda _event: None, presence=True)
                    )
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                for subscription in self.presence:
                    subscription.unsubscribe()
                await backend.close()
                await send({"type": "lifespan.shutdown.complete"})
                return


app = ShowcaseApp()
