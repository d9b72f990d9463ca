"""The ``Session`` component: a user's chat session for the components inside it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from reactpy import Ref, component, use_effect, use_ref, use_state
from reactpy.types import Component, VdomChild

from ..errors import InvalidInput
from ..models import User
from ..session import SessionStatus, TalkSession, TokenFetcher
from .context import SessionContext, SessionState

__all__ = ["Session"]

SyncUser = User | Callable[[], User]


def _resolve_me(user_id: str | None, sync_user: SyncUser | None) -> User | str:
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


@component
def Session(
    *children: VdomChild,
    app_id: str,
    user_id: str | None = None,
    sync_user: SyncUser | None = None,
    token: str | None = None,
    token_fetcher: TokenFetcher | None = None,
    signature: str | None = None,
    session_ref: Ref[TalkSession | None] | None = None,
    on_message: Callable[[Any], Any] | None = None,
    on_unreads_change: Callable[[Any], Any] | None = None,
) -> Component | Any:
    """Connect a user to the chat backend and provide the session to the components inside.

    The session lives exactly as long as this component is mounted. It is
    recreated only when ``app_id``, the user's id or ``signature`` change.
    Children are always rendered, also while connecting; ``use_session()``
    returns the session once it is connected.

    Args:
        children: Components that use the session (``Chatbox``, your own).
        app_id: The app's id.
        user_id: Id of an existing user to sign in as.
        sync_user: A ``User`` (or a function returning one) to sign in as;
            its set fields are written to the backend on connect.
        token: A user token (JWT) signed with the app's secret key.
        token_fetcher: Called for a token when ``token`` is not given.
        signature: Legacy HMAC-SHA256 signature of the user id.
        session_ref: A ref set to the session once connected and reset to
            ``None`` when the session is destroyed.
        on_message: Called with each ``SessionMessage`` of the user's conversations.
        on_unreads_change: Called with the list of unread conversations once
            loaded and on every change.
    """
    me = _resolve_me(user_id, sync_user)
    me_id = me if isinstance(me, str) else me.id
    state, set_state = use_state(SessionState)

    # Handlers and credentials are read through refs, so a new lambda or token
    # on every render neither recreates the session nor resubscribes.
    latest: Ref[dict[str, Any]] = use_ref({})
    latest.current = {
        "me": me,
        "token": token,
        "token_fetcher": token_fetcher,
        "on_message": on_message,
        "on_unreads_change": on_unreads_change,
    }

    @use_effect(dependencies=[app_id, me_id, signature])
    def run_session() -> Callable[[], None]:
        current = latest.current
        session = TalkSession(
            app_id,
            current["me"],
            token=current["token"],
            token_fetcher=current["token_fetcher"],
            signature=signature,
        )

        def forward(name: str) -> Callable[[Any], Any]:
            def handler(payload: Any) -> Any:
                callback = latest.current.get(name)
                return callback(payload) if callback is not None else None

            return handler

        session.on_message(forward("on_message"))
        session.unreads.on_change(forward("on_unreads_change"))

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

    return SessionContext(*children, value=state)
