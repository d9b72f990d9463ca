"""The REST API v1 over real sockets: uvicorn in this process, called through AsyncTalkJSClient."""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from talkjs_components.auth import App, create_app_token, create_user_token
from talkjs_components.models import (
    AccessLevel,
    ChatEvent,
    ConversationUpdated,
    MessageEdited,
    MessageSent,
    MessagesRead,
)
from talkjs_components.rest import (
    AsyncTalkJSClient,
    ConversationUpdate,
    NewSystemMessage,
    NewUserMessage,
    RestBadRequest,
    RestForbidden,
    RestNotFound,
    RestRateLimited,
    UserUpdate,
)
from talkjs_components.server import RateLimit, ServerConfig, ServerSettings

from .server_process import InProcessServer, serving_in_process
from .waiting import wait_until

APP_ID = "rest-app"
SECRET_KEY = "sk_rest_" + "0123456789abcdef" * 3
OTHER_APP_ID = "other-app"
OTHER_SECRET_KEY = "sk_other_" + "fedcba9876543210" * 3
MAX_BODY_BYTES = 64 * 1024
"""The body limit of the module's server, small enough to exceed cheaply."""


def config_for(tmp_path: Path, settings: ServerSettings | None = None) -> ServerConfig:
    apps = (App(APP_ID, secret_key=SECRET_KEY), App(OTHER_APP_ID, secret_key=OTHER_SECRET_KEY))
    return ServerConfig(apps, tmp_path / "chat.sqlite3", settings or ServerSettings())


@pytest.fixture(scope="module")
async def server(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[InProcessServer]:
    """One server for the module; each test uses its own ids."""
    settings = ServerSettings(
        max_body_bytes=MAX_BODY_BYTES, rate_limit=RateLimit(requests_per_second=1000, burst=10_000)
    )
    async with serving_in_process(config_for(tmp_path_factory.mktemp("rest"), settings)) as running:
        yield running


@pytest.fixture
async def client(server: InProcessServer) -> AsyncIterator[AsyncTalkJSClient]:
    async with AsyncTalkJSClient(APP_ID, SECRET_KEY, base_url=server.base_url) as rest:
        yield rest


@pytest.fixture
async def http(server: InProcessServer) -> AsyncIterator[httpx.AsyncClient]:
    """A plain HTTP client, for requests the REST client would never send."""
    async with httpx.AsyncClient(base_url=server.base_url) as raw:
        yield raw


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def auth(secret_key: str = SECRET_KEY) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret_key}"}


async def make_chat(client: AsyncTalkJSClient, *user_ids: str) -> str:
    """Create the users and a conversation of all of them; return its id."""
    for user_id in user_ids:
        await client.upsert_user(user_id, UserUpdate(name=user_id.title()))
    conversation_id = unique("chat")
    await client.upsert_conversation(
        conversation_id, ConversationUpdate(participants=list(user_ids), subject="Plans")
    )
    return conversation_id


# Health and the document


async def test_health_ok(http: httpx.AsyncClient) -> None:
    response = await http.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_openapi_lists_every_route(http: httpx.AsyncClient, server: InProcessServer) -> None:
    response = await http.get("/openapi.json")
    assert response.status_code == 200
    document = response.json()
    assert document["openapi"] == "3.1.0"
    documented = {
        (path, method.upper()) for path, methods in document["paths"].items() for method in methods
    }
    served = {
        (getattr(route, "path", None), method)
        for route in server.app.routes
        for method in (getattr(route, "methods", None) or ())
        if method != "HEAD"
    }
    assert documented == served


# Users


async def test_put_and_get_user(client: AsyncTalkJSClient) -> None:
    user_id = unique("user")
    await client.upsert_user(
        user_id,
        UserUpdate(name="Alice", email=["a@example.com"], custom={"team": "red", "x": "1"}),
    )
    await client.upsert_user(user_id, UserUpdate(email=None, custom={"x": None}))

    user = await client.get_user(user_id)
    assert user.id == user_id
    assert user.name == "Alice"
    assert user.email is None
    assert user.custom == {"team": "red"}
    assert user.created_at is not None


async def test_get_unknown_user_404(client: AsyncTalkJSClient) -> None:
    with pytest.raises(RestNotFound) as caught:
        await client.get_user(unique("nobody"))
    assert caught.value.status == 404
    assert caught.value.error_code == "not_found"


