"""Screenshots of the components for docs/ui.md, taken in Chromium.

The pages come from ``tests/apps/showcase_app.py``.

Each test renders one view, waits until its content has loaded, checks the key
elements, and saves a PNG. With ``TALKJS_UPDATE_SCREENSHOTS=1`` the PNGs go to
``docs/images/``, to be committed after a visible change. Otherwise they go to
the test's temporary directory, so a normal test run leaves the repository
alone.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, BrowserContext, Page

from .apps.boxes_world import checked_context, expect
from .apps.showcase_data import HEBREW_LAST_MESSAGE, YOSSI_NAME
from .demo_server import free_port, running_server, uvicorn_command

ROOT = Path(__file__).resolve().parent.parent
IMAGES = ROOT / "docs" / "images"
UPDATE_VARIABLE = "TALKJS_UPDATE_SCREENSHOTS"
MAX_PNG_BYTES = 150_000
"""Upper bound of one screenshot's size, so the docs stay light."""


@pytest.fixture(scope="module")
async def server(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    directory = tmp_path_factory.mktemp("showcase")
    port = free_port()
    command = uvicorn_command("tests.apps.showcase_app:app", port)
    environment = {"TALKJS_DATA": str(directory / "chat.sqlite3")}
    async with running_server(command, port, directory / "log", environment) as base_url:
        yield base_url


@pytest.fixture
def output_directory(tmp_path: Path) -> Path:
    """Return where screenshots go: docs/images when updating them, else a temporary directory."""
    if os.environ.get(UPDATE_VARIABLE) == "1":
        IMAGES.mkdir(parents=True, exist_ok=True)
        return IMAGES
    return tmp_path


@pytest.fixture
async def context(browser: Browser) -> AsyncIterator[BrowserContext]:
    # A fixed locale and time zone make dates and times read the same on every machine.
    async with checked_context(
        browser, width=900, height=600, locale="en-US", timezone_id="Europe/Berlin"
    ) as created:
        yield created


async def open_view(context: BrowserContext, server: str, view: str) -> Page:
    page = await context.new_page()
    await page.emulate_media(reduced_motion="reduce")
    await page.goto(f"{server}/?view={view}")
    return page


CHATBOX_STYLES = ("talkjs-components-style",)
"""Ids of the style elements that the JS modules of a Chatbox add to the page."""
BOX_STYLES = (*CHATBOX_STYLES, "talkjs-boxes-style")
"""The same for an Inbox or a Popup."""


DECODE_SHOWN_PICTURES = """async () => {
    const intersecting = (image) => new Promise((resolve) => {
        const observer = new IntersectionObserver(([entry]) => {
            observer.disconnect();
            resolve(entry.isIntersecting);
        });
        observer.observe(image);
    });
    const images = Array.from(document.images);
    const inView = await Promise.all(images.map(intersecting));
    await Promise.all(images.filter((_, index) => inView[index]).map((image) => image.decode()));
}"""
"""Wait until every picture in the viewport has loaded; reject if one fails to load.

Avatars load lazily (``loading="lazy"``), so a picture outside the viewport,
or in a hidden part such as the feed of a narrow Inbox, may never load.
"""

PICTURES_TIMEOUT = 30.0
"""Seconds the pictures in the viewport may take to load."""


async def save_screenshot(
    page: Page, directory: Path, name: str, styles: tuple[str, ...] = BOX_STYLES
) -> Path:
    """Wait for styles, fonts and pictures, then save the viewport as ``name``.png."""
    # Python renders plain elements before the JS modules that style them have loaded.
    await page.wait_for_function(
        "ids => ids.every((id) => document.getElementById(id) !== null)", arg=list(styles)
    )
    await page.evaluate("() => document.fonts.ready.then(() => undefined)")
    await asyncio.wait_for(page.evaluate(DECODE_SHOWN_PICTURES), PICTURES_TIMEOUT)
    path = directory / f"{name}.png"
    await page.screenshot(path=path, animations="disabled", caret="hide")
    size = path.stat().st_size
    assert 0 < size <= MAX_PNG_BYTES, f"{path} has {size} bytes"
    return path


async def test_screenshot_chatbox(
    context: BrowserContext, server: str, output_directory: Path
) -> None:
    page = await open_view(context, server, "chatbox")
    log = page.get_by_role("log", name="Messages")
    await expect(log).to_contain_text("Reads well. Let's go!")
    header = page.locator(".tjs-chatbox__header")
    await expect(header).to_contain_text("Product launch")
    await expect(header).to_contain_text("2 online")
    await expect(log.locator("strong")).to_have_text("2 pm")
    await expect(log.get_by_role("link")).to_have_attribute(
        "href", "https://example.com/blog/launch"
    )
    await expect(log.locator(".tjs-message__receipt").last).to_have_text("Read")
    await expect(page.get_by_role("textbox", name="Message")).to_be_enabled()
    await save_screenshot(page, output_directory, "chatbox", CHATBOX_STYLES)


async def test_screenshot_inbox(
    context: BrowserContext, server: str, output_directory: Path
) -> None:
    page = await open_view(context, server, "inbox")
    feed = page.get_by_role("list", name="Conversations")
    await expect(feed.get_by_role("listitem")).to_have_count(5)
    await expect(page.locator(".tjs-feed__title")).to_have_text(
        ["Product launch", "Daniel Okafor", "Lena Fischer", YOSSI_NAME, "Billing question"]
    )
    await expect(page.locator('[data-conversation-id="launch"] button')).to_have_attribute(
        "aria-current", "true"
    )
    badge = page.locator('[data-conversation-id="daniel-maya"] .tjs-feed__badge')
    await expect(badge).to_contain_text("2 unread messages")
    await expect(page.get_by_role("log", name="Messages")).to_contain_text("Reads well. Let's go!")
    await save_screenshot(page, output_directory, "inbox")


async def test_screenshot_popup(
    context: BrowserContext, server: str, output_directory: Path
) -> None:
    page = await open_view(context, server, "popup")
    dialog = page.get_by_role("dialog", name="Chat")
    await expect(dialog.get_by_role("log", name="Messages")).to_contain_text(
        "Perfect, see you then."
    )
    await expect(dialog.locator(".tjs-chatbox__header")).to_contain_text("Online")
    launcher = page.get_by_role("button", name="Close chat")
    await expect(launcher).to_be_visible()
    # Daniel's two and Yossi's one unread message.
    await expect(launcher.locator(".tjs-popup__count [aria-hidden=true]")).to_have_text("3")
    await expect(page.get_by_role("heading", name="Acme Projects")).to_be_visible()
    await save_screenshot(page, output_directory, "popup")


async def test_screenshot_rtl(context: BrowserContext, server: str, output_directory: Path) -> None:
    page = await open_view(context, server, "rtl")
    chatbox = page.locator(".tjs-chatbox")
    await expect(chatbox).to_have_attribute("dir", "rtl")
    log = page.get_by_role("log", name="Messages")
    await expect(log).to_contain_text(HEBREW_LAST_MESSAGE)
    await expect(page.locator(".tjs-chatbox__header")).to_contain_text(YOSSI_NAME)
    # Own messages sit on the left in a right-to-left conversation.
    own = await log.locator(".tjs-message--own").first.bounding_box()
    other = await log.locator(".tjs-message--other").first.bounding_box()
    assert own is not None and other is not None
    assert own["x"] < other["x"]
    await save_screenshot(page, output_directory, "rtl", CHATBOX_STYLES)


async def test_screenshot_narrow(
    context: BrowserContext, server: str, output_directory: Path
) -> None:
    page = await context.new_page()
    await page.set_viewport_size({"width": 390, "height": 600})
    await page.goto(f"{server}/?view=inbox")
    await expect(page.get_by_role("log", name="Messages")).to_contain_text("Reads well. Let's go!")
    await expect(page.get_by_role("button", name="Back to conversations")).to_be_visible()
    await expect(page.get_by_role("list", name="Conversations")).to_be_hidden()
    await save_screenshot(page, output_directory, "narrow")
