"""Custom message actions of a Chatbox: the ``MessageAction`` model, its checks, and the menu.

TalkJS defines message actions in its hosted dashboard. Here the app passes
them as the ``message_actions`` prop, and the Chatbox offers each one in a
"Message actions" menu on the messages it is allowed on. Picking one calls
``on_custom_message_action`` with a ``MessageActionEvent``.

The menu's open state and its keyboard handling live in the browser, in the
``MessageActionMenu`` JS component: opening, moving and closing the menu
sends nothing to the server and re-renders nothing. Python hears only of the
chosen action.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeAlias

from reactpy import html
from reactpy.types import VdomDict

from ..errors import InvalidInput
from ..models import Conversation, Message, MessageType, User
from ..predicates import MessageMatcher, compile_message_predicate
from ..session import SessionMessage
from ..session.payloads import to_session_message
from ._adapter import MessageActionMenu
from .chatbox_events import MessageActionEvent
from .message_cache import MessageCache
from .strings import text

__all__ = [
    "MAX_ACTION_NAME_LENGTH",
    "CompiledMessageAction",
    "MessageAction",
    "MessageActionHandler",
    "MessageActionRunner",
    "action_menu",
    "compile_message_actions",
    "message_action_handler",
]

logger = logging.getLogger("talkjs_components.ui")

MAX_ACTION_NAME_LENGTH = 64
"""Maximum length of an action's ``name``, in characters."""

AllowedRule: TypeAlias = Literal["all", "own", "others"]

_RULES: tuple[AllowedRule, ...] = ("all", "own", "others")
_ITEM_KEYS = ("name", "label", "allowed", "params")
_PREDICATE_EXAMPLE = "{'custom': {'status': ['==', 'open']}}"

MessageActionHandler: TypeAlias = Callable[[MessageActionEvent], Any]
"""A function, or coroutine function, that receives a ``MessageActionEvent``."""


@dataclass(frozen=True)
class MessageAction:
    """A custom action that users can pick in a message's "Message actions" menu.

    The Chatbox checks every field when it renders and shows an invalid
    action as an alert. Building one checks nothing, so a mistake never
    raises inside the app's own render.
    """

    name: str
    """The action's id, passed to the handler as ``event.action``: not empty,
    at most 64 characters, and unique within one ``message_actions`` list."""
    label: str
    """The menu item's text."""
    allowed: AllowedRule | Mapping[str, Any] | Sequence[Any] | MessageMatcher = "all"
    """The messages that offer the action: ``"all"``, ``"own"`` (messages the
    user sent), ``"others"`` (messages of other senders), or a TalkJS
    ``MessagePredicate`` that the message must match. System messages never
    offer actions."""
    params: Mapping[str, str] = field(default_factory=dict)
    """Passed unchanged, as a copy, to the handler as ``event.params``."""


@dataclass(frozen=True)
class CompiledMessageAction:
    """A checked ``MessageAction`` with its rule compiled; compares by value."""

    name: str
    label: str
    rule: AllowedRule | MessageMatcher
    params: tuple[tuple[str, str], ...] = ()

    def allows(self, message: Message, sender: User | None, me_id: str) -> bool:
        """Return whether ``message``, sent by ``sender``, offers this action to user ``me_id``."""
        if message.type is MessageType.SYSTEM or message.sender_id is None:
            return False
        rule = self.rule
        if isinstance(rule, MessageMatcher):
            return rule(message, sender)
        if rule == "own":
            return message.sender_id == me_id
        if rule == "others":
            return message.sender_id != me_id
        return True


