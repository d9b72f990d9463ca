"""UI boxes (Chatbox, Inbox, Popup) as registered with their session."""

from __future__ import annotations

import logging
from collections.abc import Callable
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from ..errors import SessionDestroyed

if TYPE_CHECKING:
    from .talk_session import TalkSession

__all__ = ["BoxKind", "UIBox", "mount_box"]

logger = logging.getLogger("talkjs_components.session")


class BoxKind(StrEnum):
    """Kind of UI box."""

    CHATBOX = "chatbox"
    INBOX = "inbox"
    POPUP = "popup"


class UIBox:
    """A mounted Chatbox, Inbox or Popup, registered with its session until unmounted.

    ``current_conversation_id`` is the conversation the box shows. The
    component that owns the box sets ``on_select`` to handle :meth:`select`,
    and ``on_reload`` to load its conversation again from the backend: the
    session calls it after a reconnect that could not replay every missed
    event (``resume_gap``), because what the box shows may then be stale.
    """

    def __init__(self, session: TalkSession, kind: BoxKind) -> None:
        self.kind = kind
        self.current_conversation_id: str | None = None
        self.on_select: Callable[[str | None], None] | None = None
        self.on_reload: Callable[[], None] | None = None
        self._session = session
        self._alive = True
        session._register_box(self)

    def __repr__(self) -> str:
        state = "alive" if self._alive else "destroyed"
        return f"<UIBox {self.kind.value} {self.current_conversation_id!r} {state}>"

    @property
    def session(self) -> TalkSession:
        """The session the box belongs to."""
        return self._session

    @property
    def is_alive(self) -> bool:
        """Whether the box is still mounted and its session alive."""
        return self._alive and self._session.is_alive

    def select(self, conversation_id: str | None) -> None:
        """Show another conversation (``None`` for none).

        Raises:
            SessionDestroyed: The box was destroyed.
        """
        if not self.is_alive:
            raise SessionDestroyed(
                f"cannot select {conversation_id!r} in a destroyed {self.kind.value}"
            )
        if self.on_select is not None:
            self.on_select(conversation_id)

    def _request_reload(self) -> None:
        """Call ``on_reload``; an exception in it is logged, so other boxes still reload."""
        if not self.is_alive or self.on_reload is None:
            return
        try:
            self.on_reload()
        except Exception:
            logger.exception("on_reload of %r failed", self)

    def destroy(self) -> None:
        """Unregister the box; calling it again does nothing."""
        if self._alive:
            self._alive = False
            self.on_select = None
            self.on_reload = None
            self._session._unregister_box(self)


def mount_box(
    session: TalkSession,
    kind: BoxKind,
    on_select: Callable[[str | None], None],
    ref: Any = None,
    conversation_id: str | None = None,
) -> tuple[UIBox, Callable[[], None]]:
    """Register the box of a component that just mounted, and point ``ref`` at it.

    Returns the box and the function that undoes both; components return
    that function from their mount effect.
    """
    box = UIBox(session, kind)
    box.on_select = on_select
    box.current_conversation_id = conversation_id
    if ref is not None:
        ref.current = box

    def unmount() -> None:
        box.destroy()
        if ref is not None and ref.current is box:
            ref.current = None

    return box, unmount
