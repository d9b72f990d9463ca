"""Popup rendered in a ReactPy Layout, without a browser: launcher, panel, show, events, refs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from reactpy import Ref, component, html, use_state

from talkjs_components import Popup, TalkSession
from talkjs_components.embedded import EmbeddedBackend
from talkjs_components.models import ConversationAttributes, Participation
from talkjs_components.service import TRUSTED
from talkjs_components.session import UIBox

from .layout_tools import LayoutRunner, alice_session, find_all, text_of
from .test_inbox import settle
from .waiting import wait_until


def _by_class(model: Any, class_name: str) -> list[dict[str, Any]]:
    return find_all(
        model, lambda node: class_name in node.get("attributes", {}).get("className", "").split()
    )


def _launchers(runner: LayoutRunner) -> list[dict[str, Any]]:
    return _by_class(runner.model, "tjs-popup__launcher")


def _launcher_label(runner: LayoutRunner) -> str:
    launchers = _launchers(runner)
    assert len(launchers) == 1, f"expected one launcher, found {len(launchers)}"
    label: str = launchers[0]["attributes"]["aria-label"]
    return label


def _launcher_count(runner: LayoutRunner) -> str:
    """Return the visible unread count on the launcher, "" without one."""
    counts = _by_class(_launchers(runner)[0], "tjs-popup__count")
    if not counts:
        return ""
    visible = find_all(counts[0], lambda node: node.get("attributes", {}).get("aria-hidden"))
    return text_of(visible[0])


def _dialogs(runner: LayoutRunner) -> list[dict[str, Any]]:
    return find_all(runner.model, lambda node: node.get("attributes", {}).get("role") == "dialog")


def _is_open(runner: LayoutRunner) -> bool:
    return bool(_dialogs(runner))


def _controller(runner: LayoutRunner) -> dict[str, Any]:
    return find_all(runner.model, lambda node: node.get("tagName") == "PopupController")[0]


async def _fire(runner: LayoutRunner, element: dict[str, Any], name: str, data: Any) -> None:
    target = element["eventHandlers"][name]["target"]
    await runner.layout.deliver({"type": "layout-event", "target": target, "data": [data]})


async def _click_launcher(runner: LayoutRunner) -> None:
    await _fire(runner, _launchers(runner)[0], "onClick", {})


async def _press_escape(runner: LayoutRunner) -> None:
    await _fire(runner, _controller(runner), "onEscape", {})


async def _click_close(runner: LayoutRunner) -> None:
    close = _by_class(runner.model, "tjs-popup__close")[0]
    await _fire(runner, close, "onClick", {})


def _ready(runner: LayoutRunner) -> bool:
    return bool(find_all(runner.model, lambda node: node.get("tagName") == "PopupController"))


async def test_launcher_label_and_unread_count(backend: EmbeddedBackend) -> None:
    async with LayoutRunner(alice_session(backend, Popup(conversation_id="group"))) as runner:
        await runner.until(_ready)
        assert _launcher_label(runner) == "Open chat"
        assert _launchers(runner)[0]["attributes"]["aria-expanded"] == "false"
        await settle(runner)
        assert _launcher_count(runner) == ""

        await backend.service.send_message(TRUSTED, "group", "one", sender_id="bob")
        await backend.service.send_message(TRUSTED, "group", "two", sender_id="carol")
        await runner.until(lambda r: _launcher_count(r) == "2")
        launcher = _launchers(runner)[0]
        count = _by_class(launcher, "tjs-popup__count")[0]
        assert launcher["attributes"]["aria-describedby"] == count["attributes"]["id"]
        assert "2 unread messages" in text_of(count)
        assert not _is_open(runner)


async def test_launcher_toggles_panel(backend: EmbeddedBackend) -> None:
    await backend.service.send_message(TRUSTED, "group", "inside the popup", sender_id="bob")
    events: list[str] = []
    popup = Popup(
        conversation_id="group",
        on_open=lambda: events.append("open"),
        on_close=lambda: events.append("close"),
    )
    async with LayoutRunner(alice_session(backend, popup)) as runner:
        await runner.until(_ready)
        assert not _is_open(runner)
        assert "inside the popup" not in runner.text

        await _click_launcher(runner)
        await runner.until(lambda r: "inside the popup" in r.text)
        dialog = _dialogs(runner)[0]
        assert dialog["attributes"]["aria-label"] == "Chat"
        assert _launcher_label(runner) == "Close chat"
        launcher = _launchers(runner)[0]["attributes"]
        assert launcher["aria-expanded"] == "true"
        assert launcher["aria-controls"] == dialog["attributes"]["id"]
        assert events == ["open"]

        await _click_launcher(runner)
        await runner.until(lambda r: not _is_open(r))
        assert _launcher_label(runner) == "Open chat"
        assert events == ["open", "close"]


async def test_escape_and_close_button_close(backend: EmbeddedBackend) -> None:
    events: list[str] = []
    popup = Popup(
        conversation_id="group",
        on_open=lambda: events.append("open"),
        on_close=lambda: events.append("close"),
    )
    async with LayoutRunner(alice_session(backend, popup)) as runner:
        await runner.until(_ready)
        await _click_launcher(runner)
        await runner.until(_is_open)
        await _press_escape(runner)
        await runner.until(lambda r: not _is_open(r))
        assert events == ["open", "close"]

        await _click_launcher(runner)
        await runner.until(_is_open)
        close = _by_class(runner.model, "tjs-popup__close")[0]
        assert close["attributes"]["aria-label"] == "Close"
        await _click_close(runner)
        await runner.until(lambda r: not _is_open(r))
        assert events == ["open", "close", "open", "close"]


async def test_show_prop_fires_no_events(backend: EmbeddedBackend) -> None:
    events: list[str] = []
    controls: dict[str, Callable[[bool], None]] = {}

    @component
    def Controlled() -> Any:
        show, set_show = use_state(True)
        controls["show"] = set_show
        popup = Popup(
            conversation_id="group",
            show=show,
            on_open=lambda: events.append("open"),
            on_close=lambda: events.append("close"),
        )
        return alice_session(backend, popup)

    async with LayoutRunner(Controlled()) as runner:
        await runner.until(_is_open)
        controls["show"](False)
        await runner.until(lambda r: not _is_open(r))
        controls["show"](True)
        await runner.until(_is_open)
        assert events == []

        # The user can still close a panel that show opened.
        await _click_launcher(runner)
        await runner.until(lambda r: not _is_open(r))
        assert events == ["close"]


async def test_close_only_launcher(backend: EmbeddedBackend) -> None:
    controls: dict[str, Callable[[bool], None]] = {}

    @component
    def Controlled() -> Any:
        show, set_show = use_state(False)
        controls["show"] = set_show
        return alice_session(
            backend, Popup(conversation_id="group", show=show, launcher="close-only")
        )

    async with LayoutRunner(Controlled()) as runner:
        await runner.until(_ready)
        assert _launchers(runner) == []
        controls["show"](True)
        await runner.until(_is_open)
        assert _launcher_label(runner) == "Close chat"
        await _click_launcher(runner)
        await runner.until(lambda r: not _is_open(r))
        assert _launchers(runner) == []


async def test_never_launcher(backend: EmbeddedBackend) -> None:
    popup = Popup(conversation_id="group", show=True, launcher="never")
    async with LayoutRunner(alice_session(backend, popup)) as runner:
        await runner.until(_is_open)
        assert _launchers(runner) == []
        assert _by_class(runner.model, "tjs-popup--no-launcher")
        await _click_close(runner)
        await runner.until(lambda r: not _is_open(r))
        assert _launchers(runner) == []


@pytest.mark.parametrize(
    ("props", "fragment"),
    [
        ({"launcher": "sometimes"}, "launcher 'sometimes' is invalid: use one of 'always', "),
        ({"show": "yes"}, "show must be True, False or None"),
        ({"keep_open": 1}, "keep_open must be True or False"),
        ({"keepOpen": True, "keep_open": True}, "'keep_open' twice"),
        # A Chatbox prop is checked while the panel is still closed.
        ({"style": "height: 5px"}, "style must be a dict of CSS property names"),
        ({"bogus": 1}, "Chatbox has no prop 'bogus'"),
        ({"popup_ref": "ref"}, "Popup popup_ref must be a reactpy.Ref (use_ref(None)), got str"),
    ],
)
async def test_invalid_props_show_alert(
    backend: EmbeddedBackend, props: dict[str, Any], fragment: str
) -> None:
    async with LayoutRunner(
        alice_session(backend, Popup(conversation_id="group", **props))
    ) as runner:
        alerts = find_all(
            runner.model, lambda node: node.get("attributes", {}).get("role") == "alert"
        )
        assert len(alerts) == 1
        assert fragment in text_of(alerts[0])


async def test_invalid_launcher_names_valid_values(backend: EmbeddedBackend) -> None:
    async with LayoutRunner(alice_session(backend, Popup(launcher="corner"))) as runner:
        assert "'corner'" in runner.text
        for mode in ("'always'", "'close-only'", "'never'"):
            assert mode in runner.text


async def test_renders_nothing_without_session() -> None:
    async with LayoutRunner(html.div(Popup(conversation_id="group"))) as runner:
        assert runner.text == ""
        assert not _by_class(runner.model, "tjs-popup")


async def test_popup_ref_set_and_cleared(backend: EmbeddedBackend) -> None:
    ref: Ref[UIBox | None] = Ref(None)
    session_ref: Ref[TalkSession | None] = Ref(None)
    controls: dict[str, Callable[[bool], None]] = {}

    @component
    def Toggle() -> Any:
        mounted, set_mounted = use_state(True)
        controls["show"] = set_mounted
        popup = Popup(conversation_id="group", popup_ref=ref) if mounted else html.p("no popup")
        return alice_session(backend, popup, session_ref=session_ref)

    async with LayoutRunner(Toggle()) as runner:
        await runner.until(_ready)
        await wait_until(lambda: ref.current is not None, what="popup_ref")
        box = ref.current
        assert box is not None
        session = session_ref.current
        assert session is not None
        assert session.get_popups() == [box]
        # A closed popup shows no conversation, so notifications still appear.
        assert box.current_conversation_id is None
        await _click_launcher(runner)
        await runner.until(_is_open)
        assert box.current_conversation_id == "group"

        controls["show"](False)
        await runner.until(lambda r: "no popup" in r.text)
        await wait_until(lambda: ref.current is None, what="popup_ref to clear")
        assert not box.is_alive
        assert session.get_popups() == []


async def test_select_through_box(backend: EmbeddedBackend) -> None:
    await backend.service.sync_conversation(
        TRUSTED,
        "other",
        ConversationAttributes(subject="Other topic"),
        participants={"alice": Participation(), "bob": Participation()},
    )
    ref: Ref[UIBox | None] = Ref(None)
    popup = Popup(conversation_id="group", show=True, popup_ref=ref)
    async with LayoutRunner(alice_session(backend, popup)) as runner:
        await runner.until(lambda r: "Bob, Carol" in r.text)
        await wait_until(lambda: ref.current is not None, what="popup_ref")
        assert ref.current is not None
        ref.current.select("other")
        await runner.until(lambda r: "Other topic" in r.text)


async def test_keep_open_restores_without_events(backend: EmbeddedBackend) -> None:
    events: list[str] = []
    popup = Popup(
        conversation_id="group",
        keep_open=True,
        on_open=lambda: events.append("open"),
    )
    async with LayoutRunner(alice_session(backend, popup)) as runner:
        await runner.until(_ready)
        controller = _controller(runner)["attributes"]
        assert controller["keepOpen"] is True
        assert controller["ready"] is False
        assert (
            controller["storageKey"]
            == f"talkjs-components:popup-open:{backend.app.app_id}:alice:group"
        )

        await _fire(runner, _controller(runner), "onRestore", {"open": True})
        await runner.until(_is_open)
        assert _controller(runner)["attributes"]["ready"] is True
        assert events == []


async def test_restore_ignored_without_keep_open(backend: EmbeddedBackend) -> None:
    async with LayoutRunner(alice_session(backend, Popup(conversation_id="group"))) as runner:
        await runner.until(_ready)
        await _fire(runner, _controller(runner), "onRestore", {"open": True})
        await runner.until(lambda r: _controller(r)["attributes"]["ready"] is True)
        assert not _is_open(runner)
