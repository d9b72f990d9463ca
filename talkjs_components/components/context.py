"""The session context shared by Session and the components below it, and its hooks."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from reactpy import create_context, use_context, use_effect, use_state

from ..errors import ChatError
from ..models import UnreadConversation
from ..session import SessionStatus, TalkSession

__all__ = ["SessionContext", "SessionState", "use_session", "use_session_state", "use_unreads"]


@dataclass(frozen=True)
class SessionState:
    """Value a ``Session`` component provides: its session, status and failure."""

    session: TalkSession | None = None
    status: SessionStatus | None = None
    error: ChatError | None = None


SessionContext = create_context(SessionState())


def use_session_state() -> SessionState:
    """Return the nearest ``Session``'s state (an empty state outside any ``Session``)."""
    state: SessionState = use_context(SessionContext)
    return state


def use_session() -> TalkSession | None:
    """Return the live, connected session of the nearest ``Session``, else ``None``.

    ``None`` while connecting, after a failure, after unmount, and outside a
    ``Session``. While the session reconnects it is still returned, so the UI
    keeps its state; ``use_session_state().status`` shows that it reconnects.
    Code that keeps the session across awaits should check
    ``session.is_alive`` before using it again.
    """
    state = use_session_state()
    session = state.session
    usable = state.status in (SessionStatus.READY, SessionStatus.RECONNECTING)
    if session is None or not usable or not session.is_alive:
        return None
    return session


def use_unreads() -> list[UnreadConversation] | None:
    """Return the user's unread conversations, re-rendering when they change.

    ``None`` outside a ``Session`` and until the session has loaded them.
    """
    session = use_session()
    unreads, set_unreads = use_state(lambda: session.unreads.current if session else None)

    @use_effect(dependencies=[session])
    def subscribe() -> Callable[[], None] | None:
        if session is None:
            set_unreads(None)
            return None
        subscription = session.unreads.on_change(set_unreads)
        return subscription.unsubscribe

    return unreads
