"""Desktop notification decisions of a session, without a browser."""

from __future__ import annotations

import pytest

from talkjs_components.auth import create_user_token
from talkjs_components.embedded import EmbeddedBackend
from talkjs_components.errors import ChatError
from talkjs_components.models import MessageType, Participation
from talkjs_components.service import TRUSTED
from talkjs_components.session import (
    BoxKind,
    BrowserPermissionDeniedEvent,
    BrowserPermissionNeededEvent,
    DesktopNotificationClickedEvent,
    NotificationPermission,
    TalkSession,
    UIBox,
)

from .waiting import wait_until


async def _ready_session(backend: EmbeddedBackend) -> TalkSession:
    session = TalkSession(
        backend.app.app_id, "alice", token=create_user_token(backend.app, "alice")
    )
    await session.wait_ready()
    session.desktop_notifications.report_permission("granted")
    session.set_desktop_notification_enabled(True)
    return session


async def test_notification_for_others_message(backend: EmbeddedBackend) -> None:
    session = await _ready_session(backend)
    await backend.service.send_message(TRUSTED, "group", "hello " * 60, sender_id="bob")
    await wait_until(lambda: session.desktop_notifications.latest is not None)
    latest = session.desktop_notifications.latest
    assert latest is not None
    assert latest.title == "Bob"
    assert latest.conversation_id == "group"
    assert latest.body.endswith("…")
    assert len(latest.body) == 201
    assert latest.conversation_shown is False
    session.destroy()


async def test_shown_conversation_is_marked(backend: EmbeddedBackend) -> None:
    session = await _ready_session(backend)
    chatbox = UIBox(session, BoxKind.CHATBOX)
    chatbox.current_conversation_id = "group"
    await backend.service.send_message(TRUSTED, "group", "seen", sender_id="bob")
    await wait_until(lambda: session.desktop_notifications.latest is not None)
    latest = session.desktop_notifications.latest
    assert latest is not None
    assert latest.conversation_shown is True
    session.destroy()


async def test_no_notification_for_own_system_or_muted(backend: EmbeddedBackend) -> None:
    session = await _ready_session(backend)
    await backend.service.sync_conversation(
        TRUSTED,
        "muted",
        participants={"alice": Participation(notify=False), "bob": Participation()},
    )
    await session.send_message("group", "my own")
    await backend.service.send_message(TRUSTED, "group", "system", type=MessageType.SYSTEM)
    await backend.service.send_message(TRUSTED, "muted", "quiet", sender_id="bob")
    await backend.service.send_message(TRUSTED, "group", "loud", sender_id="bob")
    await wait_until(lambda: session.desktop_notifications.latest is not None)
    latest = session.desktop_notifications.latest
    assert latest is not None
    assert latest.body == "loud"
    session.destroy()


async def test_disabled_means_no_notification(backend: EmbeddedBackend) -> None:
    session = await _ready_session(backend)
    session.set_desktop_notification_enabled(False)
    received: list[str] = []
    session.on_message(lambda message: received.append(message.body))
    await backend.service.send_message(TRUSTED, "group", "quiet", sender_id="bob")
    await wait_until(lambda: received == ["quiet"])
    assert session.desktop_notifications.latest is None
    session.destroy()


async def test_click_without_handler_selects_in_inbox(backend: EmbeddedBackend) -> None:
    session = await _ready_session(backend)
    inbox = UIBox(session, BoxKind.INBOX)
    selected: list[str | None] = []
    inbox.on_select = selected.append
    await backend.service.send_message(TRUSTED, "group", "ping", sender_id="bob")
    await wait_until(lambda: session.desktop_notifications.latest is not None)

    session.desktop_notifications.report_clicked("group")

    assert selected == ["group"]
    session.destroy()


async def test_click_with_handler_does_not_select(backend: EmbeddedBackend) -> None:
    session = await _ready_session(backend)
    inbox = UIBox(session, BoxKind.INBOX)
    selected: list[str | None] = []
    inbox.on_select = selected.append
    clicks: list[DesktopNotificationClickedEvent] = []
    session.on_desktop_notification_clicked(clicks.append)
    await backend.service.send_message(TRUSTED, "group", "ping", sender_id="bob")
    await wait_until(lambda: session.desktop_notifications.latest is not None)

    session.desktop_notifications.report_clicked("group")
    await wait_until(lambda: bool(clicks))

    assert clicks[0].conversation.id == "group"
    assert selected == []
    session.destroy()


async def test_click_on_unknown_conversation_ignored(backend: EmbeddedBackend) -> None:
    session = await _ready_session(backend)
    clicks: list[DesktopNotificationClickedEvent] = []
    session.on_desktop_notification_clicked(clicks.append)
    session.desktop_notifications.report_clicked("not-notified")
    assert clicks == []
    session.destroy()


async def test_permission_needed_can_prevent_prompt(backend: EmbeddedBackend) -> None:
    session = TalkSession(
        backend.app.app_id, "alice", token=create_user_token(backend.app, "alice")
    )
    await session.wait_ready()

    def prevent(event: BrowserPermissionNeededEvent) -> None:
        event.prevent_default()

    session.on_browser_permission_needed(prevent)
    session.desktop_notifications.report_permission("default")
    session.set_desktop_notification_enabled(True)
    await session.desktop_notifications.report_permission_needed()
    assert session.desktop_notifications.prompt_allowed is False
    session.destroy()


async def test_denied_permission_raises_and_reports(backend: EmbeddedBackend) -> None:
    session = TalkSession(
        backend.app.app_id, "alice", token=create_user_token(backend.app, "alice")
    )
    await session.wait_ready()
    denied: list[BrowserPermissionDeniedEvent] = []
    session.on_browser_permission_denied(denied.append)
    session.desktop_notifications.report_permission("denied")

    with pytest.raises(ChatError) as caught:
        session.set_desktop_notification_enabled(True)

    assert caught.value.code == "notifications_permission_denied"
    await wait_until(lambda: len(denied) == 1, what="the denied event")
    assert session.desktop_notifications.enabled is False
    # Allowed later in the browser's settings: the remembered request takes effect.
    session.desktop_notifications.report_permission("granted")
    assert session.desktop_notifications.enabled is True
    session.destroy()


async def test_unsupported_browser_state(backend: EmbeddedBackend) -> None:
    session = TalkSession(
        backend.app.app_id, "alice", token=create_user_token(backend.app, "alice")
    )
    await session.wait_ready()
    session.desktop_notifications.report_permission("unsupported")
    assert session.desktop_notifications.permission is NotificationPermission.UNSUPPORTED
    with pytest.raises(ChatError) as caught:
        session.set_desktop_notification_enabled(True)
    assert caught.value.code == "notifications_not_supported"
    session.destroy()
