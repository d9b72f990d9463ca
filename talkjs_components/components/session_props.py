"""Props of the ``Session`` component: names, @talkjs/react aliases and validation."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from ..errors import InvalidInput

__all__ = ["SESSION_EVENTS", "SESSION_PROPS", "normalize_session_props"]

SESSION_PROPS = (
    "app_id",
    "user_id",
    "sync_user",
    "token",
    "token_fetcher",
    "signature",
    "session_ref",
    "desktop_notification_enabled",
)
"""Props of ``Session`` other than children and events."""

SESSION_EVENTS = (
    "on_message",
    "on_unreads_change",
    "on_desktop_notification_clicked",
    "on_browser_permission_needed",
    "on_browser_permission_denied",
    "on_error",
)
"""Event props of ``Session``; each takes a function (or coroutine function) or ``None``."""

# TalkJS's React documentation spells this prop with an "s" while its code reads
# the name without one; both spellings work here.
_EXTRA_ALIASES = {"desktopNotificationsEnabled": "desktop_notification_enabled"}

_CAMEL_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")

# Checks of the props whose wrong kind would fail only later, in an effect or
# a token refresh, with what each accepts. app_id, user_id and sync_user are
# checked where the Session reads them.
_PROP_KINDS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "token": (lambda value: isinstance(value, str), "a string, the user token"),
    "token_fetcher": (callable, "a function (sync or async) returning a token"),
    "signature": (lambda value: isinstance(value, str), "a string, the signature"),
    "session_ref": (lambda value: hasattr(value, "current"), "a reactpy.Ref (use_ref(None))"),
    "desktop_notification_enabled": (lambda value: isinstance(value, bool), "True or False"),
}


def _snake_case(name: str) -> str:
    return _CAMEL_BOUNDARY.sub("_", name).lower()


def normalize_session_props(props: Mapping[str, Any]) -> dict[str, Any]:
    """Return ``props`` keyed by snake_case name, with @talkjs/react spellings translated.

    ``None`` values count as not given.

    Raises:
        InvalidInput: An unknown prop or event, the same prop under two
            spellings, an event prop that is not callable, or a ``token``,
            ``token_fetcher``, ``signature``, ``session_ref`` or
            ``desktop_notification_enabled`` of the wrong kind.
    """
    normalized: dict[str, Any] = {}
    spelled: dict[str, str] = {}
    for name, value in props.items():
        canonical = _EXTRA_ALIASES.get(name) or _snake_case(name)
        if canonical not in SESSION_PROPS and canonical not in SESSION_EVENTS:
            raise _unknown(name, canonical)
        if value is None:
            continue
        if canonical in normalized:
            raise InvalidInput(
                f"Session got {canonical!r} twice, as {spelled[canonical]!r} and as {name!r}: "
                "pass one of them"
            )
        if canonical in SESSION_EVENTS and not callable(value):
            raise InvalidInput(
                f"Session event prop {name!r} must be a function, got {type(value).__name__}"
            )
        kind = _PROP_KINDS.get(canonical)
        if kind is not None and not kind[0](value):
            # Only the type is named: the value may be a credential.
            raise InvalidInput(
                f"Session prop {name!r} must be {kind[1]}, got {type(value).__name__}"
            )
        normalized[canonical] = value
        spelled[canonical] = name
    return normalized


def _unknown(name: str, canonical: str) -> InvalidInput:
    if canonical.startswith("on_"):
        return InvalidInput(
            f"Session has no event {name!r}; valid events are: {', '.join(SESSION_EVENTS)} "
            "(camelCase spellings such as onMessage work too)"
        )
    return InvalidInput(
        f"Session has no prop {name!r}; valid props are: {', '.join(SESSION_PROPS)}, "
        "children and the events " + ", ".join(SESSION_EVENTS)
    )
