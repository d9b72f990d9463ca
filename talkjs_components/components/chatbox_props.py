"""Props of ``Chatbox``: names, @talkjs/react aliases, validation and defaults."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import InvalidInput
from ..predicates import MessageMatcher, compile_message_predicate
from .box_props import check_ref
from .message_actions import (
    CompiledMessageAction,
    compile_message_actions,
    message_action_handler,
)

__all__ = [
    "CHATBOX_EVENTS",
    "CHATBOX_PROPS",
    "ChatboxOptions",
    "MessageField",
    "parse_chatbox_props",
]

CHATBOX_EVENTS = (
    "on_send_message",
    "on_focus",
    "on_blur",
    "on_leave_conversation",
    "on_custom_message_action",
)
"""Event props of ``Chatbox``."""

CHATBOX_PROPS = (
    "as_guest",
    "chatbox_ref",
    "loading_component",
    "class_name",
    "style",
    "show_chat_header",
    "message_field",
    "theme",
    "dir",
    "message_filter",
    "highlighted_words",
    "message_actions",
)
"""Value props of ``Chatbox``, by their snake_case names."""

_MESSAGE_FIELD_KEYS = ("placeholder", "enter_sends_message", "visible", "autofocus", "spellcheck")

_CAMEL_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")

_THEME_NAME = re.compile(r"^(--tjs-)?[a-z][a-z0-9-]*$")


def _snake_case(name: str) -> str:
    return _CAMEL_BOUNDARY.sub("_", name).lower()


@dataclass(frozen=True)
class MessageField:
    """Options of the composer, as TalkJS's ``messageField``."""

    placeholder: str | None = None
    enter_sends_message: bool = True
    visible: bool = True
    autofocus: bool = True
    """Focus the composer when the chatbox opens a conversation (TalkJS's "smart")."""
    spellcheck: bool = False


@dataclass(frozen=True)
class ChatboxOptions:
    """Every Chatbox prop besides the conversation selection, validated."""

    as_guest: bool = False
    chatbox_ref: Any = None
    loading_component: Any = None
    class_name: str | None = None
    style: Mapping[str, Any] | None = None
    show_chat_header: bool = True
    message_field: MessageField = field(default_factory=MessageField)
    theme: tuple[tuple[str, str], ...] = ()
    """CSS custom properties set on the chatbox, as ``(name, value)`` pairs."""
    dir: str | None = None
    message_filter: MessageMatcher = field(default_factory=lambda: compile_message_predicate(None))
    highlighted_words: tuple[str, ...] = ()
    message_actions: tuple[CompiledMessageAction, ...] = ()
    """Custom actions offered in each message's "Message actions" menu."""
    events: Mapping[str, Callable[..., Any]] = field(default_factory=dict)
    """Event handlers by snake_case name. ``on_custom_message_action`` is
    always one function here, even when given as a dict of handlers."""

    def css_variables(self) -> dict[str, str]:
        """Return the theme as inline-style custom properties."""
        return dict(self.theme)


def parse_chatbox_props(props: Mapping[str, Any]) -> ChatboxOptions:
    """Validate Chatbox props given by snake_case name or @talkjs/react camelCase alias.

    ``None`` counts as not given, so setting ``message_filter`` or
    ``highlighted_words`` back to ``None`` clears them.

    Raises:
        InvalidInput: An unknown prop or event, a prop given twice, or a value
            of the wrong kind; the message names the prop and what it accepts.
    """
    values: dict[str, Any] = {}
    events: dict[str, Callable[..., Any]] = {}
    for name, value in props.items():
        canonical = _snake_case(name)
        if canonical not in CHATBOX_PROPS and canonical not in CHATBOX_EVENTS:
            kind = "event" if canonical.startswith("on_") else "prop"
            raise InvalidInput(
                f"Chatbox has no {kind} {name!r}; valid props are: {', '.join(CHATBOX_PROPS)}; "
                f"valid events are: {', '.join(CHATBOX_EVENTS)}"
            )
        if value is None:
            continue
        if canonical in values or canonical in events:
            raise InvalidInput(f"Chatbox got {canonical!r} twice: pass one spelling of it")
        if canonical == "on_custom_message_action":
            events[canonical] = message_action_handler(name, value)
        elif canonical in CHATBOX_EVENTS:
            if not callable(value):
                raise InvalidInput(
                    f"Chatbox event prop {name!r} must be a function, got {type(value).__name__}"
                )
            events[canonical] = value
        else:
            values[canonical] = value
    return ChatboxOptions(
        as_guest=bool(values.get("as_guest", False)),
        chatbox_ref=_ref(values.get("chatbox_ref")),
        loading_component=values.get("loading_component"),
        class_name=_optional_str(values, "class_name"),
        style=_style(values.get("style")),
        show_chat_header=bool(values.get("show_chat_header", True)),
        message_field=_message_field(values.get("message_field")),
        theme=_theme(values.get("theme")),
        dir=_direction(values.get("dir")),
        message_filter=compile_message_predicate(values.get("message_filter")),
        highlighted_words=_words(values.get("highlighted_words")),
        message_actions=compile_message_actions(values.get("message_actions")),
        events=events,
    )