async def test_user_field_over_limit_400(client: AsyncTalkJSClient) -> None:
    user_id = unique("user")
    with pytest.raises(RestBadRequest) as caught:
        await client.upsert_user(user_id, UserUpdate(name="x" * 1001))
    assert "'name'" in caught.value.reason
    assert "1000" in caught.value.reason
    with pytest.raises(RestNotFound):
        await client.get_user(user_id)


async def test_list_users_pages_by_id(client: AsyncTalkJSClient) -> None:
    prefix = unique("page")
    user_ids = [f"{prefix}-{index}" for index in range(5)]
    await client.upsert_users({user_id: UserUpdate(name=user_id) for user_id in user_ids})

    first = await client.list_users(limit=2, starting_after=f"{prefix}-")
    assert [user.id for user in first] == user_ids[:2]
    second = await client.list_users(limit=2, starting_after=first[-1].id)
    assert [user.id for user in second] == user_ids[2:4]
    every = [user.id async for user in client.iter_users(page_size=2)]
    assert every == sorted(every)
    assert set(user_ids) <= set(every)


async def test_put_users_batch_all_or_nothing(client: AsyncTalkJSClient) -> None:
    good, bad = unique("good"), unique("bad")
    with pytest.raises(RestBadRequest) as caught:
        await client.upsert_users(
            {good: UserUpdate(name="Good"), bad: UserUpdate(photo_url="p" * 2001)}
        )
    assert caught.value.errors is not None
    assert list(caught.value.errors) == [bad]
    assert "photoUrl" in caught.value.errors[bad]
    with pytest.raises(RestNotFound):
        await client.get_user(good)

    await client.upsert_users({good: UserUpdate(name="Good"), bad: UserUpdate(name="Bad")})
    assert (await client.get_user(bad)).name == "Bad"


async def test_put_users_over_limit_400(client: AsyncTalkJSClient) -> None:
    prefix = unique("many")
    users = {f"{prefix}-{index}": UserUpdate(name="N") for index in range(101)}
    with pytest.raises(RestBadRequest) as caught:
        await client.upsert_users(users)
    assert "101 users" in caught.value.reason
    assert "100" in caught.value.reason
    with pytest.raises(RestNotFound):
        await client.get_user(f"{prefix}-0")


async def test_put_users_invalid_id_400(http: httpx.AsyncClient) -> None:
    response = await http.put(
        f"/v1/{APP_ID}/users", json={"bad\u0001id": {"name": "X"}}, headers=auth()
    )
    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["bad\u0001id"]


# Conversations


async def test_put_and_get_conversation(client: AsyncTalkJSClient) -> None:
    alice, bob = unique("alice"), unique("bob")
    conversation_id = await make_chat(client, alice, bob)
    await client.upsert_conversation(
        conversation_id, ConversationUpdate(custom={"topic": "trip"}, photo_url="https://x/p.png")
    )
    [message_id] = await client.send_messages(
        conversation_id, [NewUserMessage(text="Hello", sender=alice)]
    )

    conversation = await client.get_conversation(conversation_id)
    assert conversation.subject == "Plans"
    assert conversation.custom == {"topic": "trip"}
    assert conversation.photo_url == "https://x/p.png"
    assert set(conversation.participants) == {alice, bob}
    assert conversation.participants[bob].access is AccessLevel.READ_WRITE
    assert conversation.participants[bob].notify is True
    assert conversation.last_message is not None
    assert conversation.last_message.id == message_id
    assert conversation.model_extra == {}


async def test_put_conversation_unknown_participant_404(client: AsyncTalkJSClient) -> None:
    conversation_id, ghost = unique("chat"), unique("ghost")
    with pytest.raises(RestNotFound) as caught:
        await client.upsert_conversation(conversation_id, ConversationUpdate(participants=[ghost]))
    assert ghost in caught.value.reason
    with pytest.raises(RestNotFound):
        await client.get_conversation(conversation_id)


async def test_list_conversations_pages_by_id(client: AsyncTalkJSClient) -> None:
    prefix = unique("list")
    for index in range(3):
        await client.upsert_conversation(f"{prefix}-{index}", ConversationUpdate(subject="S"))
    page = await client.list_conversations(limit=2, starting_after=f"{prefix}-")
    assert [conversation.id for conversation in page] == [f"{prefix}-0", f"{prefix}-1"]
    every = [conversation.id async for conversation in client.iter_conversations(page_size=2)]
    assert {f"{prefix}-{index}" for index in range(3)} <= set(every)
    assert every == sorted(every)


