"""A page with one Chatbox on a chat server, for the UI scenario; run under uvicorn.

``?user=ID&conversation=ID`` picks the signed-in user and the conversation.
The server's URL and the app's secret key come from ``BENCH_SERVER_URL`` and
``BENCH_SECRET_KEY``; the users and the conversation must exist there.
"""

from __future__ import annotations

import os
from urllib.parse import parse_qs

from reactpy import component, html, use_location
from reactpy.executors.asgi import ReactPy
from reactpy.types import VdomDict

from talkjs_components import Chatbox, Session, embedded
from talkjs_components.auth import create_user_token

APP_ID = "bench"

backend = embedded.configure(
    APP_ID,
    secret_key=os.environ["BENCH_SECRET_KEY"],
    server_url=os.environ["BENCH_SERVER_URL"],
)


@component
def Page() -> VdomDict:
    query = parse_qs(use_location().query_string.lstrip("?"))
    user_id = query.get("user", ["ui-viewer"])[0]
    conversation_id = query.get("conversation", ["ui-10"])[0]
    return html.div(
        {"style": {"height": "90vh"}},
        Session(
            Chatbox(conversation_id=conversation_id),
            app_id=APP_ID,
            user_id=user_id,
            token=create_user_token(backend.app, user_id),
        ),
    )


app = ReactPy(Page, async_rendering=False)
