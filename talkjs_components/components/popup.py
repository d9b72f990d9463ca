"""The ``Popup`` component: a launcher button that opens a ``Chatbox`` in a floating panel."""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from reactpy import Ref, component, html, use_effect, use_ref, use_state
from reactpy.types import Component, VdomChild, VdomDict

from ..errors import InvalidInput
from ..session import BoxKind, TalkSession, UIBox
from ..session.boxes import mount_box
from ._adapter import PopupController
from .box_props import (
    UNSET,
    SyncConversation,
    check_ref,
    check_selection_props,
    class_names,
    resolve_selection,
    take_own_props,
)
from .chatbox import Chatbox
from .chatbox_props import parse_chatbox_props
from .context import use_session, use_unreads
from .inbox import run_handler, unread_label
from .strings import text

__all__ = ["LAUNCHER_MODES", "Popup"]

logger = logging.getLogger("talkjs_components.ui")

LAUNCHER_MODES = ("always", "close-only", "never")
"""Values of ``launcher``: when the launcher button is shown."""

STORAGE_PREFIX = "talkjs-components:popup-open"
"""Start of the sessionStorage key under which ``keep_open`` stores the open state."""

_POPUP_DEFAULTS: dict[str, Any] = {
    "conversation_id": UNSET,
    "sync_conversation": None,
    "show": None,
    "keep_open": False,
    "launcher": "always",
    "popup_ref": None,
    "on_open": None,
    "on_close": None,
}

_panel_numbers = itertools.count(1)


@dataclass(frozen=True)
class _PopupProps:
    """Validated props of a Popup."""

    conversation_id: Any
    sync_conversation: SyncConversation | None
    show: bool | None
    keep_open: bool
    launcher: str
    popup_ref: Ref[UIBox | None] | None
    on_open: Callable[[], Any] | None
    on_close: Callable[[], Any] | None
    chatbox_options: dict[str, Any]


def _parse_props(own: dict[str, Any], extra: dict[str, Any]) -> _PopupProps:
    """Validate the props of a Popup.

    Raises:
        InvalidInput: A prop is given twice, both conversation props are
            given, ``show``, ``keep_open`` or ``launcher`` has an invalid
            value, or a Chatbox prop is invalid.
    """
    options = take_own_props("Popup", own, _POPUP_DEFAULTS, extra)
    check_selection_props("Popup", own["conversation_id"], own["sync_conversation"])
    check_ref("Popup", "popup_ref", own["popup_ref"])
    # Checked here too, so that a bad Chatbox prop shows before the panel opens.
    parse_chatbox_props(options)
    launcher = own["launcher"]
    if launcher not in LAUNCHER_MODES:
        valid = ", ".join(repr(mode) for mode in LAUNCHER_MODES)
        raise InvalidInput(f"Popup launcher {launcher!r} is invalid: use one of {valid}")
    show = own["show"]
    if show is not None and not isinstance(show, bool):
        raise InvalidInput(f"Popup show must be True, False or None, got {show!r}")
    keep_open = own["keep_open"]
    if not isinstance(keep_open, bool):
        raise InvalidInput(f"Popup keep_open must be True or False, got {keep_open!r}")
    return _PopupProps(
        conversation_id=own["conversation_id"],
        sync_conversation=own["sync_conversation"],
        show=show,
        keep_open=keep_open,
        launcher=launcher,
        popup_ref=own["popup_ref"],
        on_open=own["on_open"],
        on_close=own["on_close"],
        chatbox_options=options,
    )