def compile_message_actions(value: object) -> tuple[CompiledMessageAction, ...]:
    """Check the ``message_actions`` prop and compile each action's rule.

    ``value`` is a list of ``MessageAction`` or of dicts with the same keys
    (``name`` and ``label`` required). ``None`` means no actions.

    Raises:
        InvalidInput: The message names the bad item and field, its value,
            the limit it breaks and what to pass instead.
    """
    if value is None:
        return ()
    if isinstance(value, str | bytes | Mapping) or not isinstance(value, Sequence):
        raise InvalidInput(
            f"Chatbox message_actions must be a list of MessageAction, got {type(value).__name__}"
        )
    compiled: list[CompiledMessageAction] = []
    positions: dict[str, int] = {}
    for index, item in enumerate(value):
        action = _compile_action(item, f"Chatbox message_actions[{index}]")
        if action.name in positions:
            raise InvalidInput(
                f"Chatbox message_actions[{index}].name {action.name!r} is also the name of "
                f"message_actions[{positions[action.name]}]: give each action a unique name"
            )
        positions[action.name] = index
        compiled.append(action)
    return tuple(compiled)


def _compile_action(item: object, path: str) -> CompiledMessageAction:
    if isinstance(item, MessageAction):
        fields: Mapping[str, Any] = {
            "name": item.name,
            "label": item.label,
            "allowed": item.allowed,
            "params": item.params,
        }
    elif isinstance(item, Mapping):
        unknown = [key for key in item if key not in _ITEM_KEYS]
        if unknown:
            raise InvalidInput(
                f"{path} has no key {unknown[0]!r}; valid keys are: {', '.join(_ITEM_KEYS)}"
            )
        fields = item
    else:
        raise InvalidInput(
            f"{path} must be a MessageAction or a dict with keys {', '.join(_ITEM_KEYS)}, "
            f"got {type(item).__name__}"
        )
    name = fields.get("name")
    if not isinstance(name, str) or not name.strip():
        raise InvalidInput(f"{path}.name must be a non-empty string, got {name!r}")
    if len(name) > MAX_ACTION_NAME_LENGTH:
        raise InvalidInput(
            f"{path}.name {name!r} has {len(name)} characters, more than the limit of "
            f"{MAX_ACTION_NAME_LENGTH}: use a shorter name"
        )
    label = fields.get("label")
    if not isinstance(label, str) or not label.strip():
        raise InvalidInput(f"{path}.label must be a non-empty string, got {label!r}")
    return CompiledMessageAction(
        name=name,
        label=label,
        rule=_compile_rule(fields.get("allowed", "all"), f"{path}.allowed"),
        params=_compile_params(fields.get("params"), f"{path}.params"),
    )


def _compile_rule(allowed: object, path: str) -> AllowedRule | MessageMatcher:
    if isinstance(allowed, str):
        for rule in _RULES:
            if allowed == rule:
                return rule
        raise InvalidInput(
            f"{path} {allowed!r} is invalid: use 'all', 'own', 'others' or a "
            f"MessagePredicate such as {_PREDICATE_EXAMPLE}"
        )
    if allowed is None:
        raise InvalidInput(
            f"{path} must not be None: use 'all', 'own', 'others' or a MessagePredicate"
        )
    return compile_message_predicate(allowed, path=path)


def _compile_params(params: object, path: str) -> tuple[tuple[str, str], ...]:
    if params is None:
        return ()
    if not isinstance(params, Mapping) or not all(
        isinstance(key, str) and isinstance(value, str) for key, value in params.items()
    ):
        raise InvalidInput(f"{path} must be a dict of strings to strings, got {params!r}")
    return tuple(params.items())


@dataclass(frozen=True)
class _HandlersByName:
    """``on_custom_message_action`` given as a dict: one handler per action name."""

    handlers: Mapping[str, MessageActionHandler]

    def __call__(self, event: MessageActionEvent) -> Any:
        handler = self.handlers.get(event.action)
        if handler is None:
            logger.debug(
                "on_custom_message_action has no handler for action %r; ignored", event.action
            )
            return None
        return handler(event)


