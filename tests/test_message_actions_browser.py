"""Custom message actions in Chromium: the menu by keyboard and by mouse, and the handlers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.async_api import Browser, Locator, Page, expect

from talkjs_components import embedded
from talkjs_components.models import MessageType, Participation, User
from talkjs_components.service import TRUSTED

from .demo_server import free_port, running_server, uvicorn_command

# The app and secret of tests/apps/actions_app.py, which reads its database path on import.
APP_ID = "actions-test"
SECRET_KEY = "sk_test_" + "d" * 40
TIMEOUT_MS = 15_000


@dataclass(frozen=True)
class Chat:
    """The page's base URL and the ids of the seeded messages."""

    url: str
    from_bob: str
    from_alice: str
    system: str


async def _seed(database: Path) -> tuple[str, str, str]:
    """Write users, the conversation and three messages before the server starts."""
    backend = embedded.configure(APP_ID, secret_key=SECRET_KEY, database=database)
    await backend.start()
    try:
        service = backend.service
        for user_id in ("alice", "bob", "carol"):
            await service.upsert_user(User(id=user_id, name=user_id.title()))
        await service.sync_conversation(
            TRUSTED, "group", participants={u: Participation() for u in ("alice", "bob", "carol")}
        )
        system = await service.send_message(
            TRUSTED, "group", "Carol joined", type=MessageType.SYSTEM
        )
        bob = await service.send_message(TRUSTED, "group", "Hello from Bob", sender_id="bob")
        alice = await service.send_message(TRUSTED, "group", "Hi Bob", sender_id="alice")
        return bob.id, alice.id, system.id
    finally:
        await backend.close()
        await embedded.close_all()


@pytest.fixture
async def chat(tmp_path: Path) -> AsyncIterator[Chat]:
    database = tmp_path / "chat.sqlite3"
    from_bob, from_alice, system = await _seed(database)
    port = free_port()
    command = uvicorn_command("tests.apps.actions_app:app", port)
    environment = {"TALKJS_DATA": str(database)}
    async with running_server(command, port, tmp_path / "log", environment) as base_url:
        yield Chat(base_url, from_bob, from_alice, system)


@pytest.fixture
async def page(browser: Browser, chat: Chat) -> AsyncIterator[Page]:
    """The app's page with the conversation loaded; it must raise no JavaScript error."""
    context = await browser.new_context(viewport={"width": 1000, "height": 800})
    errors: list[str] = []
    context.on("weberror", lambda error: errors.append(str(error.error)))
    opened = await context.new_page()
    # The focus checks need this page to be the browser's active one, whatever
    # pages earlier tests left behind.
    await opened.bring_to_front()
    try:
        await opened.goto(chat.url + "/")
        log = opened.get_by_role("log", name="Messages")
        await expect(log).to_contain_text("Hi Bob", timeout=TIMEOUT_MS)
        await wait_for_autofocus(opened)
        yield opened
    finally:
        await context.close()
    assert errors == []


async def wait_for_autofocus(page: Page) -> None:
    """Wait until the composer has taken the focus, as it does once its conversation loads.

    The composer's autofocus runs in an effect, after the render that shows
    the messages. A test that moves focus to a message before then would
    have it taken away.
    """
    composer = page.get_by_role("textbox", name="Message")
    await expect(composer).to_be_focused(timeout=TIMEOUT_MS)


async def focus(control: Locator) -> None:
    """Move the keyboard focus to ``control`` and check that it arrived."""
    await control.focus()
    await expect(control).to_be_focused()


def _menu_button(page: Page, message_id: str) -> Locator:
    return page.locator(f'[data-message-id="{message_id}"]').get_by_role(
        "button", name="Message actions"
    )


