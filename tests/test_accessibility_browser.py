"""Accessibility of the Chatbox, Inbox and Popup in Chromium.

Covers keyboard operation (Tab order, Enter, Escape, focus that survives
re-renders), accessible names of every control, the message list as a polite
live region, and a visible focus indicator on every focusable control. Pages
come from ``tests/apps/boxes_app.py``; each test seeds its own world.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
from playwright.async_api import Browser, BrowserContext, Locator, Page

from .apps.boxes_world import World, checked_context, expect, running_boxes_app, seed_world

FOCUSABLE = (
    "button:not([disabled]), textarea:not([disabled]), input:not([disabled]), select, a[href], "
    '[tabindex]:not([tabindex="-1"])'
)
"""Elements that the Tab key can reach, as a CSS selector."""

COMPONENT_ROOTS = ".tjs-chatbox, .tjs-inbox, .tjs-popup"

# The active element as "<role or tag> <accessible label or text>", for
# readable Tab-order assertions. Feed items are named by their conversation.
DESCRIBE_ACTIVE = """() => {
  const element = document.activeElement;
  if (!element || element === document.body) return "body";
  const item = element.closest("[data-conversation-id]");
  if (item) return "feed " + item.dataset.conversationId;
  const kind = element.getAttribute("role") || element.tagName.toLowerCase();
  const label = element.getAttribute("aria-label") || element.textContent.trim();
  return kind + " " + label;
}"""

# Computed focus indicator styles of an element: outline and box shadow.
STYLE_OF = """element => {
  const style = getComputedStyle(element);
  return [style.outlineStyle, style.outlineWidth, style.outlineColor, style.boxShadow].join(" | ");
}"""

# Numbers each visible focusable element of the components in a data-focus-check
# attribute and returns its unfocused style by number.
MARK_FOCUSABLE = f"""([roots, focusable]) => {{
  const styleOf = {STYLE_OF};
  for (const old of document.querySelectorAll("[data-focus-check]")) {{
    old.removeAttribute("data-focus-check");
  }}
  const found = new Set();
  for (const root of document.querySelectorAll(roots)) {{
    for (const element of root.querySelectorAll(focusable)) {{
      if (element.getClientRects().length > 0) found.add(element);
    }}
  }}
  const styles = {{}};
  let number = 0;
  for (const element of found) {{
    element.dataset.focusCheck = String(number);
    styles[number] = styleOf(element);
    number += 1;
  }}
  return styles;
}}"""


@pytest.fixture(scope="module")
async def server(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    async with running_boxes_app(tmp_path_factory.mktemp("accessibility")) as base_url:
        yield base_url


@pytest.fixture
async def world(server: str) -> World:
    return await seed_world(server)


@pytest.fixture
async def context(browser: Browser) -> AsyncIterator[BrowserContext]:
    async with checked_context(browser) as created:
        yield created


def chat_log(scope: Page | Locator) -> Locator:
    return scope.get_by_role("log", name="Messages")


async def expect_chat_ready(scope: Page | Locator, text: str) -> None:
    """Wait until the chat shows ``text`` and its composer has taken the focus.

    The composer focuses itself once its conversation has loaded. Waiting for
    that keeps it from taking the focus in the middle of a keyboard test.
    """
    await expect(chat_log(scope)).to_contain_text(text)
    await expect(scope.get_by_role("textbox", name="Message")).to_be_focused()


async def describe_active(page: Page) -> str:
    description: str = await page.evaluate(DESCRIBE_ACTIVE)
    return description


async def start_tab_walk(page: Page) -> None:
    """Put the keyboard's starting point before the components: on the page heading."""
    await page.get_by_role("heading", name="Boxes test page").click()
    assert await describe_active(page) == "body"


async def open_page(context: BrowserContext, url: str) -> Page:
    page = await context.new_page()
    await page.goto(url)
    await expect(page.get_by_role("button", name="Check ref")).to_be_visible()
    return page


