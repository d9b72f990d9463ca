"""Event payloads of ``Chatbox``, shaped like TalkJS's."""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..models import Conversation, User
from ..session import SessionMessage, TalkSession

__all__ = [
    "OVERRIDE_TIMEOUT",
    "LeaveConversationEvent",
    "MessageActionEvent",
    "SendMessageEvent",
    "SendOutcome",
    "run_send_message_handler",
]

logger = logging.getLogger("talkjs_components.ui")

OVERRIDE_TIMEOUT = 5.0
"""Seconds an async ``on_send_message`` handler may take; after that the message is sent as is."""


@dataclass
class SendMessageEvent:
    """Payload of ``on_send_message``: the message about to be sent, which the handler may change.

    Call :meth:`override` to replace the text or custom data, or to cancel the
    send (the composer is cleared either way, as in TalkJS).
    """

    text: str
    conversation: Conversation
    me: User
    _override: dict[str, Any] = field(default_factory=dict, repr=False)

    def override(
        self,
        *,
        text: str | None = None,
        custom: Mapping[str, str] | None = None,
        cancel: bool = False,
    ) -> None:
        """Change what is sent: new ``text``, new ``custom`` data, or ``cancel=True``."""
        if text is not None:
            self._override["text"] = text
        if custom is not None:
            self._override["custom"] = dict(custom)
        if cancel:
            self._override["cancel"] = True


@dataclass(frozen=True)
class SendOutcome:
    """The text and custom data to send, or a cancel, after ``on_send_message`` ran."""

    text: str
    custom: dict[str, str] | None
    cancel: bool


async def run_send_message_handler(
    handler: Callable[[SendMessageEvent], Any],
    session: TalkSession,
    conversation: Conversation,
    body: str,
) -> SendOutcome:
    """Run ``handler`` (sync or async) and return what to send.

    An async handler gets ``OVERRIDE_TIMEOUT`` seconds; a handler that raises or
    times out is logged and the message is sent unchanged.
    """
    event = SendMessageEvent(text=body, conversation=conversation, me=session.me)
    try:
        result = handler(event)
        if inspect.isawaitable(result):
            async with asyncio.timeout(OVERRIDE_TIMEOUT):
                await result
    except TimeoutError:
        logger.warning(
            "on_send_message handler of user %r took over %.0f s; sending unchanged",
            session.me.id,
            OVERRIDE_TIMEOUT,
        )
        return SendOutcome(body, None, cancel=False)
    except Exception:
        logger.exception("on_send_message handler of user %r failed", session.me.id)
        return SendOutcome(body, None, cancel=False)
    override = event._override
    return SendOutcome(
        text=str(override.get("text", body)),
        custom=override.get("custom"),
        cancel=bool(override.get("cancel", False)),
    )


@dataclass
class LeaveConversationEvent:
    """Payload of ``on_leave_conversation``; :meth:`prevent_default` keeps the user in."""

    conversation: Conversation
    default_prevented: bool = False

    def prevent_default(self) -> None:
        """Do not leave the conversation."""
        self.default_prevented = True


@dataclass(frozen=True)
class MessageActionEvent:
    """Payload of ``on_custom_message_action``, shaped like TalkJS's ``MessageActionEvent``.

    ``message`` is the message as it is when the user picks the action, so an
    edit made after the menu was rendered is already in it.
    """

    action: str
    """The ``name`` of the chosen ``MessageAction``."""
    params: dict[str, str]
    """A copy of the action's ``params``."""
    message: SessionMessage
