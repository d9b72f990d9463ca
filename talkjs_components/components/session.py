"""The ``Session`` component: a user's chat session for the components inside it."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from reactpy import Ref, component, html, use_async_effect, use_effect, use_ref, use_state
from reactpy.types import VdomChild

from ..errors import ChatError, InvalidInput
from ..models import User
from ..session import SessionStatus, TalkSession
from .context import SessionContext, SessionState
from .notifier import NotificationBridge
from .session_props import SESSION_EVENTS, normalize_session_props

__all__ = ["Session"]

logger = logging.getLogger("talkjs_components.ui")

SyncUser = User | Callable[[], User]


def _resolve_me(user_id: Any, sync_user: Any) -> User | str:
    """Return the user to sign in as, from exactly one of ``user_id`` and ``sync_user``."""
    if (user_id is None) == (sync_user is None):
        raise InvalidInput(
            "Session needs exactly one of user_id (an existing user's id) and "
            "sync_user (a User, or a function returning one); "
            f"got user_id={user_id!r} and sync_user={sync_user!r}"
        )
    if user_id is not None:
        if not isinstance(user_id, str) or not user_id:
            raise InvalidInput(f"Session user_id must be a non-empty string, got {user_id!r}")
        return user_id
    me = sync_user() if callable(sync_user) and not isinstance(sync_user, User) else sync_user
    if not isinstance(me, User):
        raise InvalidInput(
            "Session sync_user must be a User or a function returning a User, "
            f"got {type(me).__name__}"
        )
    return me


def _user_fields(me: User | str | None) -> str | None:
    """Return a comparable form of the fields ``sync_user`` sets, or ``None`` for a bare id."""
    if not isinstance(me, User):
        return None
    return json.dumps(me.model_dump(mode="json", exclude_unset=True), sort_keys=True)


def _subscribe(session: TalkSession, event: str, handler: Callable[[Any], Any]) -> None:
    subscribe: dict[str, Callable[[Callable[[Any], Any]], Any]] = {
        "on_message": session.on_message,
        "on_unreads_change": session.unreads.on_change,
        "on_error": session.on_error,
        "on_desktop_notification_clicked": session.on_desktop_notification_clicked,
        "on_browser_permission_needed": session.on_browser_permission_needed,
        "on_browser_permission_denied": session.on_browser_permission_denied,
    }
    subscribe[event](handler)


@component
def Session(*children: VdomChild, **props: Any) -> Any:
    """Connect a user to the chat backend and provide the session to the components inside.

    Props (snake_case; the @talkjs/react camelCase spellings such as ``appId``,
    ``syncUser`` or ``onMessage`` are accepted too):

    - ``app_id``: the app's id (required).
    - ``user_id``: id of an existing user to sign in as; or
    - ``sync_user``: a ``User``, or a function returning one, to sign in as.
      Its set fields are written on connect and whenever they change; ``None``
      deletes a field and unset fields are left as stored.
    - ``token``: user token (JWT); a new token is used without reconnecting.
    - ``token_fetcher``: function (sync or async) returning a fresh token,
      called before the token expires and when the backend rejects it.
    - ``signature``: legacy HMAC-SHA256 signature of the user id.
    - ``session_ref``: a ``reactpy.Ref`` set to the session once connected and
      reset to ``None`` when the session is destroyed.
    - ``desktop_notification_enabled``: turn desktop notifications on or off.
    - events: ``on_message``, ``on_unreads_change``,
      ``on_desktop_notification_clicked``, ``on_browser_permission_needed``,
      ``on_browser_permission_denied`` and ``on_error``.

    The session lives exactly as long as this component is mounted, and is
    recreated only when ``app_id``, the user's id or ``signature`` change.
    Children are always rendered, also while connecting.

    Raises:
        InvalidInput: An unknown prop or event (the message lists the valid
            ones), a missing ``app_id``, or not exactly one of ``user_id`` and
            ``sync_user``.
    """
    # Invalid props are shown, not raised: ReactPy would log the failed render
    # with every prop, the token included. Hooks below run either way, so
    # their order never changes between renders.
    problem: InvalidInput | None = None
    try:
        options = normalize_session_props(props)
        app_id = options.get("app_id")
        if not isinstance(app_id, str) or not app_id:
            raise InvalidInput(f"Session needs app_id, a non-empty string; got {app_id!r}")
        me: User | str | None = _resolve_me(options.get("user_id"), options.get("sync_user"))
    except InvalidInput as exc:
        problem, options, app_id, me = exc, {}, None, None
    me_id = me.id if isinstance(me, User) else me
    signature: str | None = options.get("signature")
    session_ref: Ref[TalkSession | None] | None = options.get("session_ref")
    token: str | None = options.get("token")
    has_fetcher = "token_fetcher" in options
    notifications: bool | None = options.get("desktop_notification_enabled")
    user_fields = _user_fields(me)
    state, set_state = use_state(SessionState)

    # Handlers and credentials are read through a ref when used, so a new lambda
    # on every render neither recreates the session nor resubscribes.
    latest: Ref[dict[str, Any]] = use_ref({})
    latest.current = {**options, "me": me}
    # The sync_user fields the backend last received, to write only changes.
    written_fields: Ref[str | None] = use_ref(None)

    def fetch_latest_token() -> Any:
        return latest.current["token_fetcher"]()

    @use_effect(dependencies=[app_id, me_id, signature, problem is None])
    def run_session() -> Callable[[], None] | None:
        if problem is not None or app_id is None or me is None:
            return None
        current = latest.current
        written_fields.current = _user_fields(current["me"])
        session = TalkSession(
            app_id,
            current["me"],
            token=current.get("token"),
            token_fetcher=fetch_latest_token if "token_fetcher" in current else None,
            signature=signature,
        )

        def forward(name: str) -> Callable[[Any], Any]:
            def handler(payload: Any) -> Any:
                callback = latest.current.get(name)
                if callback is not None:
                    return callback(payload)
                if name == "on_desktop_notification_clicked":
                    # No handler on this render: do what TalkJS does without one.
                    for inbox in session.get_inboxes():
                        inbox.select(payload.conversation.id)
                return None

            return handler

        for event in SESSION_EVENTS:
            _subscribe(session, event, forward(event))

        def on_status(status: SessionStatus) -> None:
            if status is SessionStatus.DESTROYED:
                return
            if status is SessionStatus.READY and session_ref is not None:
                session_ref.current = session
            set_state(SessionState(session, status, session.error))

        session.on_status_change(on_status)
        set_state(SessionState(session, SessionStatus.CONNECTING, None))
        session.start()

        def cleanup() -> None:
            session.destroy()
            if session_ref is not None and session_ref.current is session:
                session_ref.current = None

        return cleanup

    session = state.session

    @use_effect(dependencies=[session, token, has_fetcher])
    def apply_credentials() -> None:
        if session is not None and session.is_alive:
            session.update_credentials(
                token=token, token_fetcher=fetch_latest_token if has_fetcher else None
            )

    @use_effect(dependencies=[session, notifications])
    def apply_notifications() -> None:
        if session is None or not session.is_alive or notifications is None:
            return
        try:
            session.desktop_notifications.set_enabled(notifications)
        except ChatError as error:
            # The denied or unsupported state is already reported to its handlers.
            session._report_error(error)

    @use_async_effect(dependencies=[session, state.status, user_fields])
    async def write_user_fields() -> None:
        if session is None or state.status is not SessionStatus.READY or not isinstance(me, User):
            return
        if user_fields == written_fields.current:
            return
        written_fields.current = user_fields
        try:
            await session.update_me(me)
        except ChatError as error:
            session._report_error(error)

    if problem is not None:
        logger.error("Session has invalid props: %s", problem.message)
        failed = SessionState(None, SessionStatus.FAILED, problem)
        alert = html.p({"className": "tjs-error", "role": "alert"}, problem.message)
        return SessionContext(alert, *children, value=failed)
    bridge = (
        NotificationBridge(session, key=f"notifier-{session.id}")
        if session is not None and session.is_alive
        else ""
    )
    return SessionContext(*children, bridge, value=state)
