"""A page with a Chatbox that offers custom message actions, for the browser tests.

Served by uvicorn in a child process. The users alice, bob and carol and the
conversation ``group`` must exist in the SQLite file named by
``TALKJS_DATA``. The page signs in as alice and offers two actions: "Quote"
on every message, and "Report" on other users' messages that are not
reported yet. The handlers write what they did into the "Action log" list,
so the test can read it; "Report" is async and marks the message reported.
``?view=popup`` shows the same chatbox in an open Popup.
"""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import parse_qs

from reactpy import component, html, use_location, use_state
from reactpy.executors.asgi import ReactPy
from reactpy.types import VdomDict

from talkjs_components import (
    Chatbox,
    MessageAction,
    MessageActionEvent,
    Popup,
    Session,
    embedded,
)
from talkjs_components.auth import create_user_token
from talkjs_components.service import TRUSTED

APP_ID = "actions-test"
SECRET_KEY = "sk_test_" + "d" * 40

ACTIONS = [
    MessageAction(name="quote", label="Quote"),
    MessageAction(
        name="report",
        label="Report",
        allowed={"sender": {"id": ["!=", "alice"]}, "custom": {"reported": "!exists"}},
        params={"reason": "spam"},
    ),
]

backend = embedded.configure(APP_ID, secret_key=SECRET_KEY, database=os.environ["TALKJS_DATA"])


@component
def Page() -> VdomDict:
    query = parse_qs(use_location().query_string.lstrip("?"))
    no_entries: tuple[str, ...] = ()
    entries, set_entries = use_state(no_entries)

    def record(entry: str) -> None:
        set_entries(lambda old: (*old, entry))

    def quote(event: MessageActionEvent) -> None:
        record(f"quote: {event.message.body}")

    async def report(event: MessageActionEvent) -> None:
        reason = event.params["reason"]
        service = (await embedded.get_backend(APP_ID)).service
        await service.edit_message(
            TRUSTED, event.message.conversation.id, event.message.id, custom={"reported": reason}
        )
        record(f"report: {event.message.body} ({reason})")

    props: dict[str, Any] = {
        "conversation_id": "group",
        "message_actions": ACTIONS,
        "on_custom_message_action": {"quote": quote, "report": report},
    }
    if query.get("view") == ["popup"]:
        box: Any = Popup(show=True, **props)
    else:
        box = Chatbox(**props)
    return html.main(
        html.h1("Message actions"),
        html.div(
            {"style": {"height": "70vh"}},
            Session(
                box,
                app_id=APP_ID,
                user_id="alice",
                token=create_user_token(backend.app, "alice"),
            ),
        ),
        html.ul(
            {"aria-label": "Action log"},
            [html.li({"key": str(index)}, entry) for index, entry in enumerate(entries)],
        ),
    )


app = ReactPy(Page, async_rendering=False)
