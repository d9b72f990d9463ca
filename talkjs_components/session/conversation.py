"""ConversationBuilder: a local description of a conversation that syncs on demand."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..errors import InvalidInput
from ..models import AccessLevel, Conversation, ConversationAttributes, Message, Participation, User

if TYPE_CHECKING:
    from .talk_session import TalkSession

__all__ = ["ConversationBuilder"]

_UNSET: Any = object()


class ConversationBuilder:
    """A conversation as the app wants it, mirroring TalkJS's ``ConversationBuilder``.

    Setting attributes and participants changes only this local object. The
    changes are written when a Chatbox selects the builder, or when
    :meth:`sync` or :meth:`send_message` is awaited. Attribute semantics: an
    attribute never set is left as stored, ``None`` deletes it.
    """

    def __init__(self, session: TalkSession, conversation_id: str) -> None:
        if not isinstance(conversation_id, str) or not conversation_id:
            raise InvalidInput(
                f"conversation id must be a non-empty string, got {conversation_id!r}"
            )
        self._session = session
        self.id = conversation_id
        self._attributes: dict[str, Any] = {}
        self._participants: dict[str, Participation] = {}
        self._users: dict[str, User] = {}

    def __repr__(self) -> str:
        return f"<ConversationBuilder {self.id!r} participants={sorted(self._participants)}>"

    # Attributes are properties so that ``builder.subject = "x"`` works as in TalkJS.

    @property
    def subject(self) -> str | None:
        """The conversation's subject, shown as its title."""
        return self._attributes.get("subject")

    @subject.setter
    def subject(self, value: str | None) -> None:
        self._attributes["subject"] = value

    @property
    def photo_url(self) -> str | None:
        """URL of the conversation's picture."""
        return self._attributes.get("photo_url")

    @photo_url.setter
    def photo_url(self, value: str | None) -> None:
        self._attributes["photo_url"] = value

    @property
    def welcome_messages(self) -> list[str] | None:
        """Messages shown at the top of the conversation."""
        return self._attributes.get("welcome_messages")

    @welcome_messages.setter
    def welcome_messages(self, value: list[str] | None) -> None:
        self._attributes["welcome_messages"] = None if value is None else list(value)

    @property
    def custom(self) -> dict[str, str | None] | None:
        """Custom string fields; a key set to ``None`` is removed when synced."""
        return self._attributes.get("custom")

    @custom.setter
    def custom(self, value: Mapping[str, str | None] | None) -> None:
        self._attributes["custom"] = None if value is None else dict(value)

    def set_attributes(
        self,
        *,
        subject: str | None = _UNSET,
        photo_url: str | None = _UNSET,
        welcome_messages: list[str] | None = _UNSET,
        custom: Mapping[str, str | None] | None = _UNSET,
    ) -> None:
        """Set several attributes at once; arguments not passed stay as they are."""
        if subject is not _UNSET:
            self.subject = subject
        if photo_url is not _UNSET:
            self.photo_url = photo_url
        if welcome_messages is not _UNSET:
            self.welcome_messages = welcome_messages
        if custom is not _UNSET:
            self.custom = custom

    def set_participant(
        self,
        user: User | str,
        *,
        access: AccessLevel | str = AccessLevel.READ_WRITE,
        notify: bool = True,
    ) -> None:
        """Add a participant or change their settings.

        A ``User`` with fields besides its id is created when it does not
        exist yet; an existing user's fields are not changed from here.
        A bare id must name an existing user.
        """
        user_id = user.id if isinstance(user, User) else user
        if isinstance(user, User) and user.model_fields_set - {"id"}:
            self._users[user_id] = user
        try:
            self._participants[user_id] = Participation(access=AccessLevel(access), notify=notify)
        except ValueError as exc:
            raise InvalidInput(
                f"invalid access {access!r} for participant {user_id!r}: use 'Read' or 'ReadWrite'"
            ) from exc

    @property
    def participants(self) -> dict[str, Participation]:
        """The participants set on this builder, keyed by user id."""
        return dict(self._participants)

    def snapshot(self) -> tuple[object, ...]:
        """Return a comparable value of everything this builder would write."""
        return (
            self.id,
            tuple(sorted((key, repr(value)) for key, value in self._attributes.items())),
            tuple(
                sorted(
                    (key, value.access, value.notify) for key, value in self._participants.items()
                )
            ),
        )

    async def sync(self) -> Conversation:
        """Write the attributes and participants and return the stored conversation.

        A builder with nothing set only reads the conversation, so participants
        with Read access can open it too. Creating a conversation requires the
        session's user among the participants.
        """
        if not self._attributes and not self._participants:
            return await self._session.get_conversation(self.id)
        attributes = ConversationAttributes(**self._attributes) if self._attributes else None
        return await self._session.sync_conversation(
            self.id, attributes, self._participants, list(self._users.values())
        )

    async def send_message(self, text: str, *, custom: Mapping[str, str] | None = None) -> Message:
        """Sync the conversation, then send ``text`` as the session's user."""
        await self.sync()
        return await self._session.send_message(self.id, text, custom=custom)
