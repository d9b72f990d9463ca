"""The realtime wire protocol between sessions and a chat server, without I/O.

Frames are JSON objects in websocket text frames; docs/protocol.md describes
them. :class:`ServerProtocol` and :class:`ClientProtocol` are state machines:
they take received text, close notices and the time (monotonic seconds) as
arguments, and return frames to send, a close to perform and events for the
I/O layer. Nothing here opens sockets, starts tasks or reads a clock.
"""

from .client import (
    ClientEvent,
    ClientProtocol,
    ClientState,
    Connected,
    Disconnected,
    EventReceived,
    ReloadNeeded,
    RequestFailed,
    ResponseReceived,
)
from .close_codes import Close, CloseCode, ReconnectPolicy, reconnect_policy
from .codec import EventFrameEncoder
from .errors import ErrorCode, InvalidRequest, InvalidState, ProtocolError
from .frames import ResumeStatus, WelcomeLimits, WireCredentials
from .limits import (
    CLIENT_VERSIONS,
    PROTOCOL_VERSION,
    REALTIME_PATH,
    SUPPORTED_VERSIONS,
    ServerLimits,
)
from .requests import (
    DeleteMessage,
    EditMessage,
    EventsAfter,
    GetConversation,
    GetUnreadsSnapshot,
    GetUsers,
    LeaveConversation,
    ListConversations,
    ListMessages,
    MarkRead,
    OnlineUsers,
    Reauthenticate,
    Request,
    RequestBase,
    SendMessage,
    SetTyping,
    SyncConversation,
    SyncUser,
)
from .server import HelloReceived, RequestReceived, ServerEvent, ServerProtocol, ServerState

__all__ = [
    "CLIENT_VERSIONS",
    "PROTOCOL_VERSION",
    "REALTIME_PATH",
    "SUPPORTED_VERSIONS",
    "ClientEvent",
    "ClientProtocol",
    "ClientState",
    "Close",
    "CloseCode",
    "Connected",
    "DeleteMessage",
    "Disconnected",
    "EditMessage",
    "ErrorCode",
    "EventFrameEncoder",
    "EventReceived",
    "EventsAfter",
    "GetConversation",
    "GetUnreadsSnapshot",
    "GetUsers",
    "HelloReceived",
    "InvalidRequest",
    "InvalidState",
    "LeaveConversation",
    "ListConversations",
    "ListMessages",
    "MarkRead",
    "OnlineUsers",
    "ProtocolError",
    "Reauthenticate",
    "ReconnectPolicy",
    "ReloadNeeded",
    "Request",
    "RequestBase",
    "RequestFailed",
    "RequestReceived",
    "ResponseReceived",
    "ResumeStatus",
    "SendMessage",
    "ServerEvent",
    "ServerLimits",
    "ServerProtocol",
    "ServerState",
    "SetTyping",
    "SyncConversation",
    "SyncUser",
    "WelcomeLimits",
    "WireCredentials",
    "reconnect_policy",
]
