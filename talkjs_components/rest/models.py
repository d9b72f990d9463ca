"""Wire models of TalkJS REST API v1, shared by this package's server and REST clients.

Field names are snake_case in Python and camelCase on the wire, and times are
milliseconds since the Unix epoch, as in TalkJS.

Request models check only the shape of a body: field types, required fields
and unknown fields (which they reject). They carry no size limits, so a
client can send what TalkJS's hosted API accepts; this package's server
applies its own limits (docs/limits.md) after parsing. Response models accept
and keep fields they do not declare (``model_extra``), because TalkJS's
hosted API returns fields that this package's server does not have.
"""

from __future__ import annotations

from typing import Annotated, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, RootModel
from pydantic.alias_generators import to_camel
from pydantic.config import JsonDict

from ..models import AccessLevel, MessageType

__all__ = [
    "MAX_MESSAGES_PER_REQUEST",
    "MAX_USERS_PER_REQUEST",
    "ConversationUpdate",
    "DataPage",
    "EmptyBody",
    "ErrorBody",
    "MessageId",
    "MessageIds",
    "MessageUpdate",
    "NewMessage",
    "NewMessages",
    "NewSystemMessage",
    "NewUserMessage",
    "Notify",
    "ParticipantJoin",
    "ParticipantUpdate",
    "RestConversation",
    "RestMessage",
    "RestParticipant",
    "RestUser",
    "RestUserConversation",
    "UserBatch",
    "UserUpdate",
]

MAX_MESSAGES_PER_REQUEST = 10
"""Maximum number of messages in one ``POST .../messages`` body, as in TalkJS."""

MAX_USERS_PER_REQUEST = 100
"""Maximum number of users in one ``PUT /users`` body, as in TalkJS."""

_T = TypeVar("_T")

Notify = bool | Literal["MentionsOnly"]
"""A participant's notification setting; TalkJS's hosted API also has ``"MentionsOnly"``."""


class _ResponseModel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="allow")


class _RequestModel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")

    def to_wire(self) -> dict[str, object]:
        """Return the JSON body: camelCase keys, only the fields that were set."""
        return self.model_dump(mode="json", by_alias=True, exclude_unset=True)


# Responses


class RestUser(_ResponseModel):
    """A user, as ``GET /users/{userId}`` returns it."""

    id: str
    name: str | None = None
    email: list[str] | None = None
    phone: list[str] | None = None
    photo_url: str | None = None
    role: str | None = None
    locale: str | None = None
    welcome_message: str | None = None
    custom: dict[str, str] | None = None
    created_at: int | None = None


class RestParticipant(_ResponseModel):
    """A participant's settings in a conversation."""

    access: AccessLevel
    notify: Notify


class RestMessage(_ResponseModel):
    """A message, as ``GET .../messages`` returns it.

    ``read_by`` lists the participants other than the sender who have read
    the message. ``sender_id`` is ``None`` for system messages.
    """

    id: str
    conversation_id: str
    type: MessageType
    sender_id: str | None = None
    text: str | None = None
    origin: str | None = None
    custom: dict[str, str] = Field(default_factory=dict)
    read_by: list[str] = Field(default_factory=list)
    created_at: int
    edited_at: int | None = None


class RestConversation(_ResponseModel):
    """A conversation, as ``GET /conversations/{conversationId}`` returns it."""

    id: str
    subject: str | None = None
    photo_url: str | None = None
    welcome_messages: list[str] | None = None
    custom: dict[str, str] = Field(default_factory=dict)
    participants: dict[str, RestParticipant] = Field(default_factory=dict)
    created_at: int
    last_message: RestMessage | None = None


class RestUserConversation(RestConversation):
    """One of a user's conversations, with that user's unread state."""

    unread_message_count: int
    """Messages after the user's read position that others sent."""
    is_unread: bool


class DataPage(_ResponseModel, Generic[_T]):
    """A page of a list endpoint; a page shorter than the requested ``limit`` is the last."""

    data: list[_T]


class MessageId(_ResponseModel):
    """The id of a message that ``POST .../messages`` stored."""

    id: str


