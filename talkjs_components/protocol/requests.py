"""Request frames: one per operation of the session Transport, with its result type.

On the wire a request is its model's fields plus the client-chosen ``id``,
for example ``{"type": "get_conversation", "id": "7", "conversationId": "c1"}``.
The ``id`` is not a model field, because the client protocol assigns it.
"""

from __future__ import annotations

from functools import cache
from typing import Annotated, Any, ClassVar, Literal, get_args

from pydantic import Field, NonNegativeInt, PositiveInt, StringConstraints, TypeAdapter

from ..models import (
    MAX_CUSTOM_FIELDS,
    MAX_ID_LENGTH,
    MAX_TEXT_LENGTH,
    Conversation,
    EventsPage,
    Id,
    Message,
    MessagesPage,
    UnreadsSnapshot,
    User,
    WireModel,
)
from .frames import PartialAttributes, PartialParticipation, PartialUser, WireCredentials

__all__ = [
    "REQUEST_TYPES",
    "DeleteMessage",
    "EditMessage",
    "EventsAfter",
    "GetConversation",
    "GetUnreadsSnapshot",
    "GetUsers",
    "LeaveConversation",
    "ListConversations",
    "ListMessages",
    "MarkRead",
    "OnlineUsers",
    "Reauthenticate",
    "Request",
    "RequestBase",
    "SendMessage",
    "SetTyping",
    "SyncConversation",
    "SyncUser",
    "result_adapter",
]

Text = Annotated[str, StringConstraints(max_length=MAX_TEXT_LENGTH)]
IdempotencyKey = Annotated[str, StringConstraints(min_length=1, max_length=MAX_ID_LENGTH)]
Custom = Annotated[dict[str, str], Field(max_length=MAX_CUSTOM_FIELDS)]
CustomUpdate = Annotated[dict[str, str | None], Field(max_length=MAX_CUSTOM_FIELDS)]


class RequestBase(WireModel):
    """Base of the request models; ``result_type`` is the type of a successful result."""

    result_type: ClassVar[Any]
    type: str


class SyncUser(RequestBase):
    """Write the set fields of the connected user; the result is the stored user."""

    result_type: ClassVar[Any] = User
    type: Literal["sync_user"] = "sync_user"
    user: PartialUser


class GetUsers(RequestBase):
    """Read the users among ``user_ids`` that the connected user may see, keyed by id."""

    result_type: ClassVar[Any] = dict[str, User]
    type: Literal["get_users"] = "get_users"
    user_ids: list[Id]


class SyncConversation(RequestBase):
    """Create or update a conversation; create the missing users of ``new_users`` first."""

    result_type: ClassVar[Any] = Conversation
    type: Literal["sync_conversation"] = "sync_conversation"
    conversation_id: Id
    attributes: PartialAttributes | None = None
    participants: dict[Id, PartialParticipation] | None = None
    new_users: list[PartialUser] = Field(default_factory=list)


class GetConversation(RequestBase):
    """Read a conversation the connected user participates in."""

    result_type: ClassVar[Any] = Conversation
    type: Literal["get_conversation"] = "get_conversation"
    conversation_id: Id


class ListConversations(RequestBase):
    """List the connected user's conversations, most recent activity first."""

    result_type: ClassVar[Any] = list[Conversation]
    type: Literal["list_conversations"] = "list_conversations"


class SendMessage(RequestBase):
    """Send a message; a repeated ``idempotency_key`` returns the first message.

    The key is required on the wire, so that sending the frame again after a
    reconnect never stores a second message.
    """

    result_type: ClassVar[Any] = Message
    type: Literal["send_message"] = "send_message"
    conversation_id: Id
    text: Text
    custom: Custom | None = None
    idempotency_key: IdempotencyKey


class ListMessages(RequestBase):
    """Read up to ``limit`` messages older than ``before`` (default: the newest), oldest first."""

    result_type: ClassVar[Any] = MessagesPage
    type: Literal["list_messages"] = "list_messages"
    conversation_id: Id
    limit: PositiveInt = 30
    before: Id | None = None


class MarkRead(RequestBase):
    """Mark a conversation read up to ``message_id`` (default: the newest message)."""

    result_type: ClassVar[Any] = None
    type: Literal["mark_read"] = "mark_read"
    conversation_id: Id
    message_id: Id | None = None


class EditMessage(RequestBase):
    """Change the text or ``custom`` of one of the connected user's messages."""

    result_type: ClassVar[Any] = Message
    type: Literal["edit_message"] = "edit_message"
    conversation_id: Id
    message_id: Id
    text: Text | None = None
    custom: CustomUpdate | None = None


class DeleteMessage(RequestBase):
    """Delete one of the connected user's messages."""

    result_type: ClassVar[Any] = None
    type: Literal["delete_message"] = "delete_message"
    conversation_id: Id
    message_id: Id


class SetTyping(RequestBase):
    """Tell a conversation's participants whether the connected user is typing."""

    result_type: ClassVar[Any] = None
    type: Literal["set_typing"] = "set_typing"
    conversation_id: Id
    typing: bool


class LeaveConversation(RequestBase):
    """Remove the connected user from a conversation."""

    result_type: ClassVar[Any] = None
    type: Literal["leave_conversation"] = "leave_conversation"
    conversation_id: Id


class OnlineUsers(RequestBase):
    """List those of ``user_ids`` who are online."""

    result_type: ClassVar[Any] = list[str]
    type: Literal["online_users"] = "online_users"
    user_ids: list[Id]


class GetUnreadsSnapshot(RequestBase):
    """Read the connected user's unreads with the positions they were computed at."""

    result_type: ClassVar[Any] = UnreadsSnapshot
    type: Literal["get_unreads_snapshot"] = "get_unreads_snapshot"


class EventsAfter(RequestBase):
    """Read up to ``limit`` of the user's stored events after the event ``seq`` ``after_seq``.

    The server responds with ``resume_gap`` when it no longer stores every event
    after ``after_seq``.
    """

    result_type: ClassVar[Any] = EventsPage
    type: Literal["events_after"] = "events_after"
    after_seq: NonNegativeInt
    limit: PositiveInt = 100


class Reauthenticate(RequestBase):
    """Present new credentials for the connected user; the result is ``null``."""

    result_type: ClassVar[Any] = None
    type: Literal["reauthenticate"] = "reauthenticate"
    credentials: WireCredentials


Request = Annotated[
    SyncUser
    | GetUsers
    | SyncConversation
    | GetConversation
    | ListConversations
    | SendMessage
    | ListMessages
    | MarkRead
    | EditMessage
    | DeleteMessage
    | SetTyping
    | LeaveConversation
    | OnlineUsers
    | GetUnreadsSnapshot
    | EventsAfter
    | Reauthenticate,
    Field(discriminator="type"),
]
"""Any request frame, without its id."""

REQUEST_TYPES: dict[str, type[RequestBase]] = {
    cls.model_fields["type"].default: cls for cls in get_args(get_args(Request)[0])
}
"""Request models by their ``type`` value."""


@cache
def result_adapter(request_type: str) -> TypeAdapter[Any]:
    """Return the adapter that validates and dumps the result of a request type."""
    return TypeAdapter(REQUEST_TYPES[request_type].result_type)
