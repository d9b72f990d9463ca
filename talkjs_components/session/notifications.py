"""Desktop notifications of a session: state, permission flow and events.

The browser side is the ``Notifier`` JS component that ``Session`` renders:
it reports the browser's permission, requests it on the user's next gesture
(never without one), and shows each notification when the window is not
focused or the message's conversation is not on screen. This module decides
what to notify and runs the Python handlers.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from ..errors import ChatError
from ..models import Conversation, MessageSent, MessageType, User
from ..subscription import Subscription

if TYPE_CHECKING:
    from .talk_session import TalkSession

logger = logging.getLogger("talkjs_components.session")

__all__ = [
    "BODY_LENGTH",
    "BrowserPermissionDeniedEvent",
    "BrowserPermissionNeededEvent",
    "DesktopNotification",
    "DesktopNotificationClickedEvent",
    "DesktopNotifications",
    "NotificationPermission",
]

BODY_LENGTH = 200
"""Characters of message text shown in a notification."""


class NotificationPermission(StrEnum):
    """The browser's notification permission, as the page last reported it."""

    UNKNOWN = "unknown"
    """No page has reported yet."""
    DEFAULT = "default"
    """Not asked yet; the browser will prompt on the user's next gesture."""
    GRANTED = "granted"
    DENIED = "denied"
    UNSUPPORTED = "unsupported"
    """The browser has no Notification API (for example an insecure origin)."""


@dataclass(frozen=True)
class DesktopNotification:
    """A notification for the page to show."""

    id: str
    conversation_id: str
    title: str
    body: str
    icon: str | None
    conversation_shown: bool
    """Whether a mounted Chatbox or Inbox shows the conversation right now."""

    def to_props(self) -> dict[str, Any]:
        """Return the notification as JS component props."""
        return {
            "id": self.id,
            "conversationId": self.conversation_id,
            "title": self.title,
            "body": self.body,
            "icon": self.icon,
            "conversationShown": self.conversation_shown,
        }


@dataclass(frozen=True)
class DesktopNotificationClickedEvent:
    """Payload of ``on_desktop_notification_clicked``."""

    conversation: Conversation


@dataclass
class BrowserPermissionNeededEvent:
    """Payload of ``on_browser_permission_needed``, sent before the browser prompts.

    Call :meth:`prevent_default` inside the handler (also an async one) to
    keep the browser from prompting.
    """

    type: str = "notifications"
    default_prevented: bool = field(default=False, init=False)

    def prevent_default(self) -> None:
        """Do not show the browser's permission prompt."""
        self.default_prevented = True


@dataclass(frozen=True)
class BrowserPermissionDeniedEvent:
    """Payload of ``on_browser_permission_denied``."""

    type: str = "notifications"


