"""Sessions: a user's live connection to the chat backend, without any UI."""

from .backoff import Backoff
from .boxes import BoxKind, UIBox
from .conversation import ConversationBuilder
from .ids import one_on_one_id
from .notifications import (
    BrowserPermissionDeniedEvent,
    BrowserPermissionNeededEvent,
    DesktopNotification,
    DesktopNotificationClickedEvent,
    DesktopNotifications,
    NotificationPermission,
)
from .payloads import SessionMessage
from .talk_session import SessionStatus, TalkSession
from .tokens import TokenFetcher, token_expiry
from .transport import Credentials, InProcessTransport, Transport
from .unreads import Unreads
from .websocket_transport import WebSocketTransport

__all__ = [
    "Backoff",
    "BoxKind",
    "BrowserPermissionDeniedEvent",
    "BrowserPermissionNeededEvent",
    "ConversationBuilder",
    "Credentials",
    "DesktopNotification",
    "DesktopNotificationClickedEvent",
    "DesktopNotifications",
    "InProcessTransport",
    "NotificationPermission",
    "SessionMessage",
    "SessionStatus",
    "TalkSession",
    "TokenFetcher",
    "Transport",
    "UIBox",
    "Unreads",
    "WebSocketTransport",
    "one_on_one_id",
    "token_expiry",
]
