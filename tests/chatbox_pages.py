"""Helpers of the Chatbox browser tests: the test app's server, browser contexts and pages.

The server runs tests/apps/chatbox_app.py under uvicorn in a child process on
a SQLite file that the test module seeded first.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

from playwright.async_api import Browser, BrowserContext, Locator, Page, expect

from talkjs_components.service import ChatService

from .apps.chatbox_data import seeding_service
from .demo_server import free_port, running_server, uvicorn_command

__all__ = [
    "TIMEOUT_MS",
    "Contexts",
    "bubble",
    "chatbox_server",
    "message_log",
    "receipt",
    "send",
]


TIMEOUT_MS = 15_000
"""Milliseconds to wait for anything that needs the server, such as a page's first render."""


@contextlib.asynccontextmanager
async def chatbox_server(
    directory: Path, seed: Callable[[ChatService], Awaitable[Callable[[Path], None] | None]]
) -> AsyncIterator[str]:
    """Seed a database in ``directory``, serve the Chatbox test app on it; yield the base URL.

    ``seed`` writes conversations and messages through the service. It may
    return a function that changes the closed database file before the server
    opens it, such as one that backdates messages.
    """
    database = directory / "chat.sqlite3"
    async with seeding_service(database) as service:
        after_close = await seed(service)
    if after_close is not None:
        after_close(database)
    port = free_port()
    command = uvicorn_command("tests.apps.chatbox_app:app", port)
    environment = {"TALKJS_DATA": str(database)}
    async with running_server(command, port, directory / "server.log", environment) as base_url:
        yield base_url


class Contexts:
    """The browser contexts of one test, each one user; pages must raise no uncaught error.

    Every context reads dates in the Europe/Berlin time zone with the en-GB
    locale, so tests can state the expected times and day headings.
    """

    def __init__(self, browser: Browser, base_url: str) -> None:
        self.browser = browser
        self.base_url = base_url
        self.errors: list[str] = []
        self._opened: list[BrowserContext] = []

    async def new(self) -> BrowserContext:
        """Open a new context, which is one user with their own storage."""
        context = await self.browser.new_context(
            viewport={"width": 1000, "height": 800},
            locale="en-GB",
            timezone_id="Europe/Berlin",
        )
        context.on("weberror", lambda error: self.errors.append(str(error.error)))
        self._opened.append(context)
        return context

    async def open(
        self,
        query: str,
        *,
        context: BrowserContext | None = None,
        before: Callable[[Page], Awaitable[None]] | None = None,
    ) -> Page:
        """Open the test app with ``query`` in a new page and wait for the Chatbox to render.

        ``context`` defaults to a new one. ``before`` is an async function
        given the page before it navigates, for listeners and emulation.
        """
        context = context or await self.new()
        page = await context.new_page()
        if before is not None:
            await before(page)
        await page.goto(f"{self.base_url}/?{query}")
        await expect(page.locator(".tjs-chatbox")).to_be_attached(timeout=TIMEOUT_MS)
        return page

    async def close(self) -> list[str]:
        """Close every context and return the uncaught page errors they saw."""
        for context in self._opened:
            await context.close()
        self._opened.clear()
        return self.errors


def message_log(page: Page) -> Locator:
    """Return the message list of the page's Chatbox."""
    return page.get_by_role("log", name="Messages")


def bubble(page: Page, text: str) -> Locator:
    """Return the message element that contains ``text``."""
    return message_log(page).locator("[data-message-id]", has_text=text)


def receipt(page: Page, text: str) -> Locator:
    """Return the read receipt of the own message that contains ``text``."""
    return bubble(page, text).locator(".tjs-message__receipt")


async def send(page: Page, text: str) -> None:
    """Type ``text`` into the composer, press Enter, and wait for the field to empty."""
    composer = page.get_by_role("textbox", name="Message")
    await expect(composer).to_be_enabled(timeout=TIMEOUT_MS)
    await composer.fill(text)
    await composer.press("Enter")
    await expect(composer).to_have_value("")