async def test_delete_conversation_removes_messages(client: AsyncTalkJSClient) -> None:
    alice = unique("alice")
    conversation_id = await make_chat(client, alice)
    [message_id] = await client.send_messages(
        conversation_id, [NewUserMessage(text="Bye", sender=alice)]
    )
    await client.delete_conversation(conversation_id)

    with pytest.raises(RestNotFound):
        await client.get_conversation(conversation_id)
    with pytest.raises(RestNotFound):
        await client.get_message(conversation_id, message_id)
    with pytest.raises(RestNotFound):
        await client.delete_conversation(conversation_id)
    assert await client.list_user_conversations(alice) == []


async def test_user_conversations_unreads_and_paging(client: AsyncTalkJSClient) -> None:
    alice, bob = unique("alice"), unique("bob")
    older = await make_chat(client, alice, bob)
    newer = await make_chat(client, alice, bob)
    await client.send_messages(older, [NewUserMessage(text="one", sender=bob)])
    await client.send_messages(newer, [NewUserMessage(text="two", sender=bob)])

    conversations = await client.list_user_conversations(alice)
    assert [entry.id for entry in conversations] == [newer, older]
    assert [entry.unread_message_count for entry in conversations] == [1, 1]
    assert all(entry.is_unread for entry in conversations)
    second_page = await client.list_user_conversations(alice, limit=1, starting_after=newer)
    assert [entry.id for entry in second_page] == [older]

    await client.mark_read(newer, alice)
    unread = await client.list_user_conversations(alice, unreads_only=True)
    assert [entry.id for entry in unread] == [older]
    every = [entry.id async for entry in client.iter_user_conversations(alice, page_size=1)]
    assert every == [newer, older]


async def test_user_conversations_bad_cursor_400(client: AsyncTalkJSClient) -> None:
    alice = unique("alice")
    await make_chat(client, alice)
    with pytest.raises(RestBadRequest) as caught:
        await client.list_user_conversations(alice, starting_after="not-hers")
    assert "startingAfter 'not-hers'" in caught.value.reason


async def test_user_conversations_unknown_user_404(client: AsyncTalkJSClient) -> None:
    with pytest.raises(RestNotFound):
        await client.list_user_conversations(unique("nobody"))


# Participants


async def test_participant_put_patch_delete(client: AsyncTalkJSClient) -> None:
    alice, bob, carol = unique("alice"), unique("bob"), unique("carol")
    conversation_id = await make_chat(client, alice, bob)
    await client.upsert_user(carol, UserUpdate(name="Carol"))

    await client.add_participant(conversation_id, carol, access=AccessLevel.READ)
    await client.update_participant(conversation_id, carol, notify=False)
    participants = (await client.get_conversation(conversation_id)).participants
    assert participants[carol].access is AccessLevel.READ
    assert participants[carol].notify is False

    # PUT overwrites: omitted fields go back to the defaults.
    await client.add_participant(conversation_id, carol)
    participants = (await client.get_conversation(conversation_id)).participants
    assert participants[carol].access is AccessLevel.READ_WRITE
    assert participants[carol].notify is True

    await client.update_participant(conversation_id, carol, access="None")
    await client.remove_participant(conversation_id, bob)
    assert set((await client.get_conversation(conversation_id)).participants) == {alice}


async def test_participant_errors(client: AsyncTalkJSClient) -> None:
    alice, carol = unique("alice"), unique("carol")
    conversation_id = await make_chat(client, alice)
    await client.upsert_user(carol, UserUpdate(name="Carol"))

    with pytest.raises(RestNotFound):
        await client.update_participant(conversation_id, carol, notify=False)
    with pytest.raises(RestNotFound):
        await client.remove_participant(conversation_id, carol)
    with pytest.raises(RestNotFound):
        await client.add_participant(unique("missing"), carol)
    with pytest.raises(RestNotFound):
        await client.add_participant(conversation_id, unique("ghost"))
    with pytest.raises(RestBadRequest) as caught:
        await client.add_participant(conversation_id, carol, notify="MentionsOnly")
    assert "MentionsOnly" in caught.value.reason
    assert carol not in (await client.get_conversation(conversation_id)).participants