async def open_chatbox_with_own_message(context: BrowserContext, world: World) -> Page:
    """Open the group in a Chatbox as alice, with one message of hers in it."""
    await world.send("group", "alice", "My own message")
    page = await open_page(context, world.url(view="chatbox", user="alice"))
    await expect_chat_ready(page, "My own message")
    await expect(page.get_by_role("button", name="Edit message")).to_be_visible()
    return page


async def open_inbox_with_own_message(context: BrowserContext, world: World) -> Page:
    """Open alice's Inbox with the group selected and one message of hers in it."""
    await world.send("group", "alice", "My own message")
    page = await open_page(context, world.url(view="inbox", user="alice", conversation="group"))
    await expect_chat_ready(page, "My own message")
    await expect(page.get_by_role("button", name="Edit message")).to_be_visible()
    await expect(page.locator("[data-conversation-id]")).to_have_count(4)
    return page


async def show_new_messages_button(page: Page, world: World) -> Locator:
    """Fill the group with bob's messages, scroll up, and make the "New messages" button show."""
    for number in range(30):
        await world.send("group", "bob", f"Update number {number}")
    await expect(chat_log(page)).to_contain_text("Update number 29")
    await chat_log(page).evaluate("log => { log.scrollTop = 0; }")
    await world.send("group", "bob", "One more update")
    button = page.get_by_role("button", name="New messages ↓")
    await expect(button).to_be_visible()
    return button


# --- The message list ---------------------------------------------------------------


async def test_message_list_is_polite_log(context: BrowserContext, world: World) -> None:
    page = await open_chatbox_with_own_message(context, world)
    log = chat_log(page)
    await expect(log).to_have_count(1)
    await expect(log).to_have_attribute("aria-live", "polite")
    # In the Tab order, so keyboard users can scroll it.
    await expect(log).to_have_attribute("tabindex", "0")
    await expect(log.locator("[data-message-id]")).to_have_count(2)


# --- Names --------------------------------------------------------------------------


async def expect_named_controls(page: Page, minimum: int) -> int:
    """Check that every visible focusable element and landmark of the components has a name.

    Returns how many focusable elements were checked, which must be at least ``minimum``.
    """
    roots = page.locator(COMPONENT_ROOTS)
    await expect(roots.first).to_be_attached()
    controls = await roots.locator(FOCUSABLE).filter(visible=True).all()
    for control in controls:
        await expect(control).to_have_accessible_name(re.compile(r"\S"))
    for role in ("log", "dialog", "list"):
        for element in await roots.get_by_role(role).all():
            await expect(element).to_have_accessible_name(re.compile(r"\S"))
    assert len(controls) >= minimum, f"only {len(controls)} focusable elements found"
    return len(controls)


async def test_chatbox_controls_have_names(context: BrowserContext, world: World) -> None:
    page = await open_chatbox_with_own_message(context, world)
    # Leave, the log, Edit, Delete and the composer. Send is disabled while the composer is empty.
    await expect_named_controls(page, minimum=5)

    await page.get_by_role("button", name="Edit message").click()
    await expect(page.get_by_role("textbox", name="Edit message text")).to_be_focused()
    await expect(page.get_by_role("button", name="Save")).to_be_visible()
    await expect_named_controls(page, minimum=6)
    await page.get_by_role("button", name="Cancel").click()

    await page.get_by_role("button", name="Delete message").click()
    confirmation = page.get_by_role("group", name="Delete this message?")
    await expect(confirmation.get_by_role("button", name="Delete")).to_be_visible()
    await expect_named_controls(page, minimum=5)
    await confirmation.get_by_role("button", name="Cancel").click()

    await page.get_by_role("textbox", name="Message").fill("Draft")
    await expect(page.get_by_role("button", name="Send")).to_be_enabled()
    await show_new_messages_button(page, world)
    await expect_named_controls(page, minimum=7)


