"""Fixtures shared by the test suite: embedded backends on real SQLite files, and Chromium."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, async_playwright

from talkjs_components import embedded
from talkjs_components.embedded import EmbeddedBackend
from talkjs_components.models import Participation, User
from talkjs_components.service import TRUSTED

SECRET_KEY = "sk_test_" + "0123456789abcdef" * 3


@pytest.fixture
async def backend(tmp_path: Path) -> AsyncIterator[EmbeddedBackend]:
    """A started embedded backend of a fresh app, with users alice, bob and carol."""
    app_id = f"test-{uuid.uuid4().hex[:12]}"
    chat = embedded.configure(app_id, secret_key=SECRET_KEY, database=tmp_path / "chat.sqlite3")
    await chat.start()
    for user_id in ("alice", "bob", "carol"):
        await chat.service.upsert_user(User(id=user_id, name=user_id.title()))
    await chat.service.sync_conversation(
        TRUSTED,
        "group",
        participants={user_id: Participation() for user_id in ("alice", "bob", "carol")},
    )
    try:
        yield chat
    finally:
        await chat.close()


BROWSER_REQUIRED_VARIABLE = "TALKJS_REQUIRE_BROWSER"


def chromium_executable() -> str:
    """Return the Chromium to drive, or skip (fail in CI) when there is none.

    ``CHROMIUM_PATH`` overrides the default ``/usr/bin/chromium`` (Debian's
    package). No browser is ever downloaded.
    """
    path = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
    if shutil.which(path) is not None:
        return path
    message = (
        f"Chromium not found at {path!r}: install Debian's package "
        "(apt-get install chromium) or set CHROMIUM_PATH"
    )
    if os.environ.get(BROWSER_REQUIRED_VARIABLE) == "1":
        pytest.fail(f"{message}; {BROWSER_REQUIRED_VARIABLE}=1 makes this an error")
    pytest.skip(message)


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    """A headless Chromium shared by the browser tests."""
    executable = chromium_executable()
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=executable, headless=True)
        try:
            yield launched
        finally:
            await launched.close()
