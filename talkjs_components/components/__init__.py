"""ReactPy components and hooks mirroring TalkJS's Classic React SDK."""

from .chatbox import Chatbox
from .chatbox_events import MessageActionEvent
from .context import SessionState, use_session, use_session_state, use_unreads
from .inbox import ConversationSelectedEvent, Inbox, SelectConversationEvent
from .message_actions import MessageAction
from .popup import Popup
from .session import Session
from .strings import STRINGS

__all__ = [
    "STRINGS",
    "Chatbox",
    "ConversationSelectedEvent",
    "Inbox",
    "MessageAction",
    "MessageActionEvent",
    "Popup",
    "SelectConversationEvent",
    "Session",
    "SessionState",
    "use_session",
    "use_session_state",
    "use_unreads",
]
