"""A minimal chat page: two users in one conversation, on the embedded backend.

Run it with ``.venv/bin/uvicorn examples.basic_chat:app`` from the repository root, then
open http://127.0.0.1:8000/?user=alice and, in another window,
http://127.0.0.1:8000/?user=bob.

This example trusts the ``user`` query parameter so that it stays short. A
real app mints the token only for the user its own login established.
"""

from __future__ import annotations

import os
from urllib.parse import parse_qs

from reactpy import component, html, use_location
from reactpy.executors.asgi import ReactPy
from reactpy.types import VdomDict

from talkjs_components import Chatbox, ConversationBuilder, Session, TalkSession, User, embedded
from talkjs_components.auth import create_user_token

APP_ID = "basic-chat"
# The secret key signs user tokens. It stays on the server; keep a real one out of the code.
SECRET_KEY = os.environ.get("TALKJS_SECRET_KEY", "sk_example_" + "x" * 32)

USERS = {
    "alice": User(id="alice", name="Alice", email=["alice@example.com"]),
    "bob": User(id="bob", name="Bob", email=["bob@example.com"]),
}

backend = embedded.configure(
    APP_ID, secret_key=SECRET_KEY, database=os.environ.get("TALKJS_DATA", "basic-chat.sqlite3")
)


def welcome_conversation(session: TalkSession) -> ConversationBuilder:
    """Describe the shared conversation; the first user to open it creates it."""
    conversation = session.get_or_create_conversation("welcome")
    conversation.subject = "Welcome"
    for user in USERS.values():
        conversation.set_participant(user)
    return conversation


@component
def ChatPage() -> VdomDict:
    query = parse_qs(use_location().query_string.lstrip("?"))
    user_id = query.get("user", ["alice"])[0]
    if user_id not in USERS:
        return html.p(f"Unknown user {user_id!r}: use ?user=alice or ?user=bob.")
    return html.div(
        {"style": {"height": "90vh", "maxWidth": "640px", "margin": "0 auto"}},
        Session(
            Chatbox(sync_conversation=welcome_conversation),
            app_id=APP_ID,
            sync_user=USERS[user_id],
            token=create_user_token(backend.app, user_id),
        ),
    )


app = ReactPy(ChatPage, async_rendering=False)
