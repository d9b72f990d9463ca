"""The Chatbox composer in Chromium, with two users where others must see the result.

Covers keys, the typing indicator, drafts, the composer's events, leaving, and
editing and deleting own messages. One server serves the whole module, and
each test has conversations of its own.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import pytest
from playwright.async_api import Browser, Locator, Page, WebSocketRoute, expect

from talkjs_components.models import Participation
from talkjs_components.service import TRUSTED, TYPING_EXPIRY_MS, ChatService

from .chatbox_pages import TIMEOUT_MS, Contexts, bubble, chatbox_server, message_log, send

CONVERSATIONS = {
    "keys-conv": ["alice", "bob"],
    "typing-send": ["alice", "bob"],
    "typing-quiet": ["alice", "bob"],
    "typing-gone": ["alice", "bob"],
    "typing-closed": ["alice", "bob"],
    "draft-a": ["alice", "bob"],
    "draft-b": ["alice", "bob"],
    "events-conv": ["alice", "bob"],
    "focus-conv": ["alice", "bob"],
    "leave-conv": ["alice", "bob", "carol"],
    "edit-conv": ["alice", "bob"],
    "delete-conv": ["alice", "bob"],
}
FIRST_MESSAGES = {
    "draft-a": ("bob", "this is conversation a"),
    "draft-b": ("bob", "this is conversation b"),
    "leave-conv": ("bob", "bob opened the leave test"),
}
ACTION_MESSAGES = [
    ("edit-conv", "alice", "edit me please"),
    ("edit-conv", "bob", "bob's own words"),
    ("delete-conv", "alice", "delete me please"),
    ("delete-conv", "bob", "bob stays"),
]


async def seed(service: ChatService) -> None:
    """Write every conversation of this module."""
    for conversation_id, members in CONVERSATIONS.items():
        participants = {member: Participation() for member in members}
        await service.sync_conversation(TRUSTED, conversation_id, None, participants)
    for conversation_id, (sender, text) in FIRST_MESSAGES.items():
        await service.send_message(TRUSTED, conversation_id, text, sender_id=sender)
    for conversation_id, sender, text in ACTION_MESSAGES:
        await service.send_message(TRUSTED, conversation_id, text, sender_id=sender)


@pytest.fixture(scope="module")
async def server(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    async with chatbox_server(tmp_path_factory.mktemp("composer"), seed) as base_url:
        yield base_url


@pytest.fixture
async def contexts(browser: Browser, server: str) -> AsyncIterator[Contexts]:
    opened = Contexts(browser, server)
    try:
        yield opened
    finally:
        errors = await opened.close()
    assert errors == []


def composer(page: Page) -> Locator:
    return page.get_by_role("textbox", name="Message")


def typing_indicator(page: Page) -> Locator:
    return page.locator(".tjs-chatbox .tjs-typing")


def events(page: Page) -> Locator:
    return page.get_by_role("list", name="Events").get_by_role("listitem")


async def open_ready(contexts: Contexts, query: str) -> Page:
    """Open the test app and wait until its composer takes input."""
    page = await contexts.open(query)
    await expect(composer(page)).to_be_enabled(timeout=TIMEOUT_MS)
    return page


# Keys


async def test_enter_sends_shift_enter_adds_line(contexts: Contexts) -> None:
    page = await open_ready(contexts, "conversation=keys-conv")
    field = composer(page)
    await field.press_sequentially("line one")
    await field.press("Shift+Enter")
    await field.press_sequentially("line two")
    await expect(field).to_have_value("line one\nline two")
    await expect(message_log(page).locator("[data-message-id]")).to_have_count(0)

    await field.press("Enter")
    await expect(field).to_have_value("")
    text = bubble(page, "line one").locator(".tjs-message__text")
    await expect(text).to_have_text("line one\nline two", timeout=TIMEOUT_MS)
    assert await text.evaluate("node => node.innerText") == "line one\nline two"


# Typing indicator


async def test_typing_shown_then_cleared_by_send(contexts: Contexts) -> None:
    bob = await open_ready(contexts, "user=bob&conversation=typing-send")
    alice = await open_ready(contexts, "conversation=typing-send")
    indicator = typing_indicator(bob)
    await expect(indicator).to_have_text("")

    await composer(alice).press_sequentially("hello Bob")
    await expect(indicator).to_have_text("Alice is typing…", timeout=TIMEOUT_MS)
    await composer(alice).press("Enter")
    await expect(bubble(bob, "hello Bob")).to_be_visible(timeout=TIMEOUT_MS)
    await expect(indicator).to_have_text("")


async def test_typing_expires_when_quiet(contexts: Contexts) -> None:
    bob = await open_ready(contexts, "user=bob&conversation=typing-quiet")
    alice = await open_ready(contexts, "conversation=typing-quiet")
    indicator = typing_indicator(bob)

    await composer(alice).press_sequentially("h")
    await expect(indicator).to_have_text("Alice is typing…", timeout=TIMEOUT_MS)
    # Alice stays in the field and types nothing more: only the expiry,
    # TYPING_EXPIRY_MS after her typing event, turns the indicator off.
    await expect(indicator).to_have_text("", timeout=TYPING_EXPIRY_MS + TIMEOUT_MS)
    await expect(composer(alice)).to_be_focused()
    await expect(composer(alice)).to_have_value("h")
    await expect(events(alice)).to_have_text(["focus"])


async def test_typing_cleared_when_typist_disconnects(contexts: Contexts) -> None:
    server_sides: list[WebSocketRoute] = []

    async def keep_page_side_open(route: WebSocketRoute) -> None:
        server_side = route.connect_to_server()
        # With a close handler, closing the server side leaves the page's side
        # open. The page does not detect the loss and does not reconnect, and
        # it sends no blur or typing=False, as when a network link dies.
        server_side.on_close(lambda _code, _reason: None)
        server_sides.append(server_side)

    async def watch_sockets(page: Page) -> None:
        await page.route_web_socket(re.compile(r"/reactpy/"), keep_page_side_open)

    bob = await open_ready(contexts, "user=bob&conversation=typing-gone")
    alice = await contexts.open("conversation=typing-gone", before=watch_sockets)
    await expect(composer(alice)).to_be_enabled(timeout=TIMEOUT_MS)
    indicator = typing_indicator(bob)
    presence = bob.locator(".tjs-chatbox__header").get_by_role("status")
    await expect(presence).to_have_text("Online", timeout=TIMEOUT_MS)

    await composer(alice).press_sequentially("something unfinished")
    await expect(indicator).to_have_text("Alice is typing…", timeout=TIMEOUT_MS)
    assert len(server_sides) == 1
    await server_sides[0].close()
    await expect(presence).to_have_text("Offline", timeout=TIMEOUT_MS)
    # The header and the indicator follow the same presence event, so the
    # indicator clears right after the header changes: 2 seconds is far less
    # than the TYPING_EXPIRY_MS after which it would clear by itself.
    await expect(indicator).to_have_text("", timeout=2_000)
    await expect(composer(alice)).to_be_focused()


async def test_typing_cleared_when_typist_closes_page(contexts: Contexts) -> None:
    bob = await open_ready(contexts, "user=bob&conversation=typing-closed")
    alice = await open_ready(contexts, "conversation=typing-closed")
    indicator = typing_indicator(bob)

    await composer(alice).press_sequentially("about to close")
    await expect(indicator).to_have_text("Alice is typing…", timeout=TIMEOUT_MS)
    await alice.close()
    presence = bob.locator(".tjs-chatbox__header").get_by_role("status")
    await expect(presence).to_have_text("Offline", timeout=TIMEOUT_MS)
    # As above, 2 seconds after the header changed is far less than the expiry.
    await expect(indicator).to_have_text("", timeout=2_000)


# Drafts


async def test_drafts_kept_per_conversation(contexts: Contexts) -> None:
    sockets: list[WebSocketRoute] = []

    async def pass_through(route: WebSocketRoute) -> None:
        route.connect_to_server()
        sockets.append(route)

    async def watch_sockets(page: Page) -> None:
        await page.route_web_socket(re.compile(r"/reactpy/"), pass_through)

    page = await contexts.open("conversation=draft-a&switch=draft-a,draft-b", before=watch_sockets)
    field = composer(page)
    await expect(bubble(page, "this is conversation a")).to_be_visible(timeout=TIMEOUT_MS)
    await expect(field).to_be_enabled(timeout=TIMEOUT_MS)
    await field.press_sequentially("draft for a")

    async def switch_to(conversation: str, draft: str) -> None:
        await page.get_by_role("button", name=f"Open {conversation}").click()
        shown = bubble(page, f"this is conversation {conversation[-1]}")
        await expect(shown).to_be_visible(timeout=TIMEOUT_MS)
        await expect(field).to_be_enabled(timeout=TIMEOUT_MS)
        await expect(field).to_have_value(draft)

    await switch_to("draft-b", "")
    await field.press_sequentially("draft for b")
    await switch_to("draft-a", "draft for a")
    await switch_to("draft-b", "draft for b")

    # Drop the page's connection to the server: ReactPy reconnects and
    # renders the page afresh, which opens draft-a again.
    assert len(sockets) == 1
    await sockets[0].close()
    await expect(bubble(page, "this is conversation a")).to_be_visible(timeout=TIMEOUT_MS)
    assert len(sockets) == 2
    await expect(field).to_have_value("draft for a", timeout=TIMEOUT_MS)
    await switch_to("draft-b", "draft for b")

    await page.reload()
    await expect(bubble(page, "this is conversation a")).to_be_visible(timeout=TIMEOUT_MS)
    await expect(field).to_have_value("draft for a", timeout=TIMEOUT_MS)


# Events


async def test_on_send_message_rewrites_or_cancels(contexts: Contexts) -> None:
    page = await open_ready(contexts, "conversation=events-conv")
    log = message_log(page)
    rows = log.locator("[data-message-id] .tjs-message__text")

    await send(page, "shout: make it loud")
    await expect(rows.last).to_have_text("MAKE IT LOUD", timeout=TIMEOUT_MS)

    await send(page, "tag: blue")
    await expect(rows.last).to_have_text("tag: blue", timeout=TIMEOUT_MS)
    await expect(events(page).filter(has_text="custom")).to_have_text(["custom tag=blue"])

    await send(page, "cancel: never mind")
    # Sends from one composer are handled in order, so once the next message
    # shows, the cancelled one would have shown before it.
    await send(page, "after the cancel")
    await expect(rows.last).to_have_text("after the cancel", timeout=TIMEOUT_MS)
    await expect(rows).to_have_text(["MAKE IT LOUD", "tag: blue", "after the cancel"])


async def test_focus_and_blur_events(contexts: Contexts) -> None:
    page = await open_ready(contexts, "conversation=focus-conv")
    field = composer(page)
    await expect(field).to_be_focused()
    await expect(events(page)).to_have_text(["focus"], timeout=TIMEOUT_MS)

    await page.get_by_role("button", name="Read chatbox ref").click()
    await expect(field).not_to_be_focused()
    await expect(events(page)).to_have_text(["focus", "blur"], timeout=TIMEOUT_MS)

    await field.click()
    await expect(events(page)).to_have_text(["focus", "blur", "focus"], timeout=TIMEOUT_MS)


async def test_leave_conversation_can_be_prevented(contexts: Contexts) -> None:
    page = await open_ready(contexts, "conversation=leave-conv&keep=1")
    leave = page.get_by_role("button", name="Leave conversation")
    leave_events = events(page).filter(has_text="leave")

    await leave.click()
    await expect(leave_events).to_have_text(["leave leave-conv"], timeout=TIMEOUT_MS)
    # A participant who left could not send, so this message shows she stayed.
    await send(page, "still a participant")
    await expect(bubble(page, "still a participant")).to_be_visible(timeout=TIMEOUT_MS)
    await expect(page.get_by_role("alert")).to_have_count(0)

    await page.get_by_role("button", name="Allow leaving").click()
    await leave.click()
    await expect(leave_events).to_have_count(2, timeout=TIMEOUT_MS)
    await expect(leave).to_have_count(0, timeout=TIMEOUT_MS)
    await expect(composer(page)).to_be_disabled()
    await expect(composer(page)).to_have_attribute(
        "placeholder", "You can read this conversation but not write in it."
    )


# Editing and deleting


async def test_edit_own_message_seen_live(contexts: Contexts) -> None:
    alice = await open_ready(contexts, "conversation=edit-conv")
    bob = await open_ready(contexts, "user=bob&conversation=edit-conv")
    mine = bubble(alice, "edit me please")
    await expect(mine).to_be_visible()
    # Others' messages offer no edit or delete.
    await expect(bubble(alice, "bob's own words").get_by_role("button")).to_have_count(0)
    await expect(bubble(bob, "edit me please").get_by_role("button")).to_have_count(0)

    await mine.get_by_role("button", name="Edit message").click()
    editor = alice.get_by_role("textbox", name="Edit message text")
    await expect(editor).to_be_focused(timeout=TIMEOUT_MS)
    await expect(editor).to_have_value("edit me please")
    await editor.press_sequentially(" now")
    await editor.press("Escape")
    await expect(editor).to_have_count(0, timeout=TIMEOUT_MS)
    await expect(mine.locator(".tjs-message__text")).to_have_text("edit me please")

    await mine.get_by_role("button", name="Edit message").click()
    await expect(editor).to_be_focused(timeout=TIMEOUT_MS)
    await editor.fill("edited by alice")
    await editor.press("Enter")
    edited = bubble(alice, "edited by alice")
    await expect(edited.locator(".tjs-message__text")).to_have_text(
        "edited by alice", timeout=TIMEOUT_MS
    )
    await expect(edited.locator(".tjs-message__edited")).to_have_text("(edited)")
    seen = bubble(bob, "edited by alice")
    await expect(seen.locator(".tjs-message__text")).to_have_text(
        "edited by alice", timeout=TIMEOUT_MS
    )
    await expect(seen.locator(".tjs-message__edited")).to_have_text("(edited)")
    await expect(bubble(bob, "edit me please")).to_have_count(0)


async def test_delete_asks_first_seen_live(contexts: Contexts) -> None:
    alice = await open_ready(contexts, "conversation=delete-conv")
    bob = await open_ready(contexts, "user=bob&conversation=delete-conv")
    doomed = bubble(alice, "delete me please")
    await expect(doomed).to_be_visible()
    await expect(bubble(bob, "delete me please")).to_be_visible()
    confirm = doomed.get_by_role("group", name="Delete this message?")

    await doomed.get_by_role("button", name="Delete message").click()
    await expect(confirm).to_be_visible(timeout=TIMEOUT_MS)
    await confirm.get_by_role("button", name="Cancel").click()
    await expect(confirm).to_have_count(0, timeout=TIMEOUT_MS)
    await expect(doomed).to_be_visible()

    await doomed.get_by_role("button", name="Delete message").click()
    await confirm.get_by_role("button", name="Delete", exact=True).click()
    await expect(doomed).to_have_count(0, timeout=TIMEOUT_MS)
    await expect(bubble(bob, "delete me please")).to_have_count(0, timeout=TIMEOUT_MS)
    await expect(bubble(alice, "bob stays")).to_be_visible()