async def test_inbox_and_popup_controls_have_names(context: BrowserContext, world: World) -> None:
    page = await open_inbox_with_own_message(context, world)
    # Four feed items, Leave, the log, Edit, Delete and the composer.
    await expect_named_controls(page, minimum=9)
    await expect(page.locator(".tjs-feed__button").first).to_have_accessible_name(
        re.compile(r"^Team now You: My own message")
    )

    await page.set_viewport_size({"width": 400, "height": 700})
    await expect(page.get_by_role("button", name="Back to conversations")).to_be_visible()
    await expect_named_controls(page, minimum=6)

    await page.set_viewport_size({"width": 1100, "height": 800})
    await page.goto(world.url(view="popup", user="alice"))
    launcher = page.get_by_role("button", name="Open chat")
    await expect(launcher).to_be_visible()
    await expect_named_controls(page, minimum=1)
    await launcher.click()
    dialog = page.get_by_role("dialog", name="Chat")
    await expect_chat_ready(dialog, "My own message")
    await expect(dialog.get_by_role("button", name="Edit message")).to_be_visible()
    # The launcher, Close, Leave, the log, Edit, Delete and the composer.
    await expect_named_controls(page, minimum=7)


# --- Keyboard -----------------------------------------------------------------------


async def test_tab_order_through_inbox_and_chat(context: BrowserContext, world: World) -> None:
    page = await open_inbox_with_own_message(context, world)
    await page.get_by_role("textbox", name="Message").fill("Hello")

    await start_tab_walk(page)
    visited = []
    for _ in range(11):
        await page.keyboard.press("Tab")
        visited.append(await describe_active(page))
    assert visited == [
        f"feed {world.id('group')}",
        f"feed {world.id('bob')}",
        f"feed {world.id('carol')}",
        f"feed {world.id('news')}",
        "button Leave conversation",
        "log Messages",
        "button Edit message",
        "button Delete message",
        "textarea Message",
        "button Send",
        "button Check ref",
    ]

    # Shift+Tab walks the same order backwards.
    for expected in reversed(visited[:-1]):
        await page.keyboard.press("Shift+Tab")
        assert await describe_active(page) == expected

    # Enter on a feed item selects it.
    await page.keyboard.press("Tab")
    await page.keyboard.press("Enter")
    await expect(chat_log(page)).to_contain_text("Hi Alice from Bob")
    await expect(page.get_by_role("textbox", name="Message")).to_be_focused()


async def test_feed_focus_survives_reorder(context: BrowserContext, world: World) -> None:
    page = await open_page(context, world.url(view="inbox", user="alice"))
    carol = page.locator(f'[data-conversation-id="{world.id("carol")}"] button')
    await expect(carol).to_be_visible()
    await start_tab_walk(page)
    await page.keyboard.press("Tab")
    await page.keyboard.press("Tab")
    assert await describe_active(page) == f"feed {world.id('carol')}"

    # A message moves Carol's conversation to the top; focus stays on it.
    await world.send("carol", "carol", "Moving up")
    await expect(carol).to_contain_text("Moving up")
    await expect(page.locator("[data-conversation-id]").first).to_have_attribute(
        "data-conversation-id", world.id("carol")
    )
    await expect(carol).to_be_focused()
    # A message that moves another conversation leaves the focus alone too.
    await world.send("group", "bob", "Group news")
    await expect(page.locator("[data-conversation-id]").first).to_have_attribute(
        "data-conversation-id", world.id("group")
    )
    await expect(carol).to_be_focused()
    await page.keyboard.press("Enter")
    await expect(chat_log(page)).to_contain_text("Moving up")


