"""The requests of REST API v1 as data, shared by the sync and the async client.

Each function returns a :class:`Request`: method, path under ``/v1/{appId}``,
query parameters, JSON body and how to read the response. The clients only
send it, so both speak the API identically.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar
from urllib.parse import quote

from pydantic import BaseModel

from .models import (
    ConversationUpdate,
    MessageIds,
    MessageUpdate,
    NewSystemMessage,
    NewUserMessage,
    ParticipantJoin,
    ParticipantUpdate,
    RestConversation,
    RestMessage,
    RestUser,
    RestUserConversation,
    UserUpdate,
)

_T = TypeVar("_T")
_M = TypeVar("_M", bound=BaseModel)


@dataclass(frozen=True)
class Request(Generic[_T]):
    """One REST call: what to send and how to read a successful response's JSON."""

    method: str
    path: str
    read: Callable[[Any], _T]
    params: dict[str, str] | None = None
    body: object = None


def quote_segment(value: str) -> str:
    """Percent-encode an id as one path segment; a ``/`` in it becomes ``%2F``."""
    return quote(value, safe="")


def _ignore(body: Any) -> None:
    return None


def _model(model: type[_M]) -> Callable[[Any], _M]:
    return model.model_validate


def _page(model: type[_M]) -> Callable[[Any], list[_M]]:
    def read(body: Any) -> list[_M]:
        if not isinstance(body, dict) or not isinstance(body.get("data"), list):
            raise ValueError('a list response must be an object with a "data" array')
        return [model.model_validate(item) for item in body["data"]]

    return read


def _page_params(limit: int, starting_after: str | None, **extra: str | None) -> dict[str, str]:
    params = {"limit": str(limit)}
    if starting_after is not None:
        params["startingAfter"] = starting_after
    params.update({name: value for name, value in extra.items() if value is not None})
    return params


def put_user(user_id: str, user: UserUpdate) -> Request[None]:
    return Request("PUT", f"/users/{quote_segment(user_id)}", _ignore, body=user.to_wire())


def put_users(users: Mapping[str, UserUpdate]) -> Request[None]:
    body = {user_id: user.to_wire() for user_id, user in users.items()}
    return Request("PUT", "/users", _ignore, body=body)


def get_user(user_id: str) -> Request[RestUser]:
    return Request("GET", f"/users/{quote_segment(user_id)}", _model(RestUser))


def list_users(limit: int, starting_after: str | None) -> Request[list[RestUser]]:
    return Request("GET", "/users", _page(RestUser), _page_params(limit, starting_after))


def list_user_conversations(
    user_id: str, limit: int, starting_after: str | None, unreads_only: bool
) -> Request[list[RestUserConversation]]:
    params = _page_params(limit, starting_after, unreadsOnly="true" if unreads_only else None)
    path = f"/users/{quote_segment(user_id)}/conversations"
    return Request("GET", path, _page(RestUserConversation), params)


def put_conversation(conversation_id: str, conversation: ConversationUpdate) -> Request[None]:
    path = f"/conversations/{quote_segment(conversation_id)}"
    return Request("PUT", path, _ignore, body=conversation.to_wire())


def get_conversation(conversation_id: str) -> Request[RestConversation]:
    path = f"/conversations/{quote_segment(conversation_id)}"
    return Request("GET", path, _model(RestConversation))


def list_conversations(limit: int, starting_after: str | None) -> Request[list[RestConversation]]:
    params = _page_params(limit, starting_after)
    return Request("GET", "/conversations", _page(RestConversation), params)


def delete_conversation(conversation_id: str) -> Request[None]:
    return Request("DELETE", f"/conversations/{quote_segment(conversation_id)}", _ignore)


def mark_read(conversation_id: str, user_id: str) -> Request[None]:
    path = f"/conversations/{quote_segment(conversation_id)}/readBy/{quote_segment(user_id)}"
    return Request("POST", path, _ignore)


def _participant_path(conversation_id: str, user_id: str) -> str:
    return f"/conversations/{quote_segment(conversation_id)}/participants/{quote_segment(user_id)}"


def put_participant(
    conversation_id: str, user_id: str, participant: ParticipantJoin
) -> Request[None]:
    path = _participant_path(conversation_id, user_id)
    return Request("PUT", path, _ignore, body=participant.to_wire())


def patch_participant(
    conversation_id: str, user_id: str, participant: ParticipantUpdate
) -> Request[None]:
    path = _participant_path(conversation_id, user_id)
    return Request("PATCH", path, _ignore, body=participant.to_wire())


def delete_participant(conversation_id: str, user_id: str) -> Request[None]:
    return Request("DELETE", _participant_path(conversation_id, user_id), _ignore)


def _messages_path(conversation_id: str) -> str:
    return f"/conversations/{quote_segment(conversation_id)}/messages"


def list_messages(
    conversation_id: str, limit: int, starting_after: str | None
) -> Request[list[RestMessage]]:
    params = _page_params(limit, starting_after)
    return Request("GET", _messages_path(conversation_id), _page(RestMessage), params)


def get_message(conversation_id: str, message_id: str) -> Request[RestMessage]:
    path = f"{_messages_path(conversation_id)}/{quote_segment(message_id)}"
    return Request("GET", path, _model(RestMessage))


def post_messages(
    conversation_id: str, messages: Sequence[NewUserMessage | NewSystemMessage]
) -> Request[list[str]]:
    def read(body: Any) -> list[str]:
        # TalkJS's hosted API may respond with {} and no ids.
        if isinstance(body, dict):
            return []
        return [entry.id for entry in MessageIds.model_validate(body).root]

    body = [message.to_wire() for message in messages]
    return Request("POST", _messages_path(conversation_id), read, body=body)


def put_message(conversation_id: str, message_id: str, update: MessageUpdate) -> Request[None]:
    path = f"{_messages_path(conversation_id)}/{quote_segment(message_id)}"
    return Request("PUT", path, _ignore, body=update.to_wire())


def delete_message(conversation_id: str, message_id: str) -> Request[None]:
    path = f"{_messages_path(conversation_id)}/{quote_segment(message_id)}"
    return Request("DELETE", path, _ignore)