class DesktopNotifications:
    """Desktop notification state of one session."""

    def __init__(self, session: TalkSession) -> None:
        self._session = session
        self._requested = False
        self._enabled = False
        self._permission = NotificationPermission.UNKNOWN
        self._latest: DesktopNotification | None = None
        self._prompt_allowed = False
        self._change_handlers: list[Callable[[], Any]] = []
        self._clicked_handlers: list[Callable[[DesktopNotificationClickedEvent], Any]] = []
        self._needed_handlers: list[Callable[[BrowserPermissionNeededEvent], Any]] = []
        self._denied_handlers: list[Callable[[BrowserPermissionDeniedEvent], Any]] = []
        self._conversations: dict[str, Conversation] = {}

    # -- state read by the Notifier component -----------------------------------

    @property
    def enabled(self) -> bool:
        """Whether notifications are on."""
        return self._enabled

    @property
    def permission(self) -> NotificationPermission:
        """The browser's permission as last reported."""
        return self._permission

    @property
    def latest(self) -> DesktopNotification | None:
        """The newest notification to show, if any."""
        return self._latest

    @property
    def prompt_allowed(self) -> bool:
        """Whether the page may ask for permission on the user's next gesture."""
        return self._prompt_allowed

    def on_change(self, handler: Callable[[], Any]) -> Subscription:
        """Call ``handler`` whenever any of the state above changes."""
        self._change_handlers.append(handler)
        return Subscription(lambda: _discard(self._change_handlers, handler))

    def _changed(self) -> None:
        for handler in list(self._change_handlers):
            try:
                handler()
            except Exception:
                self._session._log_handler_error("desktop notification state")

    # -- control ---------------------------------------------------------------

    def set_enabled(self, enabled: bool) -> None:
        """Turn notifications on or off.

        Turning them on where the browser denied permission runs the
        ``on_browser_permission_denied`` handlers and raises. The request is
        remembered: notifications start once the page reports that the user
        allowed them in the browser's settings.

        Raises:
            ChatError: Turning on where the page reported that notifications
                are unsupported (code ``notifications_not_supported``) or denied
                (code ``notifications_permission_denied``).
        """
        self._session._ensure_alive("set_desktop_notification_enabled")
        self._requested = enabled
        if enabled and self._permission is NotificationPermission.UNSUPPORTED:
            raise ChatError(
                "desktop notifications are not supported by this browser or page "
                "(they need the Notification API, which browsers offer on https and localhost)",
                code="notifications_not_supported",
            )
        if enabled and self._permission is NotificationPermission.DENIED:
            self._emit_denied()
            raise ChatError(
                "the browser denied notification permission; the user has to allow "
                "notifications for this site in the browser's settings",
                code="notifications_permission_denied",
            )
        self._apply()

    def _apply(self) -> None:
        blocked = self._permission in (
            NotificationPermission.DENIED,
            NotificationPermission.UNSUPPORTED,
        )
        enabled = self._requested and not blocked
        if enabled != self._enabled:
            self._enabled = enabled
            self._changed()

    def _emit_denied(self) -> None:
        self._emit(
            self._denied_handlers, BrowserPermissionDeniedEvent(), "on_browser_permission_denied"
        )

    # -- reports from the page ---------------------------------------------------

    def report_permission(self, permission: str) -> None:
        """Record the permission the page reported (``default``, ``granted``, …)."""
        try:
            value = NotificationPermission(permission)
        except ValueError:
            value = NotificationPermission.UNSUPPORTED
        if value is self._permission:
            return
        self._permission = value
        if value is NotificationPermission.DENIED and self._requested:
            self._emit_denied()
        self._apply()
        self._changed()

    async def report_permission_needed(self) -> None:
        """Run ``on_browser_permission_needed`` handlers, then allow or forbid the prompt."""
        event = BrowserPermissionNeededEvent()
        for handler in list(self._needed_handlers):
            try:
                result = handler(event)
                if inspect.isawaitable(result):
                    await result
            except Exception:
                self._session._log_handler_error("on_browser_permission_needed")
        allowed = not event.default_prevented
        if allowed != self._prompt_allowed:
            self._prompt_allowed = allowed
            self._changed()

    def report_clicked(self, conversation_id: str) -> None:
        """Run ``on_desktop_notification_clicked`` handlers for a clicked notification.

        Without handlers, a mounted Inbox selects the conversation.
        """
        conversation = self._conversations.get(conversation_id)
        if conversation is None:
            # Only conversations this session notified about can be clicked.
            logger.warning("click on a notification of unknown conversation %r", conversation_id)
            return
        event = DesktopNotificationClickedEvent(conversation)
        if self._clicked_handlers:
            self._emit(self._clicked_handlers, event, "on_desktop_notification_clicked")
            return
        for inbox in self._session.get_inboxes():
            inbox.select(conversation_id)

    # -- subscriptions -------------------------------------------------------------

    def on_clicked(self, handler: Callable[[DesktopNotificationClickedEvent], Any]) -> Subscription:
        """Call ``handler`` when the user clicks a notification."""
        self._clicked_handlers.append(handler)
        return Subscription(lambda: _discard(self._clicked_handlers, handler))

    def on_permission_needed(
        self, handler: Callable[[BrowserPermissionNeededEvent], Any]
    ) -> Subscription:
        """Call ``handler`` before the browser requests permission from the user."""
        self._needed_handlers.append(handler)
        return Subscription(lambda: _discard(self._needed_handlers, handler))

    def on_permission_denied(
        self, handler: Callable[[BrowserPermissionDeniedEvent], Any]
    ) -> Subscription:
        """Call ``handler`` when the user or browser refuses permission."""
        self._denied_handlers.append(handler)
        return Subscription(lambda: _discard(self._denied_handlers, handler))

    def _clear(self) -> None:
        self._change_handlers.clear()
        self._clicked_handlers.clear()
        self._needed_handlers.clear()
        self._denied_handlers.clear()

    def _emit(self, handlers: list[Any], event: Any, name: str) -> None:
        for handler in list(handlers):
            self._session._run_handler(handler, event, name, _membership(handlers, handler))

    # -- deciding what to notify -------------------------------------------------

    def _consider(self, event: MessageSent, sender: User | None, shown: bool) -> None:
        message = event.message
        me_id = self._session.me.id
        if not self._enabled or message.sender_id == me_id:
            return
        if message.type is MessageType.SYSTEM:
            return
        participation = event.conversation.participants.get(me_id)
        if participation is not None and not participation.notify:
            return
        self._conversations[event.conversation.id] = event.conversation
        sender_name = sender.display_name if sender else (message.sender_id or "")
        subject = event.conversation.subject
        title = f"{sender_name} in {subject}" if subject else sender_name
        body = (
            message.text if len(message.text) <= BODY_LENGTH else message.text[:BODY_LENGTH] + "…"
        )
        self._latest = DesktopNotification(
            id=message.id,
            conversation_id=event.conversation.id,
            title=title,
            body=body,
            icon=sender.photo_url if sender else None,
            conversation_shown=shown,
        )
        self._changed()


def _membership(handlers: list[Any], handler: Any) -> Callable[[], bool]:
    return lambda: handler in handlers


def _discard(handlers: list[Any], handler: Any) -> None:
    if handler in handlers:
        handlers.remove(handler)