async def test_edit_and_delete_by_keyboard(context: BrowserContext, world: World) -> None:
    page = await open_chatbox_with_own_message(context, world)
    composer = page.get_by_role("textbox", name="Message")
    edit = page.get_by_role("button", name="Edit message")
    delete = page.get_by_role("button", name="Delete message")

    # Enter in the composer sends, Shift+Enter adds a line.
    await composer.focus()
    await page.keyboard.type("Line one")
    await page.keyboard.press("Shift+Enter")
    await page.keyboard.type("Line two")
    await page.keyboard.press("Enter")
    sent = chat_log(page).locator(".tjs-message__text", has_text="Line one")
    await expect(sent).to_be_visible()
    assert await sent.text_content() == "Line one\nLine two"
    await expect(composer).to_have_value("")
    await expect(composer).to_be_focused()

    # Escape in the editor cancels, and focus returns to the message's Edit button.
    first_edit = edit.first
    await first_edit.focus()
    await page.keyboard.press("Enter")
    editor = page.get_by_role("textbox", name="Edit message text")
    await expect(editor).to_be_focused()
    await page.keyboard.type(" (draft)")
    await page.keyboard.press("Escape")
    await expect(editor).to_have_count(0)
    await expect(first_edit).to_be_focused()
    await expect(chat_log(page)).not_to_contain_text("(draft)")

    # Enter in the editor saves.
    await page.keyboard.press("Enter")
    await expect(editor).to_be_focused()
    await page.keyboard.type(" (edited by keyboard)")
    await page.keyboard.press("Enter")
    await expect(chat_log(page)).to_contain_text("My own message (edited by keyboard)")
    await expect(editor).to_have_count(0)
    await expect(first_edit).to_be_focused()

    # Escape in the delete confirmation cancels it and keeps focus in the message.
    await page.keyboard.press("Tab")
    await expect(delete.first).to_be_focused()
    await page.keyboard.press("Enter")
    confirmation = page.get_by_role("group", name="Delete this message?")
    await expect(confirmation).to_be_visible()
    assert (await describe_active(page)).startswith("button ")
    assert await confirmation.evaluate("group => group.contains(document.activeElement)")
    await page.keyboard.press("Escape")
    await expect(confirmation).to_have_count(0)
    assert await page.evaluate(
        "() => document.activeElement.closest('[data-message-id]') !== null"
    ), await describe_active(page)
    await expect(chat_log(page)).to_contain_text("My own message (edited by keyboard)")

    # Confirming deletes the message and leaves focus on the list.
    await delete.first.focus()
    await page.keyboard.press("Enter")
    await confirmation.get_by_role("button", name="Delete").focus()
    await page.keyboard.press("Enter")
    await expect(chat_log(page)).not_to_contain_text("My own message")
    await expect(chat_log(page)).to_be_focused()


async def test_popup_by_keyboard(context: BrowserContext, world: World) -> None:
    await world.send("group", "alice", "My own message")
    page = await open_page(context, world.url(view="popup", user="alice"))
    launcher = page.locator(".tjs-popup__launcher")
    await expect(launcher).to_be_visible()
    await start_tab_walk(page)
    await page.keyboard.press("Tab")
    await expect(launcher).to_be_focused()

    await page.keyboard.press("Enter")
    dialog = page.get_by_role("dialog", name="Chat")
    await expect(chat_log(dialog)).to_contain_text("My own message")
    composer = dialog.get_by_role("textbox", name="Message")
    await expect(composer).to_be_focused()
    await page.keyboard.type("Sent from the popup")
    await page.keyboard.press("Enter")
    await expect(chat_log(dialog)).to_contain_text("Sent from the popup")

    # Escape in the message editor cancels the edit and leaves the popup open.
    await dialog.get_by_role("button", name="Edit message").first.focus()
    await page.keyboard.press("Enter")
    await expect(dialog.get_by_role("textbox", name="Edit message text")).to_be_focused()
    await page.keyboard.press("Escape")
    await expect(dialog.get_by_role("textbox", name="Edit message text")).to_have_count(0)
    await expect(dialog).to_be_visible()

    # Escape in the delete confirmation cancels it and leaves the popup open.
    await dialog.get_by_role("button", name="Delete message").first.focus()
    await page.keyboard.press("Enter")
    confirmation = dialog.get_by_role("group", name="Delete this message?")
    await expect(confirmation).to_be_visible()
    await page.keyboard.press("Escape")
    await expect(confirmation).to_have_count(0)
    await expect(dialog).to_be_visible()

    # Escape elsewhere in the popup closes it and returns focus to the launcher.
    await composer.focus()
    await page.keyboard.press("Escape")
    await expect(dialog).to_have_count(0)
    await expect(launcher).to_be_focused()
    await expect(page.get_by_role("list", name="Events").get_by_role("listitem")).to_have_text(
        ["open", "close"]
    )


