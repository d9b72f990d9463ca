"""The demo in Chromium: two users chat in real time, and history survives a restart."""

from __future__ import annotations

from pathlib import Path

from playwright.async_api import Browser, Page, expect

from .demo_server import free_port, running_demo

TIMEOUT_MS = 15_000


async def sign_in(page: Page, base_url: str, user: str) -> None:
    await page.goto(base_url + "/")
    await page.get_by_label("User").fill(user)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("list", name="Conversations")).to_be_visible(timeout=TIMEOUT_MS)


async def log_at_bottom(page: Page) -> None:
    """Wait until the message list is scrolled to its end, where the newest message is."""
    await page.wait_for_function(
        """() => {
            const log = document.querySelector('[role="log"]');
            return log && log.scrollHeight - log.scrollTop - log.clientHeight < 2;
        }""",
        timeout=TIMEOUT_MS,
    )


async def send(page: Page, text: str, *, with_enter: bool) -> None:
    composer = page.get_by_role("textbox", name="Message")
    await composer.fill(text)
    if with_enter:
        await composer.press("Enter")
    else:
        await page.get_by_role("button", name="Send").click()
    await expect(composer).to_have_value("")


async def test_two_users_chat_and_history_persists(browser: Browser, tmp_path: Path) -> None:
    data = tmp_path / "demo.sqlite3"
    log = tmp_path / "demo.log"
    # The same port both times: sessionStorage, which contains the token, is per origin.
    port = free_port()
    alice_context = await browser.new_context()
    bob_context = await browser.new_context()
    alice = await alice_context.new_page()
    bob = await bob_context.new_page()
    try:
        async with running_demo(data, port, log) as base_url:
            await sign_in(alice, base_url, "alice")
            await sign_in(bob, base_url, "bob")
            bob_unread = bob.get_by_test_id("unread-count")
            await expect(bob_unread).to_have_text("0", timeout=TIMEOUT_MS)

            await alice.goto(base_url + "/chat/demo-group")
            alice_log = alice.get_by_role("log", name="Messages")
            await expect(alice_log.locator("[data-message-id]").first).to_be_visible(
                timeout=TIMEOUT_MS
            )
            await send(alice, "Hello Bob, it is Alice", with_enter=True)
            await expect(alice_log).to_contain_text("Hello Bob, it is Alice", timeout=TIMEOUT_MS)

            # Bob is on the conversation list: the message raises his unread count live.
            await expect(bob_unread).to_have_text("1", timeout=TIMEOUT_MS)
            group_item = bob.locator("[data-conversation-id='demo-group']")
            await expect(group_item).to_contain_text("Hello Bob, it is Alice")

            # Opening the conversation shows the message and clears the count.
            await group_item.get_by_role("link").click()
            bob_log = bob.get_by_role("log", name="Messages")
            await expect(bob_log).to_contain_text("Hello Bob, it is Alice", timeout=TIMEOUT_MS)
            await expect(bob_unread).to_have_text("0", timeout=TIMEOUT_MS)

            await log_at_bottom(bob)
            await send(bob, "Hi Alice, Bob here", with_enter=False)
            await expect(alice_log).to_contain_text("Hi Alice, Bob here", timeout=TIMEOUT_MS)
            # The list follows new messages from others while its reader is at the end.
            await log_at_bottom(alice)
            await expect(alice_log.locator("[data-message-id]").last).to_be_in_viewport()
            await expect(bob_log).to_contain_text("Hi Alice, Bob here")
            alice_rows = await alice_log.locator("[data-message-id]").count()
            bob_rows = await bob_log.locator("[data-message-id]").count()
            assert alice_rows == bob_rows

        # A new server process on the same file keeps the history, and the
        # token kept in the window's sessionStorage still signs Alice in.
        async with running_demo(data, port, log) as base_url:
            # The open page reconnects by itself and shows the chat again.
            await expect(alice.get_by_role("log", name="Messages")).to_contain_text(
                "Hi Alice, Bob here", timeout=30_000
            )
            await alice.goto(base_url + "/chat/demo-group")
            alice_log = alice.get_by_role("log", name="Messages")
            await expect(alice_log).to_contain_text("Hello Bob, it is Alice", timeout=TIMEOUT_MS)
            await expect(alice_log).to_contain_text("Hi Alice, Bob here")
            assert await alice_log.locator("[data-message-id]").count() == alice_rows
    finally:
        await alice_context.close()
        await bob_context.close()


async def test_sign_in_rejects_unknown_user(browser: Browser, tmp_path: Path) -> None:
    context = await browser.new_context()
    page = await context.new_page()
    try:
        async with running_demo(tmp_path / "demo.sqlite3", free_port(), tmp_path / "log") as url:
            await page.goto(url + "/")
            await page.get_by_label("User").fill("mallory")
            await page.get_by_role("button", name="Sign in").click()
            await expect(page.get_by_role("alert")).to_contain_text(
                "Unknown user \u201cmallory\u201d", timeout=TIMEOUT_MS
            )
            await expect(page.get_by_role("list", name="Conversations")).to_have_count(0)
    finally:
        await context.close()


async def test_message_text_is_not_html(browser: Browser, tmp_path: Path) -> None:
    context = await browser.new_context()
    page = await context.new_page()
    try:
        async with running_demo(tmp_path / "demo.sqlite3", free_port(), tmp_path / "log") as url:
            await sign_in(page, url, "carol")
            await page.goto(url + "/chat/demo-group")
            markup = '<img src=x onerror="window.injected=1"><b>bold</b>'
            await send(page, markup, with_enter=True)
            log = page.get_by_role("log", name="Messages")
            await expect(log).to_contain_text(markup, timeout=TIMEOUT_MS)
            assert await log.locator("img").count() == 0
            assert await page.evaluate("window.injected === undefined")
    finally:
        await context.close()


async def test_inbox_view_selects_conversation(browser: Browser, tmp_path: Path) -> None:
    context = await browser.new_context()
    page = await context.new_page()
    try:
        async with running_demo(tmp_path / "demo.sqlite3", free_port(), tmp_path / "log") as url:
            await sign_in(page, url, "bob")
            await page.get_by_role("link", name="Inbox view").click()
            feed = page.get_by_role("list", name="Conversations")
            item = feed.locator("[data-conversation-id='demo-group']")
            await expect(item).to_contain_text("Demo group", timeout=TIMEOUT_MS)
            await item.get_by_role("button").click()
            log = page.get_by_role("log", name="Messages")
            await expect(log.locator("[data-message-id]").first).to_be_visible(timeout=TIMEOUT_MS)
            await send(page, "Hello from the inbox", with_enter=True)
            await expect(log).to_contain_text("Hello from the inbox", timeout=TIMEOUT_MS)
            await expect(item).to_contain_text("Hello from the inbox", timeout=TIMEOUT_MS)
    finally:
        await context.close()
