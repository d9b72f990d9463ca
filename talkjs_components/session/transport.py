"""Transports: the connection between a TalkSession and the chat service.

A transport performs chat operations on behalf of one authenticated user and
delivers that user's events. :class:`InProcessTransport` calls the embedded
ChatService directly; a remote transport speaks the realtime protocol to a
standalone server. Sessions only use the :class:`Transport` interface, whose
operations take plain values and return models, so that each one maps to one
request and one response on a websocket.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from .. import embedded
from ..auth import authenticate
from ..errors import AuthError, ChatError, NotFound, PermissionDenied
from ..models import (
    ChatEvent,
    Conversation,
    ConversationAttributes,
    EventsPage,
    Message,
    MessagesPage,
    Participation,
    UnreadsSnapshot,
    User,
)
from ..service import ChatService
from ..subscription import Subscription

__all__ = ["Credentials", "InProcessTransport", "Transport"]


@dataclass(frozen=True, repr=False)
class Credentials:
    """Credentials a session presents to authenticate its user; never logged."""

    token: str | None = None
    signature: str | None = None

    def __repr__(self) -> str:
        present = [name for name in ("token", "signature") if getattr(self, name)]
        return f"Credentials(present={present})"


class Transport(Protocol):
    """Chat operations of one authenticated user."""

    async def connect(
        self,
        app_id: str,
        me: User,
        credentials: Credentials,
        on_event: Callable[[ChatEvent], None],
        *,
        sync_me: bool,
        on_disconnect: Callable[[ChatError], None] | None = None,
    ) -> User:
        """Authenticate and start delivering events; return the stored user.

        With ``sync_me``, ``me``'s set fields are written to the backend first.
        Events are delivered in ``seq`` order, and a stored event may arrive
        twice (live and by ``events_after``), so a receiver drops a ``seq`` it
        has handled. ``on_disconnect`` is called once when the connection is
        lost; the session then connects again with this method, which ends
        the previous connection's delivery.
        """

    async def close(self) -> None:
        """Stop delivering events and release the connection."""

    async def reauthenticate(self, credentials: Credentials) -> None:
        """Present new credentials for the connected user; raise ``AuthError`` if rejected."""

    async def sync_user(self, user: User) -> User:
        """Write the set fields of the connected user and return the stored user."""

    async def get_users(self, user_ids: list[str]) -> dict[str, User]:
        """Return the known users among ``user_ids``."""

    async def sync_conversation(
        self,
        conversation_id: str,
        attributes: ConversationAttributes | None,
        participants: Mapping[str, Participation] | None,
        new_users: Sequence[User] = (),
    ) -> Conversation:
        """Create or update a conversation; create the missing users of ``new_users`` first."""

    async def get_conversation(self, conversation_id: str) -> Conversation:
        """Return a conversation the user participates in."""

    async def list_conversations(self) -> list[Conversation]:
        """Return the user's conversations, most recent activity first."""

    async def send_message(
        self,
        conversation_id: str,
        text: str,
        *,
        custom: Mapping[str, str] | None,
        idempotency_key: str | None,
    ) -> Message:
        """Send a message as the user."""

    async def list_messages(
        self, conversation_id: str, *, limit: int, before: str | None
    ) -> MessagesPage:
        """Return a page of messages, oldest first."""

    async def mark_read(self, conversation_id: str, message_id: str | None) -> None:
        """Mark the conversation read up to ``message_id`` (default: the newest)."""

    async def edit_message(
        self,
        conversation_id: str,
        message_id: str,
        *,
        text: str | None,
        custom: Mapping[str, str | None] | None,
    ) -> Message:
        """Edit one of the user's own messages."""

    async def delete_message(self, conversation_id: str, message_id: str) -> None:
        """Delete one of the user's own messages."""

    async def set_typing(self, conversation_id: str, typing: bool) -> None:
        """Tell the conversation's participants whether the user is typing."""

    async def leave_conversation(self, conversation_id: str) -> None:
        """Remove the user from a conversation."""

    async def online_users(self, user_ids: list[str]) -> list[str]:
        """Return those of ``user_ids`` who are online."""

    async def get_unreads_snapshot(self) -> UnreadsSnapshot:
        """Return the user's unreads with the event ``seq`` they are consistent with."""

    async def events_after(self, after_seq: int, *, limit: int) -> EventsPage:
        """Return up to ``limit`` of the user's stored events after ``after_seq``, oldest first.

        Raises:
            ChatError: code ``resume_gap`` when the backend no longer stores
                every event after ``after_seq``; reload instead of replaying.
        """


