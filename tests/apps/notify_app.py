"""A page for the desktop notification browser tests, served by uvicorn in a child process.

Query parameters: ``user`` (alice or bob) and ``prevent=1`` to make the
``on_browser_permission_needed`` handler prevent the browser's prompt. The
page lists every session event it receives, so the test can read them.
"""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import parse_qs

from reactpy import component, html, use_location, use_state
from reactpy.executors.asgi import ReactPy
from reactpy.types import VdomDict

from talkjs_components import Session, User, embedded, use_session
from talkjs_components.auth import create_user_token
from talkjs_components.session import (
    BrowserPermissionDeniedEvent,
    BrowserPermissionNeededEvent,
    DesktopNotificationClickedEvent,
)

APP_ID = "notify-test"
GROUP = "notify-group"
USERS = {"alice": User(id="alice", name="Alice"), "bob": User(id="bob", name="Bob")}

backend = embedded.configure(
    APP_ID, secret_key="sk_test_" + "n" * 40, database=os.environ["TALKJS_DATA"]
)


@component
def Sender() -> VdomDict:
    session = use_session()

    async def send(_event: Any) -> None:
        if session is None:
            return
        conversation = session.get_or_create_conversation(GROUP)
        conversation.subject = "Team"
        for user in USERS.values():
            conversation.set_participant(user)
        await conversation.send_message(f"ping from {session.me.id}")

    return html.button({"type": "button", "onClick": send}, "Send ping")


@component
def Page() -> VdomDict:
    query = parse_qs(use_location().query_string.lstrip("?"))
    user_id = query.get("user", ["alice"])[0]
    prevent = query.get("prevent", ["0"])[0] == "1"
    enabled, set_enabled = use_state(False)
    no_events: tuple[str, ...] = ()
    events, set_events = use_state(no_events)

    def record(text: str) -> None:
        set_events(lambda old: (*old, text))

    def on_needed(event: BrowserPermissionNeededEvent) -> None:
        record("needed")
        if prevent:
            event.prevent_default()

    def on_denied(event: BrowserPermissionDeniedEvent) -> None:
        record("denied")

    def on_clicked(event: DesktopNotificationClickedEvent) -> None:
        record(f"clicked:{event.conversation.id}")

    return html.main(
        Session(
            Sender(),
            app_id=APP_ID,
            sync_user=USERS[user_id],
            token=create_user_token(backend.app, user_id),
            desktop_notification_enabled=enabled,
            on_browser_permission_needed=on_needed,
            on_browser_permission_denied=on_denied,
            on_desktop_notification_clicked=on_clicked,
        ),
        html.button(
            {"type": "button", "onClick": lambda _event: set_enabled(True)},
            "Enable notifications",
        ),
        html.ul(
            {"aria-label": "Events"},
            [html.li({"key": str(index)}, text) for index, text in enumerate(events)],
        ),
    )


app = ReactPy(Page, async_rendering=False)
