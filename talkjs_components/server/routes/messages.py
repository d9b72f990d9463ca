"""Messages: list, get, send (up to 10 at once), edit and delete."""

from __future__ import annotations

from ...models import MessageOrigin, MessageType
from ...rest.models import (
    MAX_MESSAGES_PER_REQUEST,
    DataPage,
    EmptyBody,
    MessageId,
    MessageIds,
    MessageUpdate,
    NewMessages,
    NewUserMessage,
    RestMessage,
)
from ...service import TRUSTED, MessageDraft
from ..convert import rest_message
from ..errors import ApiError
from ..routing import Operation, PageQuery, RestContext

__all__ = ["OPERATIONS"]


async def list_messages(context: RestContext) -> DataPage[RestMessage]:
    """Return a page of messages, newest first; ``startingAfter`` pages to older ones."""
    query = context.query_as(PageQuery)
    page = await context.service.list_messages(
        TRUSTED,
        context.path["conversationId"],
        limit=query.limit,
        before=query.starting_after,
    )
    return DataPage[RestMessage](data=[rest_message(m) for m in reversed(page.messages)])


async def get_message(context: RestContext) -> RestMessage:
    """Return one message."""
    message = await context.service.get_message(
        TRUSTED, context.path["conversationId"], context.path["messageId"]
    )
    return rest_message(message)


async def send_messages(context: RestContext) -> MessageIds:
    """Send 1 to 10 user and system messages; returns their ids in order."""
    messages = context.body_as(NewMessages).root
    if not 1 <= len(messages) <= MAX_MESSAGES_PER_REQUEST:
        raise ApiError(
            400,
            "invalid_input",
            f"the request body has {len(messages)} messages: send 1 to "
            f"{MAX_MESSAGES_PER_REQUEST} per request",
        )
    drafts = [
        MessageDraft(
            text=message.text,
            sender_id=message.sender if isinstance(message, NewUserMessage) else None,
            type=MessageType(message.type),
            custom=message.custom,
            idempotency_key=message.idempotency_key,
        )
        for message in messages
    ]
    stored = await context.service.send_messages(
        TRUSTED, context.path["conversationId"], drafts, origin=MessageOrigin.REST
    )
    return MessageIds([MessageId(id=message.id) for message in stored])


async def edit_message(context: RestContext) -> EmptyBody:
    """Change a message's text or ``custom``."""
    body = context.body_as(MessageUpdate)
    await context.service.edit_message(
        TRUSTED,
        context.path["conversationId"],
        context.path["messageId"],
        text=body.text,
        custom=body.custom,
    )
    return EmptyBody()


async def delete_message(context: RestContext) -> EmptyBody:
    """Delete a message."""
    await context.service.delete_message(
        TRUSTED, context.path["conversationId"], context.path["messageId"]
    )
    return EmptyBody()


_MESSAGES = "/conversations/{conversationId}/messages"
_MESSAGE = _MESSAGES + "/{messageId}"

OPERATIONS = [
    Operation(
        "GET",
        _MESSAGES,
        list_messages,
        "listMessages",
        "List messages, newest first",
        response=DataPage[RestMessage],
        query=PageQuery,
    ),
    Operation(
        "POST",
        _MESSAGES,
        send_messages,
        "sendMessages",
        "Send 1 to 10 user and system messages",
        response=MessageIds,
        body=NewMessages,
        forbidden=True,
    ),
    Operation("GET", _MESSAGE, get_message, "getMessage", "Get a message", response=RestMessage),
    Operation("PUT", _MESSAGE, edit_message, "editMessage", "Edit a message", body=MessageUpdate),
    Operation("DELETE", _MESSAGE, delete_message, "deleteMessage", "Delete a message"),
]