class InProcessTransport:
    """Transport to the embedded ChatService of this process."""

    def __init__(self) -> None:
        self._service: ChatService | None = None
        self._user_id: str | None = None
        self._subscription: Subscription | None = None
        self._connected_once = False

    @property
    def _bound(self) -> tuple[ChatService, str]:
        if self._service is None or self._user_id is None:
            raise RuntimeError("the transport is not connected; call connect() first")
        return self._service, self._user_id

    async def connect(
        self,
        app_id: str,
        me: User,
        credentials: Credentials,
        on_event: Callable[[ChatEvent], None],
        *,
        sync_me: bool,
        on_disconnect: Callable[[ChatError], None] | None = None,
    ) -> User:
        # Only the first connect may start the embedded backend. A reconnect
        # waits for the app to start it again, so a shutdown stays a shutdown.
        if self._connected_once:
            backend = embedded.running_backend(app_id)
        else:
            backend = await embedded.get_backend(app_id)
        # NOTE: unlike the realtime endpoint, this connection does not end when
        # its token expires: the token is checked at connect and reauthenticate only.
        authenticate(backend.app, me.id, token=credentials.token, signature=credentials.signature)
        service = backend.service
        if sync_me:
            stored = await service.upsert_user(me)
        else:
            try:
                stored = await service.get_user(me.id)
            except NotFound as exc:
                raise AuthError(
                    f"user {me.id!r} does not exist in app {app_id!r}: pass sync_user=User(...) "
                    "to create it, or create it on the server first",
                    code="user_not_found",
                ) from exc
        if self._subscription is not None:
            # A connect after a failed resume replaces the earlier subscription,
            # so no event is delivered twice by two subscriptions.
            self._subscription.unsubscribe()
            self._subscription = None
        self._service, self._user_id = service, me.id
        self._connected_once = True

        def closed() -> None:
            self._subscription = None
            if on_disconnect is not None:
                on_disconnect(
                    ChatError(
                        f"the embedded chat backend of app {app_id!r} closed",
                        code="connection_lost",
                    )
                )

        self._subscription = service.subscribe(me.id, on_event, on_close=closed, presence=True)
        return stored

    async def reauthenticate(self, credentials: Credentials) -> None:
        service, user_id = self._bound
        backend = await embedded.get_backend(service.app_id)
        authenticate(backend.app, user_id, token=credentials.token, signature=credentials.signature)

    async def sync_user(self, user: User) -> User:
        service, user_id = self._bound
        if user.id != user_id:
            raise PermissionDenied(f"session of user {user_id!r} cannot update user {user.id!r}")
        return await service.upsert_user(user)

    async def close(self) -> None:
        if self._subscription is not None:
            self._subscription.unsubscribe()
            self._subscription = None
        self._service = None

    async def get_users(self, user_ids: list[str]) -> dict[str, User]:
        service, user_id = self._bound
        return await service.get_users(user_ids, actor=user_id)

    async def sync_conversation(
        self,
        conversation_id: str,
        attributes: ConversationAttributes | None,
        participants: Mapping[str, Participation] | None,
        new_users: Sequence[User] = (),
    ) -> Conversation:
        service, user_id = self._bound
        return await service.sync_conversation(
            user_id, conversation_id, attributes, participants, new_users
        )

    async def get_conversation(self, conversation_id: str) -> Conversation:
        service, user_id = self._bound
        return await service.get_conversation(user_id, conversation_id)

    async def list_conversations(self) -> list[Conversation]:
        service, user_id = self._bound
        return await service.list_conversations(user_id)

    async def send_message(
        self,
        conversation_id: str,
        text: str,
        *,
        custom: Mapping[str, str] | None,
        idempotency_key: str | None,
    ) -> Message:
        service, user_id = self._bound
        return await service.send_message(
            user_id, conversation_id, text, custom=custom, idempotency_key=idempotency_key
        )

    async def list_messages(
        self, conversation_id: str, *, limit: int, before: str | None
    ) -> MessagesPage:
        service, user_id = self._bound
        return await service.list_messages(user_id, conversation_id, limit=limit, before=before)

    async def mark_read(self, conversation_id: str, message_id: str | None) -> None:
        service, user_id = self._bound
        await service.mark_read(user_id, conversation_id, message_id)

    async def edit_message(
        self,
        conversation_id: str,
        message_id: str,
        *,
        text: str | None,
        custom: Mapping[str, str | None] | None,
    ) -> Message:
        service, user_id = self._bound
        return await service.edit_message(
            user_id, conversation_id, message_id, text=text, custom=custom
        )

    async def delete_message(self, conversation_id: str, message_id: str) -> None:
        service, user_id = self._bound
        await service.delete_message(user_id, conversation_id, message_id)

    async def set_typing(self, conversation_id: str, typing: bool) -> None:
        service, user_id = self._bound
        await service.set_typing(user_id, conversation_id, typing)

    async def leave_conversation(self, conversation_id: str) -> None:
        service, user_id = self._bound
        await service.remove_participant(user_id, conversation_id, user_id)

    async def online_users(self, user_ids: list[str]) -> list[str]:
        service, _ = self._bound
        return await service.online_users(user_ids)

    async def get_unreads_snapshot(self) -> UnreadsSnapshot:
        service, user_id = self._bound
        return await service.get_unreads_snapshot(user_id)

    async def events_after(self, after_seq: int, *, limit: int) -> EventsPage:
        service, user_id = self._bound
        return await service.events_after(user_id, after_seq, limit=limit)
