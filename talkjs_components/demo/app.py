"""The demo app: sign in as a seeded user and chat, on the embedded backend or a chat server.

Pages: ``/`` lists the signed-in user's conversations and ``/chat/<id>``
shows one in a ``Chatbox``, and ``/inbox`` shows an ``Inbox``. The server
mints the user's token after sign-in. The browser keeps that token (never the
secret key) in sessionStorage, so each window can be signed in as a different
user.

With a chat server (``talkjs-components demo --server URL``), the demo opens
no database: sessions connect to the server's realtime endpoint, and the
demo seeds the server once through its REST API. The app process needs the
app's secret key for both: to create user tokens and to sign its REST calls,
which carry short-lived app tokens instead of the key itself.
"""

from __future__ import annotations

import logging
import os
import secrets
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

from reactpy import (
    component,
    html,
    use_async_effect,
    use_effect,
    use_location,
    use_ref,
    use_state,
)
from reactpy.executors.asgi import ReactPy
from reactpy.types import VdomDict

from .. import embedded
from ..auth import App, create_user_token, verify_user_token
from ..components import Chatbox, Inbox, Session, use_session, use_unreads
from ..components._adapter import load_js_components
from ..errors import AuthError, ChatError
from ..models import Conversation, ConversationUpdated, Message, MessageSent
from ..rest import AsyncTalkJSClient
from .seed import DEMO_USERS, seed, seed_over_rest

__all__ = ["APP_ID", "create_app"]

logger = logging.getLogger("talkjs_components.demo")

APP_ID = "demo"

TokenStore, SignInForm = load_js_components(
    Path(__file__).parent / "static" / "demo.js", ["TokenStore", "SignInForm"], "talkjs-demo"
)

_DEMO_STYLE = """
body { margin: 0; font-family: system-ui, sans-serif; background: #f6f7f9; color: #1a202c; }
.demo { max-width: 760px; margin: 0 auto; padding: 16px; }
.demo-bar { display: flex; gap: 12px; align-items: center; margin-bottom: 12px; }
.demo-bar .demo-spacer { flex: 1; }
.demo-signin { display: flex; gap: 8px; align-items: center; flex-wrap: wrap; }
.demo-signin input, .demo-signin button, .demo-bar button { font: inherit; padding: 6px 10px; }
.demo-hint { flex-basis: 100%; color: #5a6577; }
.demo-error { color: #9b1c1c; }
.demo-list { list-style: none; padding: 0; margin: 0; background: #fff; border-radius: 10px;
  border: 1px solid #d5dae1; }
.demo-list li { border-bottom: 1px solid #e6e9ee; }
.demo-list li:last-child { border-bottom: 0; }
.demo-list a { display: flex; gap: 12px; padding: 12px 14px; color: inherit;
  text-decoration: none; }
.demo-list a:hover, .demo-list a:focus-visible { background: #eef3fa; }
.demo-list .demo-title { font-weight: 600; }
.demo-list .demo-preview { color: #5a6577; overflow: hidden; text-overflow: ellipsis;
  white-space: nowrap; }
.demo-list .demo-text { flex: 1; min-width: 0; }
.demo-badge { background: #2b6cb0; color: #fff; border-radius: 999px; padding: 0 8px;
  align-self: center; font-size: 0.85em; }
.demo-chat { height: calc(100vh - 90px); }
"""

_KNOWN_USERS = {user.id: user for user in DEMO_USERS}


def _secret_path(database: Path) -> Path:
    return database.with_name(database.name + ".secret")


def load_or_create_secret(database: Path) -> str:
    """Return the demo app's secret key, kept beside the database so tokens survive restarts."""
    path = _secret_path(database)
    if path.exists():
        return path.read_text(encoding="utf-8").strip()
    secret = "sk_demo_" + secrets.token_urlsafe(32)
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        file.write(secret)
    return secret