def message_action_handler(prop: str, value: object) -> MessageActionHandler:
    """Check the ``on_custom_message_action`` prop: a function, or a dict of names to functions.

    Returns one function that dispatches by ``event.action``. A dict may name
    actions that a Chatbox does not offer, so one dict can serve several
    chatboxes.

    Raises:
        InvalidInput: ``value`` is neither, or a dict holds a key that is not
            a string or a value that is not a function.
    """
    if callable(value):
        return value
    if not isinstance(value, Mapping):
        raise InvalidInput(
            f"Chatbox event prop {prop!r} must be a function or a dict of action names to "
            f"functions, got {type(value).__name__}"
        )
    for name, handler in value.items():
        if not isinstance(name, str):
            raise InvalidInput(f"Chatbox {prop} keys must be action names, got {name!r}")
        if not callable(handler):
            raise InvalidInput(
                f"Chatbox {prop} handler of action {name!r} must be a function, "
                f"got {type(handler).__name__}"
            )
    return _HandlersByName(dict(value))


class MessageActionRunner:
    """Runs the custom message actions of one chatbox.

    One instance lives as long as the chatbox, which calls :meth:`update` on
    every render. So a menu rendered earlier runs the latest handler on the
    latest version of its message, and only while the action still applies.
    """

    def __init__(self, cache: MessageCache) -> None:
        self._cache = cache
        self._me_id = ""
        self._conversation: Conversation | None = None
        self._actions: tuple[CompiledMessageAction, ...] = ()
        self._handler: MessageActionHandler | None = None

    def update(
        self,
        me_id: str,
        conversation: Conversation | None,
        actions: tuple[CompiledMessageAction, ...],
        handler: MessageActionHandler | None,
    ) -> None:
        """Store what the chatbox rendered last."""
        self._me_id = me_id
        self._conversation = conversation
        self._actions = actions
        self._handler = handler

    async def run(self, message_id: str, name: str) -> None:
        """Call the handler for action ``name`` on message ``message_id``, and await it if async.

        Does nothing (and logs at debug level) when the message is gone, the
        action was removed, or the action no longer applies to the message.
        A handler that raises is logged, not raised into ReactPy.
        """
        message = self._cache.get(message_id)
        action = next((action for action in self._actions if action.name == name), None)
        if message is None or action is None or self._conversation is None:
            logger.debug("message action %r on message %r ignored: gone", name, message_id)
            return
        sender = self._cache.users.get(message.sender_id or "")
        if not action.allows(message, sender, self._me_id):
            logger.debug(
                "message action %r no longer applies to message %r; ignored", name, message_id
            )
            return
        if self._handler is None:
            logger.debug("message action %r picked, but there is no handler", name)
            return
        snapshot: SessionMessage = to_session_message(
            message, self._conversation, self._me_id, sender
        )
        event = MessageActionEvent(action=name, params=dict(action.params), message=snapshot)
        try:
            result = self._handler(event)
            if inspect.isawaitable(result):
                await result
        except Exception:
            logger.exception(
                "on_custom_message_action handler of user %r failed for action %r on message %r",
                self._me_id,
                name,
                message_id,
            )


def action_menu(
    message: Message,
    sender: User | None,
    me_id: str,
    actions: tuple[CompiledMessageAction, ...],
    runner: MessageActionRunner | None,
) -> VdomDict | None:
    """Return the "Message actions" menu of ``message``, or ``None`` when no action applies."""
    if runner is None:
        return None
    offered = [action for action in actions if action.allows(message, sender, me_id)]
    if not offered:
        return None

    async def on_action(event: Mapping[str, Any]) -> None:
        await runner.run(message.id, str(event.get("name") or ""))

    menu: VdomDict = MessageActionMenu(
        {
            "label": text("message_actions"),
            "icon": text("message_actions_icon"),
            "actions": [{"name": action.name, "label": action.label} for action in offered],
            "onAction": on_action,
        }
    )
    return html.div({"className": "tjs-message__menu"}, menu)
