"""The Session component's full contract, rendered in a ReactPy Layout.

The tests that connect run twice (the ``any_backend`` fixture): on the
embedded backend, and on a chat server on 127.0.0.1 through the websocket
transport.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Callable
from typing import Any

import pytest
from reactpy import Ref, component, html, use_state
from reactpy.types import VdomDict

from talkjs_components import Chatbox, Session, TalkSession, use_session
from talkjs_components.auth import create_user_token
from talkjs_components.components.session_props import SESSION_EVENTS, normalize_session_props
from talkjs_components.errors import InvalidInput
from talkjs_components.models import User
from talkjs_components.service import TRUSTED
from talkjs_components.session import SessionMessage

from .layout_tools import LayoutRunner
from .remote_backend import ChatBackend
from .waiting import wait_until


@pytest.fixture
def backend(any_backend: ChatBackend) -> ChatBackend:
    """The backend of each run: embedded, then a chat server."""
    return any_backend


@component
def ShowUser() -> VdomDict:
    session = use_session()
    return html.p(f"user={session.me.id if session else 'none'}")


def test_camel_case_aliases_normalized() -> None:
    def handler(message: object) -> None:
        return None

    props = normalize_session_props(
        {
            "appId": "app",
            "userId": "alice",
            "tokenFetcher": handler,
            "sessionRef": Ref(None),
            "desktopNotificationsEnabled": True,
            "onMessage": handler,
            "onUnreadsChange": handler,
            "onBrowserPermissionNeeded": handler,
        }
    )
    assert sorted(props) == [
        "app_id",
        "desktop_notification_enabled",
        "on_browser_permission_needed",
        "on_message",
        "on_unreads_change",
        "session_ref",
        "token_fetcher",
        "user_id",
    ]


def test_unknown_event_lists_valid_events() -> None:
    with pytest.raises(InvalidInput) as caught:
        normalize_session_props({"app_id": "app", "onMesage": print})
    assert "'onMesage'" in caught.value.message
    for event in SESSION_EVENTS:
        assert event in caught.value.message


def test_unknown_prop_lists_valid_props() -> None:
    with pytest.raises(InvalidInput) as caught:
        normalize_session_props({"app_id": "app", "user": "alice"})
    assert "'user'" in caught.value.message
    assert "user_id" in caught.value.message


def test_prop_given_twice_rejected() -> None:
    with pytest.raises(InvalidInput) as caught:
        normalize_session_props({"app_id": "one", "appId": "two"})
    assert "'app_id'" in caught.value.message
    assert "'appId'" in caught.value.message


def test_event_prop_must_be_callable() -> None:
    with pytest.raises(InvalidInput, match="on_message"):
        normalize_session_props({"on_message": "print"})


@pytest.mark.parametrize(
    ("props", "fragment"),
    [
        ({"token": 12345}, "'token' must be a string, the user token, got int"),
        ({"tokenFetcher": "sk_not_a_function"}, "'tokenFetcher' must be a function"),
        ({"signature": b"abc"}, "'signature' must be a string, the signature, got bytes"),
        ({"session_ref": 5}, "'session_ref' must be a reactpy.Ref"),
        ({"desktopNotificationEnabled": "yes"}, "must be True or False, got str"),
    ],
)
def test_wrong_kind_props_rejected(props: dict[str, Any], fragment: str) -> None:
    # They used to pass and fail later, in an effect or at the first token refresh.
    with pytest.raises(InvalidInput) as caught:
        normalize_session_props({"app_id": "app", "user_id": "alice", **props})

    assert fragment in caught.value.message
    assert "sk_not_a_function" not in caught.value.message


async def test_camel_case_session_works(backend: ChatBackend) -> None:
    received: list[SessionMessage] = []
    token = create_user_token(backend.app, "alice")
    root = Session(
        ShowUser(), appId=backend.app.app_id, userId="alice", token=token, onMessage=received.append
    )
    async with LayoutRunner(root) as runner:
        await runner.until(lambda r: "user=alice" in r.text)
        await backend.service.send_message(TRUSTED, "group", "camel", sender_id="bob")
        await wait_until(lambda: bool(received), what="onMessage")
    assert received[0].body == "camel"


async def test_new_token_keeps_session(backend: ChatBackend) -> None:
    ref: Ref[TalkSession | None] = Ref(None)
    controls: dict[str, Callable[[str], None]] = {}
    first = create_user_token(backend.app, "alice", expires_in=3600)

    @component
    def Root() -> Any:
        token, set_token = use_state(first)
        controls["token"] = set_token
        return Session(
            ShowUser(), app_id=backend.app.app_id, user_id="alice", token=token, session_ref=ref
        )

    async with LayoutRunner(Root()) as runner:
        await runner.until(lambda r: "user=alice" in r.text)
        session = ref.current
        assert session is not None
        controls["token"](create_user_token(backend.app, "bob"))
        await runner.render()
        # The new token reached the live session: it is checked and found wrong.
        for _ in range(100):
            if not await session.has_valid_credentials():
                break
            await asyncio.sleep(0.01)
        assert not await session.has_valid_credentials()
        assert ref.current is session
        assert session.is_alive


async def test_sync_user_changes_written(backend: ChatBackend) -> None:
    ref: Ref[TalkSession | None] = Ref(None)
    controls: dict[str, Callable[[User], None]] = {}
    token = create_user_token(backend.app, "alice")

    @component
    def Root() -> Any:
        me, set_me = use_state(User(id="alice", name="Alice", locale="en-US"))
        controls["me"] = set_me
        # A new function object on every render must not recreate the session.
        return Session(
            ShowUser(),
            app_id=backend.app.app_id,
            sync_user=lambda: me,
            token=token,
            session_ref=ref,
        )

    async with LayoutRunner(Root()) as runner:
        await runner.until(lambda r: "user=alice" in r.text)
        session = ref.current
        controls["me"](User(id="alice", name="Alice Liddell", locale=None))
        await runner.render()
        for _ in range(200):
            if (await backend.service.get_user("alice")).name == "Alice Liddell":
                break
            await asyncio.sleep(0.01)
        stored = await backend.service.get_user("alice")
        assert stored.name == "Alice Liddell"
        assert stored.locale is None
        assert ref.current is session


async def test_chatbox_registered_with_session(backend: ChatBackend) -> None:
    ref: Ref[TalkSession | None] = Ref(None)
    controls: dict[str, Callable[[bool], None]] = {}
    token = create_user_token(backend.app, "alice")

    @component
    def Root() -> Any:
        shown, set_shown = use_state(True)
        controls["shown"] = set_shown
        box = Chatbox(conversation_id="group") if shown else html.p("no chatbox")
        return Session(
            box, app_id=backend.app.app_id, user_id="alice", token=token, session_ref=ref
        )

    async with LayoutRunner(Root()) as runner:
        await runner.until(lambda r: ref.current is not None and bool(ref.current.get_chatboxes()))
        session = ref.current
        assert session is not None
        chatbox = session.get_chatboxes()[0]
        await runner.until(lambda r: chatbox.current_conversation_id == "group")
        assert session.get_inboxes() == []
        assert session.get_popups() == []

        controls["shown"](False)
        await runner.until(lambda r: "no chatbox" in r.text and session.get_chatboxes() == [])
        assert not chatbox.is_alive


def _live_sessions() -> list[TalkSession]:
    gc.collect()
    return [item for item in gc.get_objects() if isinstance(item, TalkSession) and item.is_alive]


def _session_tasks() -> list[asyncio.Task[Any]]:
    """Return the unfinished tasks of sessions and of their websocket transports."""
    return [
        task
        for task in asyncio.all_tasks()
        if task.get_name().startswith(("talkjs-session-", "talkjs-websocket-")) and not task.done()
    ]


async def test_rapid_mount_unmount_leaks_nothing(backend: ChatBackend) -> None:
    """200 mount and unmount cycles leave no live session, task or subscription behind."""
    controls: dict[str, Callable[[bool], None]] = {}
    token = create_user_token(backend.app, "alice")

    @component
    def Root() -> Any:
        shown, set_shown = use_state(False)
        controls["shown"] = set_shown
        if not shown:
            return html.p("off")
        return Session(
            Chatbox(conversation_id="group"),
            ShowUser(),
            app_id=backend.app.app_id,
            user_id="alice",
            token=token,
            on_message=lambda message: None,
        )

    assert _live_sessions() == []
    async with LayoutRunner(Root()) as runner:
        for cycle in range(200):
            controls["shown"](True)
            await runner.render()
            if cycle % 50 == 0:
                # Now and then let a session connect fully before unmounting it.
                await runner.until(lambda r: "user=alice" in r.text)
            controls["shown"](False)
            await runner.until(lambda r: r.text == "off")
        await wait_until(lambda: not _session_tasks(), what="session tasks to end")
        await wait_until(lambda: backend.service.listener_count() == 0, what="unsubscribing")
        assert _live_sessions() == []


async def test_invalid_props_shown_not_logged_with_token(
    backend: ChatBackend, caplog: pytest.LogCaptureFixture
) -> None:
    token = create_user_token(backend.app, "alice")
    root = Session(Chatbox(conversation_id="group"), app_id=backend.app.app_id, token=token)
    async with LayoutRunner(root) as runner:
        await runner.until(lambda r: "exactly one of user_id" in r.text)
        assert "Could not connect to chat" in runner.text
    assert caplog.records, "the invalid props are logged"
    assert all(token not in record.getMessage() for record in caplog.records)