@component
def DemoRoot() -> VdomDict:
    """Render the demo's single page: sign-in, conversation list or chat, by URL path."""
    backend = embedded.configured(APP_ID)
    no_token: str | None = None
    token, set_token = use_state(no_token)
    restored, set_restored = use_state(False)
    error, set_error = use_state("")
    # A new id for every server-side tree, so the browser reports its token
    # again after ReactPy reconnects (the browser component itself survives).
    layout_id = use_ref(secrets.token_hex(8)).current

    def user_of(candidate: str | None) -> str | None:
        if not candidate:
            return None
        try:
            return verify_user_token(backend.app, candidate).user_id
        except AuthError:
            return None

    def on_restore(event: dict[str, Any]) -> None:
        stored = event.get("token")
        set_token(stored if user_of(stored) else None)
        set_restored(True)

    def on_sign_in(event: dict[str, Any]) -> None:
        typed = str(event.get("user") or "").strip()
        user_id = typed.lower()
        names = ", ".join(sorted(_KNOWN_USERS))
        if not typed:
            set_error(f"Enter a user name: one of {names}.")
            return
        if user_id not in _KNOWN_USERS:
            set_error(f"Unknown user “{typed}”. Sign in as one of: {names}.")
            return
        set_error("")
        set_token(create_user_token(backend.app, user_id))

    def sign_out(_event: object) -> None:
        set_token(None)

    user_id = user_of(token)
    # TokenStore stores a string, removes the stored token on None, and leaves
    # storage alone while the prop is absent (before the stored one is read).
    store_props: dict[str, Any] = {"onRestore": on_restore, "layoutId": layout_id}
    if restored:
        store_props["token"] = token if user_id else None
    page: Any
    if not restored:
        page = html.p("Loading…")
    elif user_id is None:
        page = _sign_in_page(on_sign_in, error)
    else:
        page = Session(
            _SignedInPage(user_id, sign_out),
            app_id=APP_ID,
            user_id=user_id,
            token=token,
        )
    return html.div(
        {"className": "demo"},
        html.style(_DEMO_STYLE),
        TokenStore(store_props),
        page,
    )


def _sign_in_page(on_sign_in: Callable[[dict[str, Any]], None], error: str) -> VdomDict:
    names = ", ".join(sorted(_KNOWN_USERS))
    return html.main(
        html.h1("talkjs-components demo"),
        SignInForm(
            {
                "onSignIn": on_sign_in,
                "userLabel": "User",
                "buttonLabel": "Sign in",
                "hint": f"Sign in as {names}. Use another window for a second user.",
            }
        ),
        html.p({"className": "demo-error", "role": "alert"}, error) if error else "",
    )


@component
def _SignedInPage(user_id: str, sign_out: Callable[[object], None]) -> VdomDict:
    location = use_location()
    path = location.path
    unreads = use_unreads()
    unread_total = sum(unread.unread_message_count for unread in unreads or [])
    user = _KNOWN_USERS.get(user_id)
    bar = html.nav(
        {"className": "demo-bar"},
        html.a({"href": "/"}, "All conversations") if path != "/" else "",
        html.a({"href": "/inbox"}, "Inbox view") if path.rstrip("/") != "/inbox" else "",
        html.span({"className": "demo-spacer"}),
        html.span(
            "Unread: ",
            html.strong(
                {"data-testid": "unread-count", "aria-label": f"{unread_total} unread messages"},
                str(unread_total),
            ),
        ),
        html.span(f"Signed in as {user.display_name if user else user_id}"),
        html.button({"type": "button", "onClick": sign_out}, "Sign out"),
    )
    if path.rstrip("/") == "/inbox":
        body: Any = html.div({"className": "demo-chat"}, Inbox())
    elif path.startswith("/chat/"):
        conversation_id = unquote(path.removeprefix("/chat/")).strip("/")
        body = html.div(
            {"className": "demo-chat"},
            Chatbox(conversation_id=conversation_id, key=conversation_id),
        )
    elif path in ("", "/"):
        body = _ConversationList(user_id)
    else:
        body = html.p(
            {"role": "alert"}, f"No page at {path}. ", html.a({"href": "/"}, "All conversations")
        )
    return html.main(bar, body)


@component
def _ConversationList(user_id: str) -> VdomDict:
    session = use_session()
    no_conversations: tuple[Conversation, ...] = ()
    no_previews: dict[str, Message] = {}
    no_names: dict[str, str] = {}
    conversations, set_conversations = use_state(no_conversations)
    previews, set_previews = use_state(no_previews)
    names, set_names = use_state(no_names)
    no_failure: str | None = None
    failure, set_failure = use_state(no_failure)
    unreads = use_unreads() or []
    unread_counts = {unread.conversation.id: unread.unread_message_count for unread in unreads}

    @use_effect(dependencies=[session])
    def follow() -> Callable[[], None] | None:
        if session is None:
            return None

        def on_event(event: Any) -> None:
            if isinstance(event, MessageSent):
                conversation, message = event.conversation, event.message
                set_previews(lambda old: {**old, conversation.id: message})
                set_conversations(
                    lambda old: (conversation, *(c for c in old if c.id != conversation.id))
                )
                if event.sender is not None:
                    sender = event.sender
                    set_names(lambda old: {**old, sender.id: sender.display_name})
            elif isinstance(event, ConversationUpdated):
                updated = event.conversation
                if user_id in event.removed_user_ids:
                    set_conversations(lambda old: tuple(c for c in old if c.id != updated.id))
                else:
                    set_conversations(
                        lambda old: (
                            tuple(updated if c.id == updated.id else c for c in old)
                            if any(c.id == updated.id for c in old)
                            else (updated, *old)
                        )
                    )

        subscription = session.on_event(on_event)
        return subscription.unsubscribe

    @use_async_effect(dependencies=[session])
    async def load() -> None:
        if session is None:
            return
        try:
            loaded = await session.list_conversations()
            latest: dict[str, Message] = {}
            # NOTE: one query per conversation; fine for a demo, not for long lists.
            for conversation in loaded:
                page = await session.list_messages(conversation.id, limit=1)
                if page.messages:
                    latest[conversation.id] = page.messages[-1]
            user_ids = {user for conversation in loaded for user in conversation.participants}
            known = await session.get_users(sorted(user_ids))
        except ChatError as exc:
            logger.warning("conversation list of %r failed to load: %s", user_id, exc.message)
            set_failure(exc.message)
            return
        set_names({uid: user.display_name for uid, user in known.items()})
        set_previews(lambda old: {**latest, **old})
        # Conversations that events brought in while loading stay in front.
        set_conversations(
            lambda old: (*old, *(c for c in loaded if all(c.id != o.id for o in old)))
        )

    if failure:
        return html.p({"role": "alert"}, f"Could not load your conversations: {failure}")
    if session is None:
        return html.p("Connecting…")
    return html.ul(
        {"className": "demo-list", "aria-label": "Conversations"},
        [
            _conversation_item(c, previews.get(c.id), unread_counts.get(c.id, 0), names, user_id)
            for c in conversations
        ],
    )


