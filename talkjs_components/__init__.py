"""Chat components for ReactPy with the TalkJS Classic React API, and the chat backend behind them.

Only the names listed in ``__all__`` here and in the submodules' ``__all__``
are public.
"""

from .components import (
    Chatbox,
    ConversationSelectedEvent,
    Inbox,
    MessageAction,
    MessageActionEvent,
    Popup,
    SelectConversationEvent,
    Session,
    use_session,
    use_unreads,
)
from .errors import (
    AuthError,
    ChatError,
    InvalidInput,
    NotFound,
    PermissionDenied,
    SessionDestroyed,
    StorageError,
)
from .models import (
    AccessLevel,
    Conversation,
    Message,
    MessageType,
    Participation,
    UnreadConversation,
    User,
)
from .session import ConversationBuilder, SessionMessage, TalkSession, one_on_one_id

__all__ = [
    "AccessLevel",
    "AuthError",
    "ChatError",
    "Chatbox",
    "Conversation",
    "ConversationBuilder",
    "ConversationSelectedEvent",
    "Inbox",
    "InvalidInput",
    "Message",
    "MessageAction",
    "MessageActionEvent",
    "MessageType",
    "NotFound",
    "Participation",
    "PermissionDenied",
    "Popup",
    "SelectConversationEvent",
    "Session",
    "SessionDestroyed",
    "SessionMessage",
    "StorageError",
    "TalkSession",
    "UnreadConversation",
    "User",
    "one_on_one_id",
    "use_session",
    "use_unreads",
]

__version__ = "0.1.0"
