"""The examples in examples/ run as documented."""

from __future__ import annotations

from pathlib import Path

from playwright.async_api import Browser, expect

from .demo_server import free_port, running_server, uvicorn_command

TIMEOUT_MS = 15_000


async def test_basic_chat_example(browser: Browser, tmp_path: Path) -> None:
    port = free_port()
    command = uvicorn_command("examples.basic_chat:app", port)
    environment = {"TALKJS_DATA": str(tmp_path / "chat.sqlite3")}
    alice_context = await browser.new_context()
    bob_context = await browser.new_context()
    try:
        async with running_server(command, port, tmp_path / "log", environment) as base_url:
            alice = await alice_context.new_page()
            bob = await bob_context.new_page()
            await alice.goto(base_url + "/?user=alice")
            await bob.goto(base_url + "/?user=bob")
            for page in (alice, bob):
                await expect(page.get_by_text("Welcome")).to_be_visible(timeout=TIMEOUT_MS)

            await alice.get_by_role("textbox", name="Message").fill("Hi Bob")
            await alice.get_by_role("textbox", name="Message").press("Enter")
            await expect(bob.get_by_role("log", name="Messages")).to_contain_text(
                "Hi Bob", timeout=TIMEOUT_MS
            )
    finally:
        await alice_context.close()
        await bob_context.close()
