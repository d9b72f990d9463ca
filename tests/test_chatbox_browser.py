"""The Chatbox in Chromium: update size with a long history, and typing under latency."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, expect

from talkjs_components import embedded
from talkjs_components.models import Participation, User
from talkjs_components.service import TRUSTED

from .demo_server import free_port, running_server, uvicorn_command

# The app and secret of tests/apps/chat_app.py, which reads its database path on import.
APP_ID = "chat-test"
SECRET_KEY = "sk_test_" + "c" * 40
TIMEOUT_MS = 20_000
HISTORY = 1000


async def _seed(database: Path, messages: int) -> None:
    """Write users, the conversation and ``messages`` messages before the server starts."""
    backend = embedded.configure(APP_ID, secret_key=SECRET_KEY, database=database)
    await backend.start()
    try:
        service = backend.service
        for user_id in ("alice", "bob", "carol"):
            await service.upsert_user(User(id=user_id, name=user_id.title()))
        await service.sync_conversation(
            TRUSTED, "group", participants={u: Participation() for u in ("alice", "bob", "carol")}
        )
        for number in range(messages):
            sender = ("bob", "carol")[number % 2]
            await service.send_message(
                TRUSTED, "group", f"history message {number}", sender_id=sender
            )
    finally:
        await backend.close()
        await embedded.close_all()


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[str]:
    database = tmp_path / "chat.sqlite3"
    await _seed(database, HISTORY)
    port = free_port()
    command = uvicorn_command("tests.apps.chat_app:app", port)
    async with running_server(
        command, port, tmp_path / "log", {"TALKJS_DATA": str(database)}
    ) as base_url:
        yield base_url


class Frames:
    """Sizes in bytes of the websocket frames a page received from the server."""

    def __init__(self) -> None:
        self.sizes: list[int] = []

    def watch(self, page: Page) -> None:
        page.on("websocket", lambda socket: socket.on("framereceived", self._received))

    def _received(self, payload: str | bytes) -> None:
        data = payload.encode() if isinstance(payload, str) else payload
        self.sizes.append(len(data))


async def _open(browser: Browser, url: str, frames: Frames | None = None) -> Page:
    context = await browser.new_context()
    page = await context.new_page()
    if frames is not None:
        frames.watch(page)
    await page.goto(url)
    log = page.get_by_role("log", name="Messages")
    await expect(log).to_contain_text(f"history message {HISTORY - 1}", timeout=TIMEOUT_MS)
    # The composer is enabled once the conversation has loaded, which can come
    # after the messages; typed keys would not reach a disabled field.
    await expect(page.get_by_role("textbox", name="Message")).to_be_enabled(timeout=TIMEOUT_MS)
    return page


async def test_new_message_frame_small_with_1000_shown(browser: Browser, server: str) -> None:
    frames = Frames()
    alice = await _open(browser, server + "/?user=alice", frames)
    bob = await _open(browser, server + "/?user=bob")
    try:
        log = alice.get_by_role("log", name="Messages")
        rows = log.locator("[data-message-id]")
        # Scroll to the top until the whole history is on screen.
        while (shown := await rows.count()) < HISTORY:
            await log.evaluate("node => { node.scrollTop = 0; }")
            await alice.wait_for_function(
                f"document.querySelectorAll('[data-message-id]').length > {shown}",
                timeout=TIMEOUT_MS,
            )
        await expect(log).to_contain_text("history message 0")
        assert frames.sizes, "the page's websocket frames are observed"

        frames.sizes.clear()
        composer = bob.get_by_role("textbox", name="Message")
        await composer.fill("the newest message")
        await composer.press("Enter")
        await expect(log).to_contain_text("the newest message", timeout=TIMEOUT_MS)
        assert await rows.count() == HISTORY + 1
        assert frames.sizes, "the new message arrived in websocket frames"
        assert max(frames.sizes) <= 8 * 1024
    finally:
        await alice.context.close()
        await bob.context.close()


async def test_typing_under_latency_loses_nothing(browser: Browser, server: str) -> None:
    """With 300 ms between browser and server, fast typing arrives whole and in order."""
    alice = await _open(browser, server + "/?user=alice")
    try:
        cdp = await alice.context.new_cdp_session(alice)
        await cdp.send("Network.enable")
        await cdp.send(
            "Network.emulateNetworkConditions",
            {"offline": False, "latency": 300, "downloadThroughput": -1, "uploadThroughput": -1},
        )
        composer = alice.get_by_role("textbox", name="Message")
        sentence = "The quick brown fox jumps over the lazy dog, 1234567890 times!"
        await composer.press_sequentially(sentence, delay=5)
        await expect(composer).to_have_value(sentence)
        await composer.press("Enter")
        log = alice.get_by_role("log", name="Messages")
        await expect(log.locator("[data-message-id]").last).to_contain_text(
            sentence, timeout=TIMEOUT_MS
        )
    finally:
        await alice.context.close()
