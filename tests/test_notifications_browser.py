"""Desktop notifications in Chromium: permission flow, showing and clicking.

The page's ``Notification`` is wrapped by a spy that records each
notification and each permission request and then calls the real API, so the
test can read what the browser was asked to do and click a notification.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, BrowserContext, Page, expect

from .demo_server import free_port, running_server, uvicorn_command

TIMEOUT_MS = 15_000

NOTIFICATION_SPY = """
(() => {
  if (!("Notification" in window)) return;
  const Real = window.Notification;
  window.__notifications = [];
  window.__permissionRequests = 0;
  class Spy extends Real {
    constructor(title, options) {
      super(title, options);
      window.__notifications.push({ title, body: options && options.body, spy: this });
    }
    static get permission() { return Real.permission; }
    static requestPermission() {
      window.__permissionRequests += 1;
      return Real.requestPermission();
    }
  }
  window.Notification = Spy;
})();
"""


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[str]:
    port = free_port()
    command = uvicorn_command("tests.apps.notify_app:app", port)
    environment = {"TALKJS_DATA": str(tmp_path / "chat.sqlite3")}
    async with running_server(command, port, tmp_path / "log", environment) as base_url:
        yield base_url


async def open_page(context: BrowserContext, url: str) -> Page:
    await context.add_init_script(NOTIFICATION_SPY)
    page = await context.new_page()
    await page.goto(url)
    await expect(page.get_by_role("button", name="Send ping")).to_be_visible(timeout=TIMEOUT_MS)
    return page


async def test_notification_shown_and_clicked(browser: Browser, server: str) -> None:
    alice_context = await browser.new_context()
    bob_context = await browser.new_context()
    await bob_context.grant_permissions(["notifications"], origin=server)
    try:
        alice = await open_page(alice_context, server + "/?user=alice")
        bob = await open_page(bob_context, server + "/?user=bob")
        # Bob's session creates the conversation so that he is a participant.
        await bob.get_by_role("button", name="Send ping").click()
        await bob.get_by_role("button", name="Enable notifications").click()
        bob_events = bob.get_by_role("list", name="Events")

        await alice.get_by_role("button", name="Send ping").click()
        await bob.wait_for_function("window.__notifications.length === 1", timeout=TIMEOUT_MS)
        title = await bob.evaluate("window.__notifications[0].title")
        body = await bob.evaluate("window.__notifications[0].body")
        assert title == "Alice in Team"
        assert body == "ping from alice"
        # Permission was granted up front, so the browser was never asked.
        assert await bob.evaluate("window.__permissionRequests") == 0
        # Own messages never notify.
        assert await alice.evaluate("window.__notifications.length") == 0

        await bob.evaluate("window.__notifications[0].spy.dispatchEvent(new Event('click'))")
        await expect(bob_events).to_contain_text("clicked:notify-group", timeout=TIMEOUT_MS)
    finally:
        await alice_context.close()
        await bob_context.close()


async def test_permission_prompt_waits_for_gesture(browser: Browser, server: str) -> None:
    context = await browser.new_context()
    try:
        page = await open_page(context, server + "/?user=alice")
        events = page.get_by_role("list", name="Events")
        await page.get_by_role("button", name="Enable notifications").click()
        await expect(events).to_contain_text("needed", timeout=TIMEOUT_MS)
        # The click that enabled notifications came before Python allowed a
        # prompt, so the browser has not been asked yet.
        assert await page.evaluate("window.__permissionRequests") == 0
        await page.wait_for_timeout(300)
        await page.get_by_role("list", name="Events").click()
        await page.wait_for_function("window.__permissionRequests === 1", timeout=TIMEOUT_MS)
    finally:
        await context.close()


async def test_permission_prompt_prevented(browser: Browser, server: str) -> None:
    context = await browser.new_context()
    try:
        page = await open_page(context, server + "/?user=alice&prevent=1")
        events = page.get_by_role("list", name="Events")
        await page.get_by_role("button", name="Enable notifications").click()
        await expect(events).to_contain_text("needed", timeout=TIMEOUT_MS)
        for _ in range(3):
            await page.get_by_role("list", name="Events").click()
            await page.keyboard.press("Shift")
        await page.wait_for_timeout(300)
        assert await page.evaluate("window.__permissionRequests") == 0
    finally:
        await context.close()


async def test_permission_denied_reported(browser: Browser, server: str) -> None:
    context = await browser.new_context()
    try:
        page = await open_page(context, server + "/?user=alice")
        # Simulate the user blocking notifications in the browser's site settings.
        await page.evaluate(
            "() => { Object.defineProperty(window.Notification, 'permission', "
            "{get: () => 'denied'}); }"
        )
        await page.evaluate("document.dispatchEvent(new Event('visibilitychange'))")
        await page.get_by_role("button", name="Enable notifications").click()
        await expect(page.get_by_role("list", name="Events")).to_contain_text(
            "denied", timeout=TIMEOUT_MS
        )
    finally:
        await context.close()
