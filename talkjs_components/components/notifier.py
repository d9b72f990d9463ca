"""The bridge between a session's desktop notification state and the browser's Notifier."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from reactpy import component, use_effect, use_state
from reactpy.types import VdomDict

from ..session import TalkSession
from ._adapter import Notifier

__all__ = ["NotificationBridge"]


@component
def NotificationBridge(session: TalkSession) -> VdomDict:
    """Render the browser-side Notifier of ``session``, re-rendering only itself on changes."""
    _, set_version = use_state(0)
    notifications = session.desktop_notifications

    @use_effect(dependencies=[session])
    def follow() -> Callable[[], None]:
        subscription = notifications.on_change(lambda: set_version(lambda version: version + 1))
        return subscription.unsubscribe

    def on_permission(event: dict[str, Any]) -> None:
        if session.is_alive:
            notifications.report_permission(str(event.get("permission")))

    async def on_permission_needed(_event: dict[str, Any]) -> None:
        if session.is_alive:
            await notifications.report_permission_needed()

    def on_clicked(event: dict[str, Any]) -> None:
        if session.is_alive:
            notifications.report_clicked(str(event.get("conversationId")))

    latest = notifications.latest
    element: VdomDict = Notifier(
        {
            "enabled": notifications.enabled,
            "promptAllowed": notifications.prompt_allowed,
            "notification": latest.to_props() if latest else None,
            "onPermission": on_permission,
            "onPermissionNeeded": on_permission_needed,
            "onClicked": on_clicked,
        }
    )
    return element
