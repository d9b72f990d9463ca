"""Sessions: a user's live connection to the chat backend, without any UI."""

from .backoff import Backoff
from .conversation import ConversationBuilder
from .ids import one_on_one_id
from .payloads import SessionMessage
from .talk_session import SessionStatus, TalkSession
from .tokens import TokenFetcher, token_expiry
from .transport import Credentials, InProcessTransport, Transport
from .unreads import Unreads

__all__ = [
    "Backoff",
    "ConversationBuilder",
    "Credentials",
    "InProcessTransport",
    "SessionMessage",
    "SessionStatus",
    "TalkSession",
    "TokenFetcher",
    "Transport",
    "Unreads",
    "one_on_one_id",
    "token_expiry",
]
