"""Data models of users, conversations, messages, unreads and events.

Field names are snake_case in Python and camelCase on the wire, like TalkJS's
JSON (``photo_url`` is ``photoUrl``). Models validate on construction, so a
value that breaks a limit raises pydantic's ``ValidationError`` naming the
field. Timestamps are integers in milliseconds since the Unix epoch (UTC), as
in TalkJS.

Update semantics follow TalkJS: for a partial update, a field that is not set
is left as it is and a field set to ``None`` is deleted. Pydantic records
which fields were set (``model_fields_set``), and the store relies on it.
"""

from __future__ import annotations

import time
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints
from pydantic.alias_generators import to_camel

__all__ = [
    "MAX_CUSTOM_FIELDS",
    "MAX_ID_LENGTH",
    "MAX_TEXT_LENGTH",
    "AccessLevel",
    "BaseEvent",
    "ChatEvent",
    "Conversation",
    "ConversationAttributes",
    "ConversationEvent",
    "ConversationUpdated",
    "EventsPage",
    "Message",
    "MessageDeleted",
    "MessageEdited",
    "MessageOrigin",
    "MessageSent",
    "MessageType",
    "MessagesPage",
    "MessagesRead",
    "Participation",
    "PresenceChanged",
    "TypingChanged",
    "UnreadConversation",
    "UnreadsSnapshot",
    "User",
    "now_ms",
]

MAX_ID_LENGTH = 200
"""Maximum length of a user, conversation or message id, in characters."""

MAX_TEXT_LENGTH = 20_000
"""Maximum length of a message text, in characters."""

MAX_CUSTOM_FIELDS = 100
"""Maximum number of keys in a ``custom`` dictionary."""


def _reject_dot_segments(value: str) -> str:
    if value in (".", ".."):
        raise ValueError(
            f"id {value!r} is reserved: HTTP clients rewrite '.' and '..' in URL paths, "
            "so choose an id with other characters"
        )
    return value


Id = Annotated[
    str,
    StringConstraints(min_length=1, max_length=MAX_ID_LENGTH, pattern=r"^[^\x00-\x1f/\\]+$"),
    AfterValidator(_reject_dot_segments),
]
"""An id: 1 to 200 characters, no control characters, no slashes, not "." or "..".

Ids appear in URL paths of the REST API and the realtime endpoint.
"""

CustomData = Annotated[dict[str, str], Field(max_length=MAX_CUSTOM_FIELDS)]
NullableCustomData = Annotated[dict[str, str | None], Field(max_length=MAX_CUSTOM_FIELDS)]


def now_ms() -> int:
    """Return the current time in milliseconds since the Unix epoch."""
    return time.time_ns() // 1_000_000


class WireModel(BaseModel):
    """Base of every model: camelCase aliases on the wire, either name accepted in Python."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
    )

    def to_wire(self) -> dict[str, object]:
        """Return the JSON-ready dictionary with camelCase keys."""
        return self.model_dump(mode="json", by_alias=True)


class AccessLevel(StrEnum):
    """Access of a participant to a conversation."""

    READ = "Read"
    READ_WRITE = "ReadWrite"


class MessageType(StrEnum):
    """Kind of message: written by a user, or posted by the system (no sender)."""

    USER = "UserMessage"
    SYSTEM = "SystemMessage"


class MessageOrigin(StrEnum):
    """Origin of a message, as in TalkJS."""

    WEB = "web"
    REST = "rest"
    IMPORT = "import"
    EMAIL = "email"


class User(WireModel):
    """A chat user.

    In a partial update (``ChatService.upsert_user``), unset fields are left as
    stored and fields set to ``None`` are deleted.
    """

    id: Id
    name: Annotated[str, StringConstraints(max_length=1000)] | None = None
    email: list[str] | None = None
    phone: list[str] | None = None
    photo_url: Annotated[str, StringConstraints(max_length=2000)] | None = None
    role: Annotated[str, StringConstraints(max_length=200)] | None = None
    locale: Annotated[str, StringConstraints(max_length=50)] | None = None
    welcome_message: Annotated[str, StringConstraints(max_length=MAX_TEXT_LENGTH)] | None = None
    custom: NullableCustomData | None = None
    created_at: int | None = None

    @property
    def display_name(self) -> str:
        """The name to show: ``name``, or the id when the user has no name."""
        return self.name or self.id


class Participation(WireModel):
    """A user's membership settings in one conversation."""

    access: AccessLevel = AccessLevel.READ_WRITE
    notify: bool = True


