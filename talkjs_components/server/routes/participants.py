"""Participants: ``PUT``, ``PATCH`` and ``DELETE /conversations/{id}/participants/{userId}``."""

from __future__ import annotations

from ...models import AccessLevel, Participation
from ...rest.models import EmptyBody, Notify, ParticipantJoin, ParticipantUpdate
from ...service import TRUSTED
from ..errors import ApiError
from ..routing import Operation, RestContext

__all__ = ["OPERATIONS"]


def _notify(value: Notify) -> bool:
    if isinstance(value, bool):
        return value
    raise ApiError(
        400,
        "invalid_input",
        f"notify '{value}' is not supported by this server: use true or false",
    )


async def put_participant(context: RestContext) -> EmptyBody:
    """Add a user to a conversation, or overwrite their settings; omitted fields get defaults."""
    body = context.body_as(ParticipantJoin)
    participation = Participation(
        access=body.access if body.access is not None else AccessLevel.READ_WRITE,
        notify=_notify(body.notify) if body.notify is not None else True,
    )
    await context.service.set_participant(
        TRUSTED, context.path["conversationId"], context.path["userId"], participation
    )
    return EmptyBody()


async def patch_participant(context: RestContext) -> EmptyBody:
    """Change a participant's settings; ``access: "None"`` removes them."""
    body = context.body_as(ParticipantUpdate)
    conversation_id, user_id = context.path["conversationId"], context.path["userId"]
    if body.access == "None":
        await context.service.remove_participant(TRUSTED, conversation_id, user_id)
        return EmptyBody()
    # Only the fields given are set, so the others keep their stored values.
    fields: dict[str, object] = {}
    if body.access is not None:
        fields["access"] = AccessLevel(body.access)
    if body.notify is not None:
        fields["notify"] = _notify(body.notify)
    await context.service.set_participant(
        TRUSTED, conversation_id, user_id, Participation.model_validate(fields), existing_only=True
    )
    return EmptyBody()


async def delete_participant(context: RestContext) -> EmptyBody:
    """Remove a participant from a conversation."""
    await context.service.remove_participant(
        TRUSTED, context.path["conversationId"], context.path["userId"]
    )
    return EmptyBody()


_PATH = "/conversations/{conversationId}/participants/{userId}"

OPERATIONS = [
    Operation(
        "PUT",
        _PATH,
        put_participant,
        "putParticipant",
        "Add a participant or overwrite their settings",
        body=ParticipantJoin,
    ),
    Operation(
        "PATCH",
        _PATH,
        patch_participant,
        "patchParticipant",
        "Change a participant's settings, or remove them with access None",
        body=ParticipantUpdate,
    ),
    Operation(
        "DELETE",
        _PATH,
        delete_participant,
        "deleteParticipant",
        "Remove a participant",
    ),
]