# Messages


async def test_message_lifecycle(client: AsyncTalkJSClient) -> None:
    alice, bob = unique("alice"), unique("bob")
    conversation_id = await make_chat(client, alice, bob)
    ids = await client.send_messages(
        conversation_id,
        [
            NewUserMessage(text="first", sender=alice, custom={"k": "v"}),
            NewSystemMessage(text="Bob joined"),
        ],
    )
    assert len(ids) == 2

    first = await client.get_message(conversation_id, ids[0])
    assert first.text == "first"
    assert first.sender_id == alice
    assert first.origin == "rest"
    assert first.custom == {"k": "v"}
    system = await client.get_message(conversation_id, ids[1])
    assert system.type.value == "SystemMessage"
    assert system.sender_id is None

    await client.edit_message(conversation_id, ids[0], text="edited", custom={"k": None})
    edited = await client.get_message(conversation_id, ids[0])
    assert edited.text == "edited"
    assert edited.custom == {}
    assert edited.edited_at is not None

    await client.delete_message(conversation_id, ids[1])
    with pytest.raises(RestNotFound):
        await client.get_message(conversation_id, ids[1])
    with pytest.raises(RestNotFound):
        await client.delete_message(conversation_id, ids[1])


async def test_messages_newest_first_paging(client: AsyncTalkJSClient) -> None:
    alice = unique("alice")
    conversation_id = await make_chat(client, alice)
    ids = await client.send_messages(
        conversation_id, [NewUserMessage(text=f"m{index}", sender=alice) for index in range(5)]
    )
    page = await client.list_messages(conversation_id, limit=2)
    assert [message.id for message in page] == [ids[4], ids[3]]
    older = await client.list_messages(conversation_id, limit=2, starting_after=ids[3])
    assert [message.id for message in older] == [ids[2], ids[1]]
    every = [message.id async for message in client.iter_messages(conversation_id, page_size=2)]
    assert every == list(reversed(ids))


async def test_send_with_idempotency_key(client: AsyncTalkJSClient) -> None:
    alice = unique("alice")
    conversation_id = await make_chat(client, alice)
    message = NewUserMessage(text="once", sender=alice, idempotency_key="key-1")
    first = await client.send_messages(conversation_id, [message])
    again = await client.send_messages(conversation_id, [message])
    assert again == first
    assert len(await client.list_messages(conversation_id)) == 1

    with pytest.raises(RestBadRequest) as caught:
        await client.send_messages(
            conversation_id,
            [NewUserMessage(text="different", sender=alice, idempotency_key="key-1")],
        )
    assert caught.value.error_code == "idempotency_key_reused"


async def test_send_by_non_participant_403(client: AsyncTalkJSClient) -> None:
    alice, outsider = unique("alice"), unique("outsider")
    conversation_id = await make_chat(client, alice)
    await client.upsert_user(outsider, UserUpdate(name="Outsider"))
    with pytest.raises(RestForbidden) as caught:
        await client.send_messages(
            conversation_id,
            [
                NewUserMessage(text="fine", sender=alice),
                NewUserMessage(text="not allowed", sender=outsider),
            ],
        )
    assert caught.value.status == 403
    assert caught.value.error_code == "permission_denied"
    assert await client.list_messages(conversation_id) == []


async def test_send_batch_limits_400(client: AsyncTalkJSClient) -> None:
    alice = unique("alice")
    conversation_id = await make_chat(client, alice)
    too_many = [NewUserMessage(text=str(index), sender=alice) for index in range(11)]
    with pytest.raises(RestBadRequest) as caught:
        await client.send_messages(conversation_id, too_many)
    assert "11 messages" in caught.value.reason
    with pytest.raises(RestBadRequest):
        await client.send_messages(conversation_id, [])
    with pytest.raises(RestBadRequest) as empty_text:
        await client.send_messages(
            conversation_id,
            [NewUserMessage(text="ok", sender=alice), NewUserMessage(text="  ", sender=alice)],
        )
    assert "message 2 of 2" in empty_text.value.reason
    assert await client.list_messages(conversation_id) == []


async def test_send_to_unknown_conversation_404(client: AsyncTalkJSClient) -> None:
    with pytest.raises(RestNotFound):
        await client.send_messages(unique("missing"), [NewSystemMessage(text="hello")])