class MessageIds(RootModel[list[MessageId]]):
    """The ids of the stored messages, in the order of the request."""


class EmptyBody(_ResponseModel):
    """The body of a successful write: ``{}``."""


class ErrorBody(_ResponseModel):
    """The body of every error response.

    ``error_code`` is a stable machine-readable code and ``reason`` a sentence
    naming the value at fault and the limit or fix. ``errors`` maps user ids
    to reasons when a batch of users is rejected.
    """

    error_code: str
    reason: str
    errors: dict[str, str] | None = None


# Requests


class UserUpdate(_RequestModel):
    """The body of ``PUT /users/{userId}``: fields not sent are kept, ``None`` deletes."""

    name: str | None = None
    email: list[str] | None = None
    phone: list[str] | None = None
    photo_url: str | None = None
    role: str | None = None
    locale: str | None = None
    welcome_message: str | None = None
    custom: dict[str, str | None] | None = None
    """Keys to set; a key set to ``None`` is removed and other stored keys are kept."""


class UserBatch(RootModel[dict[str, UserUpdate]]):
    """The body of ``PUT /users``: user id to fields, at most ``MAX_USERS_PER_REQUEST`` users."""


class ConversationUpdate(_RequestModel):
    """The body of ``PUT /conversations/{conversationId}``: fields not sent are kept.

    ``participants`` adds users with ReadWrite access and notifications on;
    it never removes anyone and leaves existing participants' settings as
    they are.
    """

    participants: list[str] | None = None
    subject: str | None = None
    photo_url: str | None = None
    welcome_messages: list[str] | None = None
    custom: dict[str, str | None] | None = None


class ParticipantJoin(_RequestModel):
    """The body of ``PUT .../participants/{userId}``: omitted fields get the defaults."""

    access: AccessLevel | None = None
    """``None`` means ReadWrite."""
    notify: Notify | None = None
    """``None`` means ``True``."""


class ParticipantUpdate(_RequestModel):
    """The body of ``PATCH .../participants/{userId}``: omitted fields are kept.

    ``access="None"`` removes the participant, as in TalkJS.
    """

    access: Literal["ReadWrite", "Read", "None"] | None = None
    notify: Notify | None = None


def _require_type(schema: JsonDict) -> None:
    """Mark ``type`` required in a message's JSON schema, as the server requires it.

    It has a default only so that Python code need not pass it.
    """
    required = schema.setdefault("required", [])
    assert isinstance(required, list)
    required.insert(0, "type")


class _NewMessageModel(_RequestModel):
    model_config = ConfigDict(json_schema_extra=_require_type)

    def to_wire(self) -> dict[str, object]:
        """Return the JSON body, always with ``type``, by which the server picks the kind."""
        return {"type": self.model_dump(mode="json")["type"], **super().to_wire()}


class NewUserMessage(_NewMessageModel):
    """A message sent on behalf of ``sender``, who must be a ReadWrite participant."""

    type: Literal["UserMessage"] = "UserMessage"
    text: str
    sender: str
    custom: dict[str, str] | None = None
    idempotency_key: str | None = None
    """A retry with the same key, sender and content returns the first message."""


class NewSystemMessage(_NewMessageModel):
    """A message from the system, which has no sender."""

    type: Literal["SystemMessage"] = "SystemMessage"
    text: str
    custom: dict[str, str] | None = None
    idempotency_key: str | None = None


NewMessage = Annotated[NewUserMessage | NewSystemMessage, Field(discriminator="type")]
"""One message of a ``POST .../messages`` body."""


class NewMessages(RootModel[list[NewMessage]]):
    """The body of ``POST .../messages``: 1 to ``MAX_MESSAGES_PER_REQUEST`` messages."""


class MessageUpdate(_RequestModel):
    """The body of ``PUT .../messages/{messageId}``: fields not sent are kept.

    In ``custom``, a key set to ``None`` is removed and other stored keys are kept.
    """

    text: str | None = None
    custom: dict[str, str | None] | None = None