class ConversationAttributes(WireModel):
    """A partial update of a conversation's attributes.

    Unset fields are left as stored; ``None`` deletes. In ``custom``, a key set
    to ``None`` is removed and other keys are merged into the stored ones.
    """

    subject: Annotated[str, StringConstraints(max_length=1000)] | None = None
    photo_url: Annotated[str, StringConstraints(max_length=2000)] | None = None
    welcome_messages: Annotated[list[str], Field(max_length=20)] | None = None
    custom: NullableCustomData | None = None


class Conversation(WireModel):
    """A conversation with its participants, keyed by user id."""

    id: Id
    subject: str | None = None
    photo_url: str | None = None
    welcome_messages: list[str] | None = None
    custom: CustomData = Field(default_factory=dict)
    participants: dict[str, Participation] = Field(default_factory=dict)
    created_at: int = 0
    last_message_at: int | None = None

    def access_of(self, user_id: str) -> AccessLevel | None:
        """Return ``user_id``'s access, or ``None`` when they are not a participant."""
        participation = self.participants.get(user_id)
        return participation.access if participation else None


class Message(WireModel):
    """A message in a conversation.

    ``read_by`` lists the participants other than the sender who have read it.
    ``sender_id`` is ``None`` for system messages.
    """

    id: Id
    conversation_id: Id
    sender_id: Id | None
    text: Annotated[str, StringConstraints(max_length=MAX_TEXT_LENGTH)]
    type: MessageType = MessageType.USER
    created_at: int
    edited_at: int | None = None
    read_by: list[str] = Field(default_factory=list)
    custom: CustomData = Field(default_factory=dict)
    origin: MessageOrigin = MessageOrigin.WEB
    seq: int = 0
    """Store-wide position of the message: later messages have larger numbers.

    Messages sort by ``seq``; ``created_at`` can tie within a millisecond and
    follows the wall clock.
    """


class MessagesPage(WireModel):
    """One page of a conversation's messages, oldest first.

    ``has_more`` is whether messages older than the first one exist; pass
    the first message's id as ``before`` to fetch them.
    """

    messages: list[Message]
    has_more: bool


class UnreadConversation(WireModel):
    """A conversation in which the user has unread messages."""

    conversation: Conversation
    last_message: Message
    unread_message_count: int


class UnreadsSnapshot(WireModel):
    """A user's unread conversations, consistent with one position in the event log.

    The snapshot reflects every event with ``seq`` up to ``as_of_event_seq``
    and none after it, because the store reads both in one transaction. A
    session that subscribed before taking the snapshot skips the events up to
    that position and applies the later ones, so nothing counts twice.
    """

    unreads: list[UnreadConversation]
    read_positions: dict[str, int]
    """The user's read position (a message ``seq``) in each of their conversations."""
    as_of_event_seq: int
    """The app's latest event ``seq`` when the snapshot was taken; 0 when the log is empty."""


class BaseEvent(WireModel):
    """Base of every event model: the event's position in the app's event log."""

    seq: int | None = None
    """Position in the app's event log, assigned by the store when the change commits.

    A later event of the app has a larger number. A user's events are the
    app's events filtered to that user, so the numbers one user sees increase
    but skip values. Live delivery and ``ChatService.events_after`` use the
    same numbers, so a receiver drops an event whose ``seq`` it has already
    handled. ``None`` for ``TypingChanged`` and ``PresenceChanged``, which are
    not stored.
    """


