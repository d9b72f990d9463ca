"""Test-side helpers for ``boxes_app``: start its server and seed one world per test."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
from playwright.async_api import Browser, BrowserContext, Expect

from ..demo_server import free_port, running_server, uvicorn_command

__all__ = ["TIMEOUT_MS", "World", "checked_context", "expect", "running_boxes_app", "seed_world"]


TIMEOUT_MS = 15_000
"""Wait in ms for anything a page shows. Playwright's default of 5 s is short
when the browser, the server and other tests share two busy cores."""

expect = Expect()
"""Playwright's ``expect`` with :data:`TIMEOUT_MS`, leaving the global one unchanged."""
expect.set_options(timeout=TIMEOUT_MS)


@contextlib.asynccontextmanager
async def running_boxes_app(directory: Path) -> AsyncIterator[str]:
    """Serve ``boxes_app`` with its database and log in ``directory``, and yield the base URL."""
    port = free_port()
    command = uvicorn_command("tests.apps.boxes_app:app", port)
    environment = {"TALKJS_DATA": str(directory / "chat.sqlite3")}
    async with running_server(command, port, directory / "log", environment) as base_url:
        yield base_url


@dataclass(frozen=True)
class World:
    """One test's users and conversations on a shared ``boxes_app`` server."""

    base_url: str
    name: str
    times: dict[str, int]
    """Creation time in ms of each seeded conversation's message, by short name."""

    def id(self, name: str) -> str:
        """Return the id of user or conversation ``name`` in this world."""
        return f"{self.name}-{name}"

    def url(self, **params: str) -> str:
        """Return the test page's URL for this world with the given query parameters."""
        return f"{self.base_url}/?{urlencode({'world': self.name, **params})}"

    async def send(self, conversation: str, sender: str, text: str) -> str:
        """Send a message through the backend, as ``sender``'s own client would.

        Returns the message's id.
        """
        result = await _post(self.base_url, "/control/send", {
            "world": self.name, "conversation": conversation, "sender": sender, "text": text,
        })  # fmt: skip
        return str(result["id"])

    async def create_conversation(
        self, name: str, subject: str, members: Sequence[str], sender: str, text: str
    ) -> None:
        """Create a conversation with a first message through the backend."""
        await _post(self.base_url, "/control/conversation", {
            "world": self.name, "name": name, "subject": subject,
            "members": list(members), "sender": sender, "text": text,
        })  # fmt: skip


async def _post(base_url: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
    async with httpx.AsyncClient() as client:
        response = await client.post(base_url + path, json=body, timeout=10)
    if response.status_code != 200:
        raise RuntimeError(
            f"POST {path} failed with status {response.status_code}: {response.text[:500]}. "
            "The server log is next to the test database."
        )
    result: dict[str, Any] = response.json()
    return result


async def seed_world(base_url: str) -> World:
    """Seed a fresh world on the server at ``base_url``."""
    name = "w" + uuid.uuid4().hex[:10]
    result = await _post(base_url, "/control/seed", {"world": name})
    return World(base_url, name, result["times"])


@contextlib.asynccontextmanager
async def checked_context(
    browser: Browser, width: int = 1100, height: int = 800, **options: Any
) -> AsyncIterator[BrowserContext]:
    """Yield a browser context whose pages must raise no uncaught JavaScript error.

    ``options`` are passed on to ``Browser.new_context``.
    """
    created = await browser.new_context(viewport={"width": width, "height": height}, **options)
    errors: list[str] = []
    created.on("weberror", lambda error: errors.append(str(error.error)))
    try:
        yield created
    finally:
        await created.close()
    assert errors == [], f"uncaught JavaScript errors: {errors}"
