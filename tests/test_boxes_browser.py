"""Inbox and Popup in Chromium: keyboard use, the narrow layout, Escape and keep_open."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, BrowserContext, Locator, Page, expect

from .demo_server import free_port, running_server

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT_MS = 15_000


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[str]:
    port = free_port()
    command = [
        sys.executable, "-m", "uvicorn", "tests.apps.boxes_app:app",
        "--app-dir", str(ROOT), "--port", str(port), "--log-level", "warning",
    ]  # fmt: skip
    environment = {"TALKJS_DATA": str(tmp_path / "chat.sqlite3")}
    async with running_server(command, port, tmp_path / "log", environment) as base_url:
        yield base_url


@pytest.fixture
async def context(browser: Browser) -> AsyncIterator[BrowserContext]:
    """A browser context whose pages must raise no uncaught JavaScript error."""
    created = await browser.new_context(viewport={"width": 1100, "height": 800})
    errors: list[str] = []
    created.on("weberror", lambda error: errors.append(str(error.error)))
    try:
        yield created
    finally:
        await created.close()
    assert errors == []


async def open_inbox(context: BrowserContext, url: str) -> Page:
    page = await context.new_page()
    await page.goto(url + "/?view=inbox&user=alice")
    feed = page.get_by_role("list", name="Conversations")
    await expect(feed.get_by_role("listitem")).to_have_count(3, timeout=TIMEOUT_MS)
    return page


def feed_item(page: Page, conversation_id: str) -> Locator:
    return page.locator(f'[data-conversation-id="{conversation_id}"] button')


async def test_inbox_keyboard_selects(context: BrowserContext, server: str) -> None:
    page = await open_inbox(context, server)
    items = page.get_by_role("list", name="Conversations").get_by_role("listitem")
    ids = [await item.get_attribute("data-conversation-id") for item in await items.all()]
    assert ids == ["boxes-bob", "boxes-carol", "boxes-group"]
    await expect(feed_item(page, "boxes-bob")).to_contain_text("Bob: Hi Alice from Bob")
    await expect(feed_item(page, "boxes-bob")).to_contain_text("1 unread message")

    await page.keyboard.press("Tab")
    await expect(feed_item(page, "boxes-bob")).to_be_focused()
    await page.keyboard.press("Enter")
    log = page.get_by_role("log", name="Messages")
    await expect(log).to_contain_text("Hi Alice from Bob", timeout=TIMEOUT_MS)
    await expect(feed_item(page, "boxes-bob")).to_have_attribute("aria-current", "true")
    # The Chatbox focuses its composer; in the wide layout the feed stays visible.
    await expect(page.get_by_role("textbox", name="Message")).to_be_focused()
    await expect(feed_item(page, "boxes-bob")).to_be_visible()
    await expect(page.get_by_role("button", name="Back to conversations")).to_be_hidden()

    await feed_item(page, "boxes-carol").focus()
    await page.keyboard.press("Space")
    await expect(log).to_contain_text("Carol says hi", timeout=TIMEOUT_MS)
    await expect(feed_item(page, "boxes-carol")).to_have_attribute("aria-current", "true")
    await expect(feed_item(page, "boxes-bob")).not_to_have_attribute("aria-current", "true")


async def test_inbox_relative_time(context: BrowserContext, server: str) -> None:
    page = await context.new_page()
    await page.clock.install()
    await page.goto(server + "/?view=inbox&user=alice")
    time = feed_item(page, "boxes-bob").locator("time")
    await expect(time).to_have_text("now", timeout=TIMEOUT_MS)
    await page.clock.fast_forward("05:00")
    await expect(time).to_have_text("5 min", timeout=TIMEOUT_MS)


async def test_inbox_narrow_shows_one_pane(context: BrowserContext, server: str) -> None:
    page = await context.new_page()
    await page.set_viewport_size({"width": 400, "height": 700})
    await page.goto(server + "/?view=inbox&user=alice")
    feed = page.get_by_role("list", name="Conversations")
    await expect(feed.get_by_role("listitem")).to_have_count(3, timeout=TIMEOUT_MS)
    back = page.get_by_role("button", name="Back to conversations")
    composer = page.get_by_role("textbox", name="Message")
    await expect(back).to_be_hidden()
    await expect(composer).to_be_hidden()

    await feed_item(page, "boxes-group").click()
    log = page.get_by_role("log", name="Messages")
    await expect(log).to_contain_text("Welcome to the team", timeout=TIMEOUT_MS)
    await expect(feed).to_be_hidden()
    await expect(back).to_be_visible()
    await expect(composer).to_be_focused()

    await back.focus()
    await page.keyboard.press("Enter")
    await expect(feed).to_be_visible()
    await expect(log).to_be_hidden()
    await expect(back).to_be_hidden()
    await expect(feed_item(page, "boxes-group")).to_be_focused()


async def open_popup(context: BrowserContext, url: str, query: str = "") -> Page:
    page = await context.new_page()
    await page.goto(url + "/?view=popup&user=alice" + query)
    await expect(page.get_by_role("button", name="Open chat")).to_be_visible(timeout=TIMEOUT_MS)
    return page


async def test_popup_launcher_and_escape(context: BrowserContext, server: str) -> None:
    page = await open_popup(context, server)
    launcher = page.locator(".tjs-popup__launcher")
    dialog = page.get_by_role("dialog", name="Chat")
    events = page.get_by_role("list", name="Events")
    await expect(launcher).to_have_accessible_name("Open chat")
    await expect(launcher).to_contain_text("3")
    await expect(dialog).to_have_count(0)

    await launcher.click()
    await expect(dialog).to_be_visible()
    await expect(dialog.get_by_role("log", name="Messages")).to_contain_text(
        "Welcome to the team", timeout=TIMEOUT_MS
    )
    await expect(launcher).to_have_accessible_name("Close chat")
    await expect(events).to_have_text("open")

    await dialog.get_by_role("textbox", name="Message").focus()
    await page.keyboard.press("Escape")
    await expect(dialog).to_have_count(0)
    await expect(launcher).to_be_focused()
    await expect(launcher).to_have_accessible_name("Open chat")
    await expect(events).to_have_text("openclose")

    await launcher.click()
    await expect(dialog).to_be_visible()
    await dialog.get_by_role("button", name="Close", exact=True).click()
    await expect(dialog).to_have_count(0)
    await expect(launcher).to_be_focused()
    await expect(events).to_have_text("opencloseopenclose")


async def test_popup_keep_open_survives_reload(context: BrowserContext, server: str) -> None:
    page = await open_popup(context, server, "&keep_open=1")
    dialog = page.get_by_role("dialog", name="Chat")
    await page.get_by_role("button", name="Open chat").click()
    await expect(dialog).to_be_visible()

    await page.reload()
    await expect(dialog).to_be_visible(timeout=TIMEOUT_MS)
    await expect(page.get_by_role("button", name="Close chat")).to_be_visible()
    # Restoring is not a user action, so no open event is reported.
    await expect(page.get_by_role("list", name="Events")).to_have_text("")

    await page.get_by_role("button", name="Close chat").click()
    await expect(dialog).to_have_count(0)
    await page.reload()
    await expect(page.get_by_role("button", name="Open chat")).to_be_visible(timeout=TIMEOUT_MS)
    await page.wait_for_timeout(500)
    await expect(dialog).to_have_count(0)


async def test_popup_without_keep_open_starts_closed(context: BrowserContext, server: str) -> None:
    page = await open_popup(context, server)
    await page.get_by_role("button", name="Open chat").click()
    await expect(page.get_by_role("dialog", name="Chat")).to_be_visible()
    await page.reload()
    await expect(page.get_by_role("button", name="Open chat")).to_be_visible(timeout=TIMEOUT_MS)
    await page.wait_for_timeout(500)
    await expect(page.get_by_role("dialog", name="Chat")).to_have_count(0)
