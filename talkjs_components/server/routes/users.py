"""Users: ``PUT``/``GET /users/{userId}``, ``PUT``/``GET /users``, a user's conversations."""

from __future__ import annotations

from ...models import User
from ...rest.models import (
    MAX_USERS_PER_REQUEST,
    DataPage,
    EmptyBody,
    RestUser,
    RestUserConversation,
    UserBatch,
    UserUpdate,
)
from ..convert import rest_user, rest_user_conversation
from ..errors import ApiError
from ..routing import Operation, PageQuery, RestContext, UserConversationsQuery, domain_model

__all__ = ["OPERATIONS"]


async def put_user(context: RestContext) -> EmptyBody:
    """Create or update a user; fields not sent are kept, ``null`` deletes."""
    body = context.body_as(UserUpdate)
    user = domain_model(User, {"id": context.path["userId"], **body.to_wire()})
    await context.service.upsert_user(user)
    return EmptyBody()


async def put_users(context: RestContext) -> EmptyBody:
    """Create or update up to 100 users, all or none."""
    batch = context.body_as(UserBatch).root
    if len(batch) > MAX_USERS_PER_REQUEST:
        raise ApiError(
            400,
            "invalid_input",
            f"the request body has {len(batch)} users, over the limit of "
            f"{MAX_USERS_PER_REQUEST}: split it into several requests",
        )
    users: list[User] = []
    errors: dict[str, str] = {}
    for user_id, fields in batch.items():
        try:
            users.append(domain_model(User, {"id": user_id, **fields.to_wire()}))
        except ApiError as exc:
            errors[user_id] = exc.reason
    if errors:
        raise ApiError(
            400,
            "invalid_input",
            f"{len(errors)} of {len(batch)} users are invalid, so none was stored; "
            f"user '{next(iter(errors))}': {next(iter(errors.values()))}",
            errors=errors,
        )
    await context.service.upsert_users(users)
    return EmptyBody()


async def get_user(context: RestContext) -> RestUser:
    """Return one user."""
    return rest_user(await context.service.get_user(context.path["userId"]))


async def list_users(context: RestContext) -> DataPage[RestUser]:
    """Return a page of users ordered by id."""
    query = context.query_as(PageQuery)
    users = await context.service.list_users(limit=query.limit, starting_after=query.starting_after)
    return DataPage[RestUser](data=[rest_user(user) for user in users])


async def list_user_conversations(context: RestContext) -> DataPage[RestUserConversation]:
    """Return a page of a user's conversations, most recent activity first."""
    query = context.query_as(UserConversationsQuery)
    user_id = context.path["userId"]
    # Unknown users get 404 rather than an empty page.
    await context.service.get_user(user_id)
    entries = await context.service.list_user_conversations(
        user_id,
        limit=query.limit,
        starting_after=query.starting_after,
        unreads_only=query.unreads_only,
    )
    return DataPage[RestUserConversation](data=[rest_user_conversation(e) for e in entries])


OPERATIONS = [
    Operation(
        "PUT",
        "/users/{userId}",
        put_user,
        "putUser",
        "Create or update a user",
        body=UserUpdate,
    ),
    Operation(
        "PUT",
        "/users",
        put_users,
        "putUsers",
        "Create or update up to 100 users, all or none",
        body=UserBatch,
        body_errors_by_key=True,
    ),
    Operation("GET", "/users/{userId}", get_user, "getUser", "Get a user", response=RestUser),
    Operation(
        "GET",
        "/users",
        list_users,
        "listUsers",
        "List users ordered by id",
        response=DataPage[RestUser],
        query=PageQuery,
    ),
    Operation(
        "GET",
        "/users/{userId}/conversations",
        list_user_conversations,
        "listUserConversations",
        "List a user's conversations, most recent activity first",
        response=DataPage[RestUserConversation],
        query=UserConversationsQuery,
    ),
]