async def test_mark_read_updates_read_by(client: AsyncTalkJSClient) -> None:
    alice, bob = unique("alice"), unique("bob")
    conversation_id = await make_chat(client, alice, bob)
    [message_id] = await client.send_messages(
        conversation_id, [NewUserMessage(text="read me", sender=alice)]
    )
    assert (await client.get_message(conversation_id, message_id)).read_by == []
    await client.mark_read(conversation_id, bob)
    assert (await client.get_message(conversation_id, message_id)).read_by == [bob]


async def test_mark_read_by_non_participant_403(client: AsyncTalkJSClient) -> None:
    alice, outsider = unique("alice"), unique("outsider")
    conversation_id = await make_chat(client, alice)
    await client.upsert_user(outsider, UserUpdate(name="Outsider"))
    with pytest.raises(RestForbidden):
        await client.mark_read(conversation_id, outsider)


# Live delivery


async def test_rest_writes_reach_subscribed_session(
    client: AsyncTalkJSClient, server: InProcessServer
) -> None:
    alice, bob = unique("alice"), unique("bob")
    conversation_id = await make_chat(client, alice, bob)
    hosted = server.host.get(APP_ID)
    assert hosted is not None
    events: list[ChatEvent] = []
    subscription = hosted.service.subscribe(bob, events.append)
    try:
        [message_id] = await client.send_messages(
            conversation_id, [NewUserMessage(text="live", sender=alice)]
        )
        await wait_until(lambda: any(isinstance(e, MessageSent) for e in events), what="sent")
        sent = next(e for e in events if isinstance(e, MessageSent))
        assert sent.message.id == message_id
        assert sent.message.origin.value == "rest"

        await client.edit_message(conversation_id, message_id, text="live, edited")
        await wait_until(lambda: any(isinstance(e, MessageEdited) for e in events), what="edit")

        await client.mark_read(conversation_id, bob)
        await wait_until(lambda: any(isinstance(e, MessagesRead) for e in events), what="read")

        await client.delete_conversation(conversation_id)
        await wait_until(
            lambda: any(
                isinstance(e, ConversationUpdated) and bob in e.removed_user_ids for e in events
            ),
            what="deletion",
        )
    finally:
        subscription.unsubscribe()


async def test_apps_share_database_not_data(
    client: AsyncTalkJSClient, server: InProcessServer
) -> None:
    user_id = unique("shared")
    await client.upsert_user(user_id, UserUpdate(name="In rest-app"))
    async with AsyncTalkJSClient(OTHER_APP_ID, OTHER_SECRET_KEY, base_url=server.base_url) as other:
        with pytest.raises(RestNotFound):
            await other.get_user(user_id)
        await other.upsert_user(user_id, UserUpdate(name="In other-app"))
        assert (await other.get_user(user_id)).name == "In other-app"
    assert (await client.get_user(user_id)).name == "In rest-app"


# Authentication


async def test_missing_credentials_401(http: httpx.AsyncClient) -> None:
    response = await http.get(f"/v1/{APP_ID}/users")
    assert response.status_code == 401
    assert response.json()["errorCode"] == "credentials_missing"