# --- Visible focus ---------------------------------------------------------------------


async def expect_focus_visible_on_tab(page: Page, steps: int) -> list[str]:
    """Tab through the page and check each focused control of the components shows focus.

    Each control's outline and box shadow while focused by keyboard must
    differ from its unfocused style, recorded before the walk. Every
    focusable element of the components must be reached. Returns the
    descriptions of the controls checked.
    """
    # Nothing may be focused while the unfocused styles are taken.
    await start_tab_walk(page)
    unfocused: dict[str, str] = await page.evaluate(MARK_FOCUSABLE, [COMPONENT_ROOTS, FOCUSABLE])
    assert unfocused, "no focusable element found in the components"

    checked: list[str] = []
    reached: set[str] = set()
    for _ in range(steps):
        await page.keyboard.press("Tab")
        state: dict[str, Any] = await page.evaluate(
            "() => { const element = document.activeElement;"
            " return { marker: element.dataset.focusCheck ?? null }; }"
        )
        marker = state["marker"]
        if marker is None:
            continue
        description = await describe_active(page)
        focused_style = await page.evaluate(f"() => ({STYLE_OF})(document.activeElement)")
        assert focused_style != unfocused[marker], (
            f"{description} looks the same focused and unfocused: {focused_style}"
        )
        reached.add(marker)
        checked.append(description)
    missing = sorted(set(unfocused) - reached, key=int)
    assert not missing, f"Tab never reached focusable elements {missing}; reached {checked}"
    return checked


async def test_focus_visible_in_inbox_and_chat(context: BrowserContext, world: World) -> None:
    page = await open_inbox_with_own_message(context, world)
    await page.get_by_role("textbox", name="Message").fill("Hello")
    checked = await expect_focus_visible_on_tab(page, steps=12)
    assert "log Messages" in checked
    assert "button Send" in checked

    # The narrow layout's Back button.
    await page.set_viewport_size({"width": 400, "height": 700})
    back = page.get_by_role("button", name="Back to conversations")
    await expect(back).to_be_visible()
    checked = await expect_focus_visible_on_tab(page, steps=8)
    assert "button Back to conversations" in checked


async def test_focus_visible_in_chatbox_editing(context: BrowserContext, world: World) -> None:
    page = await open_chatbox_with_own_message(context, world)
    await page.get_by_role("button", name="Edit message").click()
    await expect(page.get_by_role("textbox", name="Edit message text")).to_be_visible()
    checked = await expect_focus_visible_on_tab(page, steps=8)
    assert "textarea Edit message text" in checked
    assert "button Save" in checked
    await page.get_by_role("button", name="Cancel").click()

    await page.get_by_role("button", name="Delete message").click()
    await expect(page.get_by_role("group", name="Delete this message?")).to_be_visible()
    checked = await expect_focus_visible_on_tab(page, steps=8)
    assert "button Delete" in checked

    await page.get_by_role("button", name="Cancel").click()
    await show_new_messages_button(page, world)
    checked = await expect_focus_visible_on_tab(page, steps=8)
    assert "button New messages ↓" in checked


async def test_focus_visible_in_popup(context: BrowserContext, world: World) -> None:
    page = await open_page(context, world.url(view="popup", user="alice"))
    launcher = page.get_by_role("button", name="Open chat")
    await expect(launcher).to_be_visible()
    await launcher.click()
    dialog = page.get_by_role("dialog", name="Chat")
    await expect_chat_ready(dialog, "Welcome to the team")
    checked = await expect_focus_visible_on_tab(page, steps=8)
    assert checked[:2] == ["button Close chat", "button Close"]