@component
def Popup(
    conversation_id: str | None = UNSET,
    sync_conversation: SyncConversation | None = None,
    *,
    show: bool | None = None,
    keep_open: bool = False,
    launcher: str = "always",
    popup_ref: Ref[UIBox | None] | None = None,
    on_open: Callable[[], Any] | None = None,
    on_close: Callable[[], Any] | None = None,
    **chatbox_options: Any,
) -> VdomDict | Component | str:
    """Show a chat launcher in the bottom-right corner that opens a conversation in a panel.

    Render it inside a ``Session``. Like @talkjs/react's Popup it renders
    nothing until the session is connected. The launcher shows the user's
    total unread message count. Escape closes the open panel. The
    @talkjs/react camelCase spellings of every prop work too.

    Args:
        conversation_id: Id of the conversation to show; ``None`` or not given
            shows none.
        sync_conversation: A ``ConversationBuilder``, or a function given the
            session that returns one, to sync and show.
        show: Open (``True``) or close (``False``) the panel, also after
            mount; ``None`` leaves it to the user. The panel starts closed
            when ``show`` is ``None``, whereas @talkjs/react opens it.
        keep_open: Keep the panel open across page loads of the same browser
            tab. The state is stored in sessionStorage per app, user and
            conversation. ``show``, when given, wins over the stored state.
        launcher: ``"always"`` shows the launcher, ``"close-only"`` only
            while the panel is open, ``"never"`` not at all (then only
            ``show`` opens the panel, and its own Close button closes it).
        popup_ref: A ``reactpy.Ref`` set to the Popup's ``UIBox`` while
            mounted and to ``None`` after unmount.
        on_open, on_close: Called without arguments when the user opens or
            closes the panel (launcher, Escape, Close button), not when
            ``show`` or ``keep_open`` change it.
        chatbox_options: Passed on to the ``Chatbox``.
    """
    session = use_session()
    own: dict[str, Any] = {
        "conversation_id": conversation_id,
        "sync_conversation": sync_conversation,
        "show": show,
        "keep_open": keep_open,
        "launcher": launcher,
        "popup_ref": popup_ref,
        "on_open": on_open,
        "on_close": on_close,
    }
    try:
        props = _parse_props(own, chatbox_options)
    except InvalidInput as exc:
        # Shown rather than raised: ReactPy would log the failed render with every prop.
        logger.error("Popup has invalid props: %s", exc.message)
        return html.div(
            {"className": "tjs-popup"},
            html.p({"className": "tjs-error", "role": "alert"}, exc.message),
        )
    if session is None:
        return ""
    # A new session object remounts the popup, so no state crosses sessions.
    return _ActivePopup(session, props, key=f"session-{session.id}")


