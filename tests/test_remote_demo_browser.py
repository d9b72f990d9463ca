"""The demo on a standalone chat server, in Chromium: three processes on loopback ports.

``talkjs-components serve`` keeps the data, and ``talkjs-components demo
--server`` serves the pages, with no database of its own. Two browser
contexts chat through both, and the history survives a restart of the demo
process.
"""

from __future__ import annotations

import sys
from pathlib import Path

from playwright.async_api import Browser, expect

from talkjs_components.auth import generate_secret_key

from .demo_server import free_port, running_server
from .server_process import serving_process
from .test_demo_browser import TIMEOUT_MS, log_at_bottom, send, sign_in


def demo_command(port: int, server_url: str) -> list[str]:
    return [
        sys.executable, "-m", "talkjs_components.cli", "demo",
        "--port", str(port), "--server", server_url, "--log-level", "warning",
    ]  # fmt: skip


async def test_two_users_chat_through_server_and_history_survives(
    browser: Browser, tmp_path: Path
) -> None:
    secret_key = generate_secret_key()
    app_directory = tmp_path / "app"
    app_directory.mkdir()
    log = tmp_path / "demo.log"
    # The same port both times: sessionStorage, which contains the token, is per origin.
    port = free_port()
    environment = {"TALKJS_SECRET_KEY": secret_key}
    alice_context = await browser.new_context()
    bob_context = await browser.new_context()
    alice = await alice_context.new_page()
    bob = await bob_context.new_page()
    try:
        with serving_process(tmp_path, {"demo": secret_key}) as server:
            command = demo_command(port, server.base_url)
            async with running_server(command, port, log, environment, app_directory) as base_url:
                await sign_in(alice, base_url, "alice")
                await sign_in(bob, base_url, "bob")
                bob_unread = bob.get_by_test_id("unread-count")
                await expect(bob_unread).to_have_text("0", timeout=TIMEOUT_MS)

                await alice.goto(base_url + "/chat/demo-group")
                alice_log = alice.get_by_role("log", name="Messages")
                await expect(alice_log.locator("[data-message-id]").first).to_be_visible(
                    timeout=TIMEOUT_MS
                )
                await send(alice, "Hello Bob, via the server", with_enter=True)
                await expect(alice_log).to_contain_text(
                    "Hello Bob, via the server", timeout=TIMEOUT_MS
                )

                # Bob is on the conversation list: the message raises his unread count live.
                await expect(bob_unread).to_have_text("1", timeout=TIMEOUT_MS)
                group_item = bob.locator("[data-conversation-id='demo-group']")
                await expect(group_item).to_contain_text("Hello Bob, via the server")

                await group_item.get_by_role("link").click()
                bob_log = bob.get_by_role("log", name="Messages")
                await expect(bob_log).to_contain_text(
                    "Hello Bob, via the server", timeout=TIMEOUT_MS
                )
                await expect(bob_unread).to_have_text("0", timeout=TIMEOUT_MS)

                await log_at_bottom(bob)
                await send(bob, "Hi Alice, Bob here", with_enter=False)
                await expect(alice_log).to_contain_text("Hi Alice, Bob here", timeout=TIMEOUT_MS)
                alice_rows = await alice_log.locator("[data-message-id]").count()
                bob_rows = await bob_log.locator("[data-message-id]").count()
                assert alice_rows == bob_rows

            # A new demo process, with the server still running, shows the same history.
            async with running_server(command, port, log, environment, app_directory) as base_url:
                await expect(alice.get_by_role("log", name="Messages")).to_contain_text(
                    "Hi Alice, Bob here", timeout=30_000
                )
                await alice.goto(base_url + "/chat/demo-group")
                alice_log = alice.get_by_role("log", name="Messages")
                await expect(alice_log).to_contain_text(
                    "Hello Bob, via the server", timeout=TIMEOUT_MS
                )
                await expect(alice_log).to_contain_text("Hi Alice, Bob here")
                assert await alice_log.locator("[data-message-id]").count() == alice_rows
    finally:
        await alice_context.close()
        await bob_context.close()

    # The demo process kept no data of its own.
    assert list(app_directory.iterdir()) == []