class MessageSent(BaseEvent):
    """Event: a message was added to a conversation."""

    type: Literal["message_sent"] = "message_sent"
    conversation: Conversation
    message: Message
    sender: User | None = None
    """The sender at send time, so receivers need no lookup; ``None`` for system messages."""


class ConversationUpdated(BaseEvent):
    """Event: a conversation's attributes or participants changed.

    ``removed_user_ids`` lists users who stopped being participants in this
    change; they receive this one event and nothing later.
    """

    type: Literal["conversation_updated"] = "conversation_updated"
    conversation: Conversation
    removed_user_ids: list[str] = Field(default_factory=list)


class MessagesRead(BaseEvent):
    """Event: a participant read a conversation up to and including a message.

    ``unread_message_count`` is that participant's remaining unread count in
    the conversation (usually 0).
    """

    type: Literal["messages_read"] = "messages_read"
    conversation: Conversation
    user_id: str
    last_read_message_id: str | None
    last_read_seq: int = 0
    """``seq`` of the last read message; 0 when nothing was read."""
    unread_message_count: int


class MessageEdited(BaseEvent):
    """Event: a message's text or ``custom`` changed.

    ``message`` is the message after the edit, with ``edited_at`` set.
    """

    type: Literal["message_edited"] = "message_edited"
    conversation: Conversation
    message: Message


class MessageDeleted(BaseEvent):
    """Event: a message was deleted from a conversation.

    ``conversation`` is read after the deletion, so its ``last_message_at`` is
    that of the latest remaining message. Every message above a participant's
    read position was sent by someone else, so the deleted message was unread
    for exactly the participants whose read position is below
    ``message_seq``.
    """

    type: Literal["message_deleted"] = "message_deleted"
    conversation: Conversation
    message_id: str
    message_seq: int
    """``seq`` of the deleted message."""


class TypingChanged(BaseEvent):
    """Event: a participant started or stopped typing. It is not stored.

    Every participant receives it, the typist included, so a receiver skips
    the events of its own user. ``expires_at`` (milliseconds since the epoch)
    is when a receiver turns the indicator off if no newer event arrived, so
    the indicator of a typist who disconnected turns off by itself. For
    ``typing=False`` it is the time of the event.
    """

    type: Literal["typing_changed"] = "typing_changed"
    conversation: Conversation
    user_id: str
    typing: bool
    expires_at: int


class PresenceChanged(BaseEvent):
    """Event: a user came online (their first session connected) or went offline.

    It is published once per change and reaches every user who shares at
    least one conversation with that user, the user included. A user in no
    conversation has none published. It names no conversation, so a
    receiver does not learn which other conversations the user is in. It
    is not stored.
    """

    type: Literal["presence_changed"] = "presence_changed"
    user_id: str
    online: bool


ConversationEvent = (
    MessageSent
    | ConversationUpdated
    | MessagesRead
    | MessageEdited
    | MessageDeleted
    | TypingChanged
)
"""Any event that names its conversation: every ``ChatEvent`` but ``PresenceChanged``."""

ChatEvent = Annotated[ConversationEvent | PresenceChanged, Field(discriminator="type")]
"""Any event published by the chat service."""


class EventsPage(WireModel):
    """A user's stored events after a log position, oldest first.

    Returned by ``ChatService.events_after``. When ``has_more`` is true, call
    again with ``next_after_seq`` to get the following events.
    """

    events: list[ChatEvent]
    has_more: bool
    next_after_seq: int
    """The log position this page reaches; pass it as ``after_seq`` to continue.

    It is the last event's ``seq`` when ``has_more`` is true. Otherwise it is
    the app's latest event ``seq`` at the time of the read, which may be
    another user's event. A client that resumes from it keeps a recent
    position even when it receives no events for a long time.
    """
