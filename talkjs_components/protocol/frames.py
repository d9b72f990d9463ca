"""Frames of the realtime protocol other than requests, as pydantic models.

Every frame is one JSON object in one websocket text frame, with a ``type``
field that selects the model. Field names are camelCase on the wire, as in
:mod:`talkjs_components.models`. docs/protocol.md shows each frame as JSON.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    Field,
    NonNegativeInt,
    PlainSerializer,
    PositiveFloat,
    PositiveInt,
    StringConstraints,
    model_validator,
)

from ..models import (
    MAX_ID_LENGTH,
    ChatEvent,
    ConversationAttributes,
    Id,
    Participation,
    User,
    WireModel,
)

__all__ = [
    "MAX_SIGNATURE_LENGTH",
    "MAX_TOKEN_LENGTH",
    "ErrorFrame",
    "EventFrame",
    "Hello",
    "PartialAttributes",
    "PartialParticipation",
    "PartialUser",
    "Ping",
    "Pong",
    "RequestId",
    "ResultFrame",
    "ResumeStatus",
    "ServerFrame",
    "Welcome",
    "WelcomeLimits",
    "WireCredentials",
]

MAX_TOKEN_LENGTH = 8192
"""Maximum length of a user token in a frame, in characters."""

MAX_SIGNATURE_LENGTH = 256
"""Maximum length of a signature in a frame, in characters. Valid ones have 64."""

RequestId = Annotated[
    str, StringConstraints(min_length=1, max_length=64, pattern=r"^[\x21-\x7e]+$")
]
"""A client-chosen request id: 1 to 64 printable ASCII characters without spaces."""

AppId = Annotated[str, StringConstraints(min_length=1, max_length=MAX_ID_LENGTH, pattern=r"^\S+$")]

Version = Annotated[int, Field(ge=1)]


def _dump_set_fields(model: BaseModel) -> dict[str, Any]:
    return model.model_dump(mode="json", by_alias=True, exclude_unset=True)


# A partial update travels with only the fields its sender set, because an
# unset field keeps the stored value and a field set to None deletes it.
PartialUser = Annotated[User, PlainSerializer(_dump_set_fields)]
"""A user as a partial update: only the fields set in Python go on the wire."""

PartialAttributes = Annotated[ConversationAttributes, PlainSerializer(_dump_set_fields)]
"""Conversation attributes as a partial update: only the fields set go on the wire."""

PartialParticipation = Annotated[Participation, PlainSerializer(_dump_set_fields)]
"""A participant's settings as a partial update: an unset field keeps the stored setting."""


class WireCredentials(WireModel):
    """Credentials of a hello or reauthenticate frame.

    Their values are left out of ``repr`` and of every error message. The
    server verifies them with :func:`talkjs_components.auth.authenticate`.
    """

    token: str | None = Field(default=None, max_length=MAX_TOKEN_LENGTH, repr=False)
    """A user token (JWT)."""

    signature: str | None = Field(default=None, max_length=MAX_SIGNATURE_LENGTH, repr=False)
    """A legacy signature: the hex HMAC-SHA256 of the user id."""


class Hello(WireModel):
    """First client frame: versions, app, user, credentials, and where to resume."""

    type: Literal["hello"] = "hello"
    versions: Annotated[list[Version], Field(min_length=1, max_length=16)]
    """Protocol versions the client speaks; the server picks the newest it also speaks."""

    app_id: AppId
    user_id: Id
    credentials: WireCredentials = Field(default_factory=WireCredentials)
    user: PartialUser | None = None
    """Fields of the user to write before connecting; ``None`` connects an existing user."""

    resume_after: NonNegativeInt | None = None
    """The last event ``seq`` the client saw, or ``None`` for a fresh start."""

    @model_validator(mode="after")
    def _check_user_id(self) -> Hello:
        if self.user is not None and self.user.id != self.user_id:
            raise ValueError(
                f"user.id {self.user.id!r} must equal userId {self.user_id!r}, "
                "because a connection can only write its own user"
            )
        return self


class ResumeStatus(StrEnum):
    """Resume status of a connection, as the welcome states it."""

    FRESH = "fresh"
    """The client asked for no resume; events after the welcome's ``seq`` follow."""

    RESUMED = "resumed"
    """Every event after the hello's ``resumeAfter`` follows, replayed first."""

    GAP = "gap"
    """The server no longer has every event after ``resumeAfter``; the client must reload."""


class WelcomeLimits(WireModel):
    """Limits and timers of the connection, in bytes, requests and seconds."""

    max_frame_bytes: PositiveInt
    heartbeat_interval: PositiveFloat
    idle_timeout: PositiveFloat
    max_in_flight_requests: PositiveInt


class Welcome(WireModel):
    """Server response to a valid hello: the chosen version, the limits and the stored user."""

    type: Literal["welcome"] = "welcome"
    version: Version
    user: User
    limits: WelcomeLimits
    seq: NonNegativeInt
    """The event log position the connection starts from: the app's newest event ``seq``."""

    resume: ResumeStatus


class Ping(WireModel):
    """Heartbeat, to which the receiver responds with a pong."""

    type: Literal["ping"] = "ping"


class Pong(WireModel):
    """Response to a ping."""

    type: Literal["pong"] = "pong"


class ResultFrame(WireModel):
    """Successful response to the request ``id``; ``result`` depends on the request type."""

    type: Literal["result"] = "result"
    id: RequestId
    # Any: the client validates the value against the result type of the
    # request it sent, and only the client has that request.
    result: Any = None


class ErrorFrame(WireModel):
    """Error response to the request ``id``, or, without ``id``, the reason for a close."""

    type: Literal["error"] = "error"
    id: RequestId | None = None
    code: Annotated[str, StringConstraints(min_length=1, max_length=100)]
    """Stable machine-readable code, such as ``not_found`` or ``token_expired``."""

    kind: Annotated[str, StringConstraints(min_length=1, max_length=100)]
    """Code of the error's class in the ChatError tree, such as ``auth_failed``."""

    message: str


class EventFrame(WireModel):
    """A chat event for the connected user.

    ``event.seq`` is the event's position in the app's event log. The
    numbers one user receives increase but skip values. It is ``None`` for
    typing and presence events, which are not stored and never replayed.
    """

    type: Literal["event"] = "event"
    event: ChatEvent


ServerFrame = Annotated[
    Welcome | ResultFrame | ErrorFrame | EventFrame | Ping | Pong,
    Field(discriminator="type"),
]
"""Any frame a server sends."""
