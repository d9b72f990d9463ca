"""ReactPy components and hooks mirroring TalkJS's Classic React SDK."""

from .chatbox import Chatbox
from .context import SessionState, use_session, use_session_state, use_unreads
from .inbox import ConversationSelectedEvent, Inbox, SelectConversationEvent
from .popup import Popup
from .session import Session
from .strings import STRINGS

__all__ = [
    "STRINGS",
    "Chatbox",
    "ConversationSelectedEvent",
    "Inbox",
    "Popup",
    "SelectConversationEvent",
    "Session",
    "SessionState",
    "use_session",
    "use_session_state",
    "use_unreads",
]
