"""Conversations: ``PUT``/``GET``/``DELETE /conversations/{conversationId}``,
``GET /conversations`` and ``POST .../readBy/{userId}``."""

from __future__ import annotations

from ...models import ConversationAttributes, Participation
from ...rest.models import ConversationUpdate, DataPage, EmptyBody, RestConversation
from ...service import TRUSTED
from ..convert import rest_conversation
from ..routing import Operation, PageQuery, RestContext, domain_model

__all__ = ["OPERATIONS"]


async def put_conversation(context: RestContext) -> EmptyBody:
    """Create or update a conversation and add participants, removing none."""
    body = context.body_as(ConversationUpdate)
    fields = body.to_wire()
    participant_ids = fields.pop("participants", None)
    attributes = domain_model(ConversationAttributes, fields)
    participants = None
    if isinstance(participant_ids, list):
        # Unset fields keep an existing participant's settings; new ones get the defaults.
        participants = {str(user_id): Participation() for user_id in participant_ids}
    await context.service.sync_conversation(
        TRUSTED, context.path["conversationId"], attributes, participants
    )
    return EmptyBody()


async def get_conversation(context: RestContext) -> RestConversation:
    """Return a conversation with its participants and latest message."""
    conversation_id = context.path["conversationId"]
    conversation = await context.service.get_conversation(TRUSTED, conversation_id)
    latest = await context.service.list_messages(TRUSTED, conversation_id, limit=1)
    return rest_conversation(conversation, latest.messages[-1] if latest.messages else None)


async def list_conversations(context: RestContext) -> DataPage[RestConversation]:
    """Return a page of the app's conversations ordered by id."""
    query = context.query_as(PageQuery)
    entries = await context.service.list_all_conversations(
        limit=query.limit, starting_after=query.starting_after
    )
    return DataPage[RestConversation](
        data=[rest_conversation(entry.conversation, entry.last_message) for entry in entries]
    )


async def delete_conversation(context: RestContext) -> EmptyBody:
    """Delete a conversation with its messages."""
    await context.service.delete_conversation(TRUSTED, context.path["conversationId"])
    return EmptyBody()


async def mark_read(context: RestContext) -> EmptyBody:
    """Mark the conversation read up to its latest message for one participant."""
    await context.service.mark_read(context.path["userId"], context.path["conversationId"])
    return EmptyBody()


OPERATIONS = [
    Operation(
        "PUT",
        "/conversations/{conversationId}",
        put_conversation,
        "putConversation",
        "Create or update a conversation and add participants",
        body=ConversationUpdate,
    ),
    Operation(
        "GET",
        "/conversations/{conversationId}",
        get_conversation,
        "getConversation",
        "Get a conversation",
        response=RestConversation,
    ),
    Operation(
        "GET",
        "/conversations",
        list_conversations,
        "listConversations",
        "List conversations ordered by id",
        response=DataPage[RestConversation],
        query=PageQuery,
    ),
    Operation(
        "DELETE",
        "/conversations/{conversationId}",
        delete_conversation,
        "deleteConversation",
        "Delete a conversation with its messages",
    ),
    Operation(
        "POST",
        "/conversations/{conversationId}/readBy/{userId}",
        mark_read,
        "markConversationRead",
        "Mark a conversation read for a participant",
        forbidden=True,
    ),
]