@component
def _ActivePopup(session: TalkSession, props: _PopupProps) -> VdomDict:
    is_open, set_open = use_state(bool(props.show))
    # The open state as last decided, ahead of the render that shows it, so
    # that two quick clicks toggle twice.
    open_now: Ref[bool] = use_ref(is_open)
    # Whether the browser has reported the stored open state. Storing waits for this report.
    restored, set_restored = use_state(False)
    no_choice: tuple[str | None] | None = None
    chosen, set_chosen = use_state(no_choice)
    panel_id: str = use_state(lambda: f"tjs-popup-{next(_panel_numbers)}")[0]
    box: Ref[UIBox | None] = use_ref(None)
    latest: Ref[_PopupProps] = use_ref(props)
    latest.current = props
    handler_tasks: set[asyncio.Task[Any]] = use_ref(set()).current

    selection, prop_key = resolve_selection(
        session, props.conversation_id, props.sync_conversation, chosen
    )
    selected_id = selection.conversation_id
    popup_ref = props.popup_ref
    show = props.show

    def change_open(value: bool) -> None:
        open_now.current = value
        set_open(value)

    def user_set_open(value: bool) -> None:
        if value == open_now.current:
            return
        change_open(value)
        handler = latest.current.on_open if value else latest.current.on_close
        if handler is not None:
            run_handler(handler_tasks, "on_open" if value else "on_close", handler)

    @use_effect(dependencies=[session, popup_ref])
    def register_box() -> Callable[[], None] | None:
        if not session.is_alive:
            return None
        box.current, unmount = mount_box(
            session,
            BoxKind.POPUP,
            lambda selected: set_chosen((selected,)),
            popup_ref,
            selected_id if open_now.current else None,
        )
        return unmount

    @use_effect(dependencies=[prop_key])
    def follow_props() -> None:
        set_chosen(None)

    @use_effect(dependencies=[show])
    def follow_show() -> None:
        if show is not None:
            change_open(show)

    # The session notifies about a conversation unless a box shows it, and a
    # closed popup shows nothing.
    @use_effect(dependencies=[selected_id, is_open])
    def track_shown() -> None:
        if box.current is not None:
            box.current.current_conversation_id = selected_id if is_open else None

    def on_restore(event: dict[str, Any]) -> None:
        set_restored(True)
        current = latest.current
        if current.keep_open and current.show is None and event.get("open") is True:
            change_open(True)

    storage_key = ":".join([STORAGE_PREFIX, session.app_id, session.me.id, selected_id or ""])
    children: list[VdomChild] = [
        PopupController(
            {
                "open": is_open,
                "keepOpen": props.keep_open,
                "storageKey": storage_key,
                "instance": panel_id,
                "ready": restored,
                "onRestore": on_restore,
                "onEscape": lambda _event: user_set_open(False),
            }
        )
    ]
    if props.launcher == "always" or (props.launcher == "close-only" and is_open):
        children.append(
            _Launcher(
                is_open,
                panel_id,
                lambda _event: user_set_open(not open_now.current),
                key="launcher",
            )
        )
    if is_open:
        children.append(
            html.div(
                {
                    "key": "panel",
                    "id": panel_id,
                    "role": "dialog",
                    "aria-label": text("popup_label"),
                    "className": "tjs-popup__panel",
                },
                html.div(
                    {"className": "tjs-popup__bar"},
                    html.button(
                        {
                            "type": "button",
                            "className": "tjs-popup__close",
                            "aria-label": text("close"),
                            "onClick": lambda _event: user_set_open(False),
                        },
                        "✕",
                    ),
                ),
                _chatbox(selection.conversation_id, selection.builder, props.chatbox_options),
            )
        )
    return html.div(
        {
            "className": class_names(
                "tjs-popup",
                "tjs-popup--open" if is_open else None,
                "tjs-popup--no-launcher" if props.launcher == "never" else None,
            )
        },
        *children,
    )


def _chatbox(conversation_id: str | None, builder: Any, options: dict[str, Any]) -> Any:
    # The Chatbox is unmounted while the panel is closed, so a hidden chatbox
    # never marks messages read.
    if builder is not None:
        return Chatbox(sync_conversation=builder, key="chatbox", **options)
    return Chatbox(conversation_id=conversation_id, key="chatbox", **options)


@component
def _Launcher(is_open: bool, panel_id: str, on_click: Callable[[Any], None]) -> VdomDict:
    """Render the launcher button; only it re-renders when the unread count changes."""
    unreads = use_unreads()
    total = sum(unread.unread_message_count for unread in unreads or ())
    count_id = f"{panel_id}-count"
    attributes: dict[str, Any] = {
        "type": "button",
        "className": "tjs-popup__launcher",
        "aria-label": text("close_chat") if is_open else text("open_chat"),
        "aria-expanded": "true" if is_open else "false",
        "onClick": on_click,
    }
    if is_open:
        attributes["aria-controls"] = panel_id
    content: list[VdomChild] = [html.span({"className": "tjs-popup__icon", "aria-hidden": "true"})]
    if total > 0:
        # The aria-label replaces the content as the button's name, so the
        # count reaches screen readers as the description.
        attributes["aria-describedby"] = count_id
        content.append(
            html.span(
                {"className": "tjs-popup__count", "id": count_id},
                html.span({"aria-hidden": "true"}, str(total)),
                html.span({"className": "tjs-visually-hidden"}, unread_label(total)),
            )
        )
    return html.button(attributes, *content)
