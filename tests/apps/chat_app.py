"""A page with one Chatbox for the browser tests, served by uvicorn in a child process.

``?user=alice`` (or bob, carol) picks the user. The conversation ``group``
and the users must exist in the database named by ``TALKJS_DATA``.
"""

from __future__ import annotations

import os
from urllib.parse import parse_qs

from reactpy import component, html, use_location
from reactpy.executors.asgi import ReactPy
from reactpy.types import VdomDict

from talkjs_components import Chatbox, Session, embedded
from talkjs_components.auth import create_user_token

APP_ID = "chat-test"
SECRET_KEY = "sk_test_" + "c" * 40

backend = embedded.configure(APP_ID, secret_key=SECRET_KEY, database=os.environ["TALKJS_DATA"])


@component
def Page() -> VdomDict:
    query = parse_qs(use_location().query_string.lstrip("?"))
    user_id = query.get("user", ["alice"])[0]
    return html.div(
        {"style": {"height": "90vh"}},
        Session(
            Chatbox(conversation_id="group"),
            app_id=APP_ID,
            user_id=user_id,
            token=create_user_token(backend.app, user_id),
        ),
    )


app = ReactPy(Page, async_rendering=False)
