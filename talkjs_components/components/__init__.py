"""ReactPy components and hooks mirroring TalkJS's Classic React SDK."""

from .chatbox import Chatbox
from .context import SessionState, use_session, use_session_state, use_unreads
from .session import Session
from .strings import STRINGS

__all__ = [
    "STRINGS",
    "Chatbox",
    "Session",
    "SessionState",
    "use_session",
    "use_session_state",
    "use_unreads",
]