def _optional_str(values: Mapping[str, Any], name: str) -> str | None:
    value = values.get(name)
    if value is not None and not isinstance(value, str):
        raise InvalidInput(f"Chatbox {name} must be a string, got {type(value).__name__}")
    return value


def _message_field(value: Any) -> MessageField:
    if value is None:
        return MessageField()
    if isinstance(value, MessageField):
        return value
    if not isinstance(value, Mapping):
        raise InvalidInput(
            f"Chatbox message_field must be a dict of {', '.join(_MESSAGE_FIELD_KEYS)}, "
            f"got {type(value).__name__}"
        )
    options: dict[str, Any] = {}
    for key, option in value.items():
        canonical = _snake_case(str(key))
        if canonical not in _MESSAGE_FIELD_KEYS:
            raise InvalidInput(
                f"Chatbox message_field has no option {key!r}; "
                f"valid options are: {', '.join(_MESSAGE_FIELD_KEYS)}"
            )
        if canonical == "autofocus" and option == "smart":
            option = True
        if canonical == "placeholder":
            if option is not None and not isinstance(option, str):
                raise InvalidInput("Chatbox message_field placeholder must be a string")
        elif not isinstance(option, bool):
            raise InvalidInput(
                f"Chatbox message_field {key!r} must be true or false, got {option!r}"
            )
        options[canonical] = option
    return MessageField(**options)


def _theme(value: Any) -> tuple[tuple[str, str], ...]:
    if value is None:
        return ()
    if not isinstance(value, Mapping):
        raise InvalidInput(
            "Chatbox theme must be a dict of CSS custom properties such as "
            f"{{'accent': '#2b6cb0'}}, got {type(value).__name__}"
        )
    pairs: list[tuple[str, str]] = []
    for name, setting in value.items():
        if not isinstance(name, str) or not _THEME_NAME.match(name):
            raise InvalidInput(
                f"Chatbox theme name {name!r} is invalid: use names like 'accent' or "
                "'--tjs-accent' (lowercase letters, digits and hyphens)"
            )
        if not isinstance(setting, str | int | float) or ";" in str(setting):
            raise InvalidInput(
                f"Chatbox theme value of {name!r} must be a CSS value without ';', got {setting!r}"
            )
        variable = name if name.startswith("--tjs-") else f"--tjs-{name}"
        pairs.append((variable, str(setting)))
    return tuple(pairs)


def _direction(value: Any) -> str | None:
    if value is None:
        return None
    if value not in ("ltr", "rtl", "auto"):
        raise InvalidInput(f"Chatbox dir must be 'ltr', 'rtl' or 'auto', got {value!r}")
    return str(value)


def _ref(value: Any) -> Any:
    check_ref("Chatbox", "chatbox_ref", value)
    return value


def _style(value: Any) -> Mapping[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, Mapping) or not all(
        isinstance(name, str) and isinstance(setting, str | int | float)
        for name, setting in value.items()
    ):
        raise InvalidInput(
            "Chatbox style must be a dict of CSS property names to values, such as "
            f"{{'height': '500px'}}, got {value!r}"
        )
    return value


def _words(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if (
        isinstance(value, str)
        or not isinstance(value, Iterable)
        or not all(isinstance(word, str) for word in value)
    ):
        raise InvalidInput(f"Chatbox highlighted_words must be a list of strings, got {value!r}")
    return tuple(word for word in value if word.strip())