def _conversation_item(
    conversation: Conversation,
    preview: Message | None,
    unread_count: int,
    names: dict[str, str],
    me_id: str,
) -> VdomDict:
    others = [names.get(uid, uid) for uid in conversation.participants if uid != me_id]
    title = conversation.subject or ", ".join(others)
    sender_label = ""
    preview_text = ""
    if preview is not None:
        sender = names.get(preview.sender_id or "", preview.sender_id or "")
        sender_label = f"{sender}: " if sender else ""
        preview_text = preview.text
    return html.li(
        {"key": conversation.id, "data-conversation-id": conversation.id},
        html.a(
            {"href": f"/chat/{quote(conversation.id, safe='')}"},
            html.div(
                {"className": "demo-text"},
                html.div({"className": "demo-title", "dir": "auto"}, title),
                # The text is isolated, so a right-to-left message keeps its own
                # direction next to the left-to-right sender name.
                html.div(
                    {"className": "demo-preview"},
                    sender_label,
                    html.bdi({"dir": "auto"}, preview_text),
                ),
            ),
            html.span(
                {"className": "demo-badge", "aria-label": f"{unread_count} unread"},
                str(unread_count),
            )
            if unread_count
            else "",
        ),
    )


Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


class DemoApp:
    """ASGI app: the ReactPy page, plus a lifespan that starts, seeds and closes the backend.

    Args:
        database: The SQLite file of the embedded backend; ``None`` with a server.
        server_url: The chat server's URL; ``None`` or empty for the embedded backend.
        secret_key: The secret key of app ``demo`` on the server; required with one.
    """

    def __init__(
        self,
        database: Path | None,
        *,
        server_url: str | None = None,
        secret_key: str | None = None,
    ) -> None:
        self.database = database
        self.server_url = server_url or None
        if server_url:
            if not secret_key:
                raise ValueError("a demo on a chat server needs the secret key of app 'demo'")
            self.backend = embedded.configure(APP_ID, secret_key=secret_key, server_url=server_url)
        else:
            assert database is not None, "the embedded backend needs a database file"
            # server_url="" keeps the demo embedded even when TALKJS_SERVER_URL is set.
            self.backend = embedded.configure(
                APP_ID,
                secret_key=load_or_create_secret(database),
                database=database,
                server_url="",
            )
        self.page = ReactPy(
            DemoRoot,
            html_head=html.head(
                html.title("talkjs-components demo"),
                html.meta({"name": "viewport", "content": "width=device-width, initial-scale=1"}),
            ),
            async_rendering=False,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await self.page(scope, receive, send)
            return
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self._start()
                except Exception as exc:
                    logger.exception("demo failed to start")
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.backend.close()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _start(self) -> None:
        if self.server_url is None:
            await self.backend.start()
            await seed(self.backend.service)
            return
        await self.backend.start()
        app: App = self.backend.app
        assert app.secret_key is not None
        async with AsyncTalkJSClient(
            APP_ID,
            app.secret_key,
            base_url=embedded.http_base_url(self.server_url),
            use_app_tokens=True,
        ) as client:
            await seed_over_rest(client)


def create_app(
    database: str | os.PathLike[str] | None = None,
    *,
    server_url: str | None = None,
    secret_key: str | None = None,
) -> DemoApp:
    """Return the demo ASGI app.

    Without ``server_url`` it stores its data in the SQLite file ``database``
    through the embedded backend. With one, its sessions use that chat server,
    which must serve app ``demo`` with ``secret_key``.
    """
    return DemoApp(
        Path(database) if database is not None else None,
        server_url=server_url,
        secret_key=secret_key,
    )
