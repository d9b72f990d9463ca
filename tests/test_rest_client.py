"""TalkJSClient, the blocking client, against ``talkjs-components serve`` in a child process."""

from __future__ import annotations

import email.utils
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from talkjs_components.errors import InvalidInput, NotFound, PermissionDenied
from talkjs_components.rest import (
    ConversationUpdate,
    NewSystemMessage,
    NewUserMessage,
    RestNotFound,
    RestServerError,
    RestUnauthorized,
    TalkJSClient,
    UserUpdate,
)
from talkjs_components.rest.errors import error_from_response

from .server_process import ServerProcess, serving_process

APP_ID = "sync-app"
SECRET_KEY = "sk_sync_" + "0123456789abcdef" * 3


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with serving_process(tmp_path_factory.mktemp("sync"), {APP_ID: SECRET_KEY}) as running:
        yield running


@pytest.fixture
def client(server: ServerProcess) -> Iterator[TalkJSClient]:
    with TalkJSClient(APP_ID, SECRET_KEY, base_url=server.base_url) as rest:
        yield rest


def test_round_trip_through_process(client: TalkJSClient) -> None:
    client.upsert_users({"alice": UserUpdate(name="Alice"), "bob": UserUpdate(name="Bob")})
    client.upsert_conversation("plans", ConversationUpdate(participants=["alice", "bob"]))
    ids = client.send_messages(
        "plans",
        [NewSystemMessage(text="Welcome"), NewUserMessage(text="Hi Bob", sender="alice")],
    )
    client.mark_read("plans", "bob")

    messages = client.list_messages("plans")
    assert [message.id for message in messages] == list(reversed(ids))
    assert messages[0].read_by == ["bob"]
    [entry] = client.list_user_conversations("bob")
    assert entry.id == "plans"
    assert entry.unread_message_count == 0
    assert entry.last_message is not None
    assert entry.last_message.text == "Hi Bob"
    assert {user.id for user in client.iter_users(page_size=1)} == {"alice", "bob"}
    assert [c.id for c in client.iter_conversations(page_size=1)] == ["plans"]

    client.edit_message("plans", ids[1], text="Hi Bob!")
    assert client.get_message("plans", ids[1]).text == "Hi Bob!"
    client.add_participant("plans", "alice", notify=False)
    client.update_participant("plans", "alice", access="Read")
    participant = client.get_conversation("plans").participants["alice"]
    assert (participant.access.value, participant.notify) == ("Read", False)
    client.remove_participant("plans", "alice")
    client.delete_message("plans", ids[0])
    assert [m.id for m in client.iter_messages("plans", page_size=1)] == [ids[1]]
    client.delete_conversation("plans")
    assert client.get_user("bob").name == "Bob"


def test_errors_are_package_errors(client: TalkJSClient) -> None:
    with pytest.raises(NotFound) as missing:
        client.get_conversation("no-such-conversation")
    assert isinstance(missing.value, RestNotFound)
    assert missing.value.code == "not_found"

    client.upsert_user("carol", UserUpdate(name="Carol"))
    client.upsert_conversation("quiet", ConversationUpdate(subject="Quiet"))
    with pytest.raises(PermissionDenied):
        client.send_messages("quiet", [NewUserMessage(text="hi", sender="carol")])
    with pytest.raises(InvalidInput) as invalid:
        client.list_users(limit=1000)
    assert "'limit'" in str(invalid.value)


def test_wrong_key_raises_unauthorized(server: ServerProcess) -> None:
    with TalkJSClient(APP_ID, "sk_wrong_" + "0" * 40, base_url=server.base_url) as wrong:
        with pytest.raises(RestUnauthorized) as caught:
            wrong.get_user("alice")
    assert caught.value.status == 401
    assert caught.value.error_code == "credentials_invalid"


def test_app_tokens_through_process(server: ServerProcess) -> None:
    with TalkJSClient(APP_ID, SECRET_KEY, base_url=server.base_url, use_app_tokens=True) as tokens:
        tokens.upsert_user("dave", UserUpdate(name="Dave", custom={"team": "blue"}))
        assert tokens.get_user("dave").custom == {"team": "blue"}


def test_sync_client_waits_out_429(tmp_path: Path) -> None:
    config = "[limits]\nrequests_per_second = 1.0\nburst = 1\n"
    with serving_process(tmp_path, {APP_ID: SECRET_KEY}, config_text=config) as running:
        with TalkJSClient(APP_ID, SECRET_KEY, base_url=running.base_url) as rest:
            rest.list_users()
            # The bucket is empty: the client reads Retry-After: 1, waits and retries.
            assert rest.list_users() == []


def test_client_repr_hides_key() -> None:
    client = TalkJSClient(APP_ID, SECRET_KEY, base_url="http://127.0.0.1:9")
    try:
        assert SECRET_KEY not in repr(client)
        assert APP_ID in repr(client)
    finally:
        client.close()


def test_short_key_rejected_for_app_tokens() -> None:
    with pytest.raises(InvalidInput):
        TalkJSClient(APP_ID, "sk_short", use_app_tokens=True)


# Error responses of other servers


def test_non_json_error_body() -> None:
    response = httpx.Response(502, text="<html>Bad gateway</html>")
    error = error_from_response(response, None)
    assert isinstance(error, RestServerError)
    assert error.error_code == "http_502"
    assert "Bad gateway" in error.reason


def test_error_body_with_per_user_errors() -> None:
    response = httpx.Response(
        400,
        json={"errorCode": "invalid_input", "reason": "bad batch", "errors": {"u1": "no"}},
    )
    error = error_from_response(response, None)
    assert isinstance(error, InvalidInput)
    assert error.errors == {"u1": "no"}
    assert str(error) == "HTTP 400 invalid_input: bad batch"


def test_retry_after_http_date() -> None:
    client = TalkJSClient(APP_ID, SECRET_KEY, base_url="http://127.0.0.1:9", max_retry_wait=60)
    try:
        later = email.utils.formatdate(time.time() + 30, usegmt=True)
        dated = httpx.Response(429, headers={"Retry-After": later})
        wait = client._retry_wait(dated, attempt=0)
        assert wait is not None
        assert 25 <= wait <= 31
        assert client._retry_wait(dated, attempt=client.max_retries) is None
        too_long = httpx.Response(429, headers={"Retry-After": "3600"})
        assert client._retry_wait(too_long, attempt=0) is None
        no_header = httpx.Response(503)
        assert client._retry_wait(no_header, attempt=0) is None
    finally:
        client.close()