async def test_keyboard_opens_moves_and_escapes(page: Page, chat: Chat) -> None:
    button = _menu_button(page, chat.from_bob)
    menu = page.get_by_role("menu", name="Message actions")
    quote = menu.get_by_role("menuitem", name="Quote")
    report = menu.get_by_role("menuitem", name="Report")
    await expect(button).to_have_attribute("aria-expanded", "false")

    await focus(button)
    await page.keyboard.press("Enter")
    await expect(menu).to_be_visible()
    await expect(button).to_have_attribute("aria-expanded", "true")
    await expect(menu.get_by_role("menuitem")).to_have_text(["Quote", "Report"])
    await expect(quote).to_be_focused()
    await page.keyboard.press("ArrowDown")
    await expect(report).to_be_focused()
    await page.keyboard.press("ArrowDown")
    await expect(quote).to_be_focused()
    await page.keyboard.press("ArrowUp")
    await expect(report).to_be_focused()
    await page.keyboard.press("Home")
    await expect(quote).to_be_focused()

    await page.keyboard.press("Escape")
    await expect(menu).to_have_count(0)
    await expect(button).to_be_focused()
    await expect(button).to_have_attribute("aria-expanded", "false")

    # Space opens it as well; Enter picks the focused item and closes the menu.
    await page.keyboard.press("Space")
    await expect(quote).to_be_focused()
    await page.keyboard.press("Enter")
    await expect(menu).to_have_count(0)
    await expect(button).to_be_focused()
    actions = page.get_by_role("list", name="Action log")
    await expect(actions.get_by_role("listitem")).to_have_text(["quote: Hello from Bob"])


async def test_mouse_picks_async_action(page: Page, chat: Chat) -> None:
    button = _menu_button(page, chat.from_bob)
    menu = page.get_by_role("menu", name="Message actions")
    actions = page.get_by_role("list", name="Action log")

    await button.click()
    await expect(menu).to_be_visible()
    await menu.get_by_role("menuitem", name="Report").click()
    await expect(menu).to_have_count(0)
    await expect(actions.get_by_role("listitem")).to_have_text(
        ["report: Hello from Bob (spam)"], timeout=TIMEOUT_MS
    )

    # The handler marked the message reported, so the predicate no longer matches.
    await button.click()
    await expect(menu.get_by_role("menuitem")).to_have_text(["Quote"], timeout=TIMEOUT_MS)


async def test_click_outside_closes(page: Page, chat: Chat) -> None:
    button = _menu_button(page, chat.from_bob)
    menu = page.get_by_role("menu", name="Message actions")
    await button.click()
    await expect(menu).to_be_visible()
    await page.get_by_role("heading", name="Message actions").click()
    await expect(menu).to_have_count(0)
    await expect(button).to_have_attribute("aria-expanded", "false")
    await expect(page.get_by_role("list", name="Action log").get_by_role("listitem")).to_have_count(
        0
    )


async def test_own_and_system_messages(page: Page, chat: Chat) -> None:
    own = page.locator(f'[data-message-id="{chat.from_alice}"]')
    await expect(own.get_by_role("button", name="Edit message")).to_be_visible()
    await expect(own.get_by_role("button", name="Delete message")).to_be_visible()
    await _menu_button(page, chat.from_alice).click()
    menu = page.get_by_role("menu", name="Message actions")
    await expect(menu.get_by_role("menuitem")).to_have_text(["Quote"])
    await page.keyboard.press("Escape")
    await expect(menu).to_have_count(0)

    system = page.locator(f'[data-message-id="{chat.system}"]')
    await expect(system).to_contain_text("Carol joined")
    await expect(system.get_by_role("button")).to_have_count(0)


async def test_escape_in_popup_closes_only_menu(browser: Browser, chat: Chat) -> None:
    context = await browser.new_context(viewport={"width": 1000, "height": 800})
    try:
        page = await context.new_page()
        await page.bring_to_front()
        await page.goto(chat.url + "/?view=popup")
        dialog = page.get_by_role("dialog", name="Chat")
        await expect(dialog.get_by_role("log", name="Messages")).to_contain_text(
            "Hi Bob", timeout=TIMEOUT_MS
        )
        await wait_for_autofocus(page)
        button = _menu_button(page, chat.from_bob)
        await focus(button)
        await page.keyboard.press("ArrowDown")
        menu = page.get_by_role("menu", name="Message actions")
        await expect(menu.get_by_role("menuitem", name="Quote")).to_be_focused()

        await page.keyboard.press("Escape")
        await expect(menu).to_have_count(0)
        await expect(button).to_be_focused()
        await expect(dialog).to_be_visible()
        # A second Escape, with the menu closed, is the Popup's again.
        await page.keyboard.press("Escape")
        await expect(dialog).to_have_count(0)
    finally:
        await context.close()