async def test_wrong_key_401_not_echoed(
    http: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    wrong = "sk_wrong_" + "x" * 40
    with caplog.at_level(logging.WARNING, logger="talkjs_components.server"):
        response = await http.get(f"/v1/{APP_ID}/users", headers=auth(wrong))
    assert response.status_code == 401
    assert response.json()["errorCode"] == "credentials_invalid"
    assert wrong not in response.text
    assert wrong not in caplog.text
    assert SECRET_KEY not in caplog.text


async def test_other_apps_key_401(http: httpx.AsyncClient) -> None:
    response = await http.get(f"/v1/{APP_ID}/users", headers=auth(OTHER_SECRET_KEY))
    assert response.status_code == 401


async def test_basic_scheme_401(http: httpx.AsyncClient) -> None:
    response = await http.get(
        f"/v1/{APP_ID}/users", headers={"Authorization": f"Basic {SECRET_KEY}"}
    )
    assert response.status_code == 401
    assert response.json()["errorCode"] == "credentials_malformed"
    assert SECRET_KEY not in response.text


async def test_app_token_accepted(server: InProcessServer) -> None:
    async with AsyncTalkJSClient(
        APP_ID, SECRET_KEY, base_url=server.base_url, use_app_tokens=True
    ) as tokens:
        user_id = unique("token")
        await tokens.upsert_user(user_id, UserUpdate(name="By token"))
        assert (await tokens.get_user(user_id)).name == "By token"


@pytest.mark.parametrize(
    ("token_kind", "error_code"),
    [
        ("other_app", "token_signature"),
        ("no_expiry", "token_expiry_missing"),
        ("too_long", "token_lifetime_too_long"),
        ("expired", "token_expired"),
        ("user_token", "token_type"),
    ],
)
async def test_bad_app_token_401(http: httpx.AsyncClient, token_kind: str, error_code: str) -> None:
    import jwt

    app = App(APP_ID, secret_key=SECRET_KEY)
    tokens = {
        "other_app": create_app_token(App(APP_ID, secret_key=OTHER_SECRET_KEY)),
        "no_expiry": jwt.encode({"tokenType": "app", "iss": APP_ID}, SECRET_KEY, "HS256"),
        "too_long": create_app_token(app, expires_in=7200),
        "expired": create_app_token(app, expires_in=30, now=1_000_000_000),
        "user_token": create_user_token(app, "alice"),
    }
    response = await http.get(f"/v1/{APP_ID}/users", headers=auth(tokens[token_kind]))
    assert response.status_code == 401
    assert response.json()["errorCode"] == error_code
    assert tokens[token_kind] not in response.text


async def test_unknown_app_404(http: httpx.AsyncClient) -> None:
    response = await http.get("/v1/no-such-app/users", headers=auth())
    assert response.status_code == 404
    assert response.json()["errorCode"] == "app_not_found"


# Malformed requests


async def test_invalid_json_400(http: httpx.AsyncClient) -> None:
    response = await http.put(
        f"/v1/{APP_ID}/users/{unique('user')}", content=b"{not json", headers=auth()
    )
    assert response.status_code == 400
    assert response.json()["errorCode"] == "invalid_json"


async def test_deeply_nested_json_400(http: httpx.AsyncClient) -> None:
    body = b"[" * 20_000 + b"]" * 20_000
    response = await http.post(
        f"/v1/{APP_ID}/conversations/x/messages", content=body, headers=auth()
    )
    assert response.status_code == 400


async def test_unknown_field_400_names_it(http: httpx.AsyncClient) -> None:
    response = await http.put(
        f"/v1/{APP_ID}/users/{unique('user')}",
        json={"name": "A", "pushTokens": {"fcm:1": True}},
        headers=auth(),
    )
    assert response.status_code == 400
    assert "'pushTokens'" in response.json()["reason"]


async def test_wrong_type_400_names_value(http: httpx.AsyncClient) -> None:
    response = await http.put(
        f"/v1/{APP_ID}/users/{unique('user')}", json={"name": 12345}, headers=auth()
    )
    assert response.status_code == 400
    reason = response.json()["reason"]
    assert "'name'" in reason
    assert "12345" in reason


async def test_invalid_path_id_400(http: httpx.AsyncClient) -> None:
    response = await http.get(f"/v1/{APP_ID}/users/{'u' * 201}", headers=auth())
    assert response.status_code == 400
    assert "200" in response.json()["reason"]


@pytest.mark.parametrize(
    ("query", "fragment"),
    [
        ("limit=101", "'limit'"),
        ("limit=0", "'limit'"),
        ("limit=ten", "'limit'"),
        ("isOnline=true", "'isOnline'"),
    ],
)
async def test_bad_query_400(http: httpx.AsyncClient, query: str, fragment: str) -> None:
    response = await http.get(f"/v1/{APP_ID}/users?{query}", headers=auth())
    assert response.status_code == 400
    assert fragment in response.json()["reason"]


async def test_query_on_route_without_one_400(http: httpx.AsyncClient) -> None:
    response = await http.get(f"/v1/{APP_ID}/users/someone?limit=5", headers=auth())
    assert response.status_code == 400
    assert "'limit'" in response.json()["reason"]


async def test_unknown_route_404_json(http: httpx.AsyncClient) -> None:
    response = await http.get(f"/v1/{APP_ID}/nothing-here", headers=auth())
    assert response.status_code == 404
    assert response.json()["errorCode"] == "route_not_found"


async def test_wrong_method_405_json(http: httpx.AsyncClient) -> None:
    response = await http.post(f"/v1/{APP_ID}/users", headers=auth())
    assert response.status_code == 405
    assert response.json()["errorCode"] == "method_not_allowed"
    assert "PUT" in response.headers["Allow"]


async def test_declared_body_too_large_413(http: httpx.AsyncClient) -> None:
    body = json.dumps({"name": "x" * MAX_BODY_BYTES}).encode()
    response = await http.put(f"/v1/{APP_ID}/users/big", content=body, headers=auth())
    assert response.status_code == 413
    assert response.json()["errorCode"] == "payload_too_large"
    assert str(MAX_BODY_BYTES) in response.json()["reason"]


async def test_streamed_body_too_large_413(http: httpx.AsyncClient) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"name": "'
        for _ in range(8):
            yield b"x" * (MAX_BODY_BYTES // 4)
        yield b'"}'

    response = await http.put(f"/v1/{APP_ID}/users/big", content=chunks(), headers=auth())
    assert response.status_code == 413
    assert response.json()["errorCode"] == "payload_too_large"


async def test_body_at_limit_accepted(http: httpx.AsyncClient) -> None:
    user_id = unique("fits")
    # custom values have no length limit of their own, so only the body limit applies.
    prefix, suffix = b'{"custom": {"blob": "', b'"}}'
    filler = b"x" * (MAX_BODY_BYTES - len(prefix) - len(suffix))
    response = await http.put(
        f"/v1/{APP_ID}/users/{user_id}", content=prefix + filler + suffix, headers=auth()
    )
    assert response.status_code == 200, response.text


# Rate limit and failures, each on a server of its own


async def test_rate_limit_429_retry_after(tmp_path: Path) -> None:
    settings = ServerSettings(rate_limit=RateLimit(requests_per_second=0.01, burst=2))
    async with serving_in_process(config_for(tmp_path, settings)) as running:
        async with AsyncTalkJSClient(
            APP_ID, SECRET_KEY, base_url=running.base_url, max_retries=0
        ) as rest:
            await rest.list_users()
            await rest.list_users()
            with pytest.raises(RestRateLimited) as caught:
                await rest.list_users()
            assert caught.value.status == 429
            assert caught.value.retry_after == 100
        async with AsyncTalkJSClient(
            OTHER_APP_ID, OTHER_SECRET_KEY, base_url=running.base_url, max_retries=0
        ) as other:
            assert await other.list_users() == []


async def test_client_waits_out_429(tmp_path: Path) -> None:
    settings = ServerSettings(rate_limit=RateLimit(requests_per_second=1, burst=1))
    async with serving_in_process(config_for(tmp_path, settings)) as running:
        async with AsyncTalkJSClient(APP_ID, SECRET_KEY, base_url=running.base_url) as rest:
            await rest.list_users()
            # The bucket is empty: the client reads Retry-After: 1, waits and retries.
            assert await rest.list_users() == []


async def test_client_gives_up_on_long_retry_after(tmp_path: Path) -> None:
    settings = ServerSettings(rate_limit=RateLimit(requests_per_second=0.01, burst=1))
    async with serving_in_process(config_for(tmp_path, settings)) as running:
        async with AsyncTalkJSClient(
            APP_ID, SECRET_KEY, base_url=running.base_url, max_retry_wait=5
        ) as rest:
            await rest.list_users()
            with pytest.raises(RestRateLimited):
                await rest.list_users()


async def test_closed_store_503_and_unhealthy(tmp_path: Path) -> None:
    async with serving_in_process(config_for(tmp_path)) as running:
        hosted = running.host.get(APP_ID)
        assert hosted is not None
        await hosted.service.close()
        async with httpx.AsyncClient(base_url=running.base_url) as raw:
            health = await raw.get("/health")
            assert health.status_code == 503
            response = await raw.get(f"/v1/{APP_ID}/users", headers=auth())
            assert response.status_code == 503
            assert response.json()["errorCode"] == "service_closed"
            assert "error id" in response.json()["reason"]


async def test_concurrent_writes_all_stored(client: AsyncTalkJSClient) -> None:
    alice = unique("alice")
    conversation_id = await make_chat(client, alice)
    await asyncio.gather(
        *(
            client.send_messages(conversation_id, [NewUserMessage(text=str(n), sender=alice)])
            for n in range(20)
        )
    )
    messages = [m async for m in client.iter_messages(conversation_id, page_size=7)]
    assert sorted(int(message.text or "") for message in messages) == list(range(20))
