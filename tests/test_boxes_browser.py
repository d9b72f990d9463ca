"""Inbox and Popup in Chromium: the feed, live updates, selection, filters, launcher and refs.

One server serves the whole module. Each test seeds its own world of users and
conversations (see ``tests/apps/boxes_app.py``), so tests do not see each
other's messages.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Sequence

import pytest
from playwright.async_api import Browser, BrowserContext, Locator, Page

from .apps.boxes_world import World, checked_context, expect, running_boxes_app, seed_world

SEEDED_ORDER = ["bob", "carol", "group", "news"]
"""Feed order of a fresh world: latest activity first."""


@pytest.fixture(scope="module")
async def server(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    async with running_boxes_app(tmp_path_factory.mktemp("boxes")) as base_url:
        yield base_url


@pytest.fixture
async def world(server: str) -> World:
    return await seed_world(server)


@pytest.fixture
async def context(browser: Browser) -> AsyncIterator[BrowserContext]:
    async with checked_context(browser) as created:
        yield created


def feed(page: Page) -> Locator:
    return page.get_by_role("list", name="Conversations")


def feed_item(page: Page, world: World, name: str) -> Locator:
    """Return the button of conversation ``name``'s feed item."""
    return page.locator(f'[data-conversation-id="{world.id(name)}"] button')


def events(page: Page) -> Locator:
    """Return the items of the page's list of recorded events."""
    return page.get_by_role("list", name="Events").get_by_role("listitem")


async def expect_feed(page: Page, world: World, names: Sequence[str]) -> None:
    """Wait until the feed lists exactly the conversations ``names``, in this order."""
    items = page.locator("[data-conversation-id]")
    await expect(items).to_have_count(len(names))
    for index, name in enumerate(names):
        await expect(items.nth(index)).to_have_attribute("data-conversation-id", world.id(name))


async def open_inbox(context: BrowserContext, world: World, **params: str) -> Page:
    page = await context.new_page()
    await page.goto(world.url(view="inbox", user="alice", **params))
    await expect(feed(page)).to_be_visible()
    return page


def chat_log(scope: Page | Locator) -> Locator:
    return scope.get_by_role("log", name="Messages")


# --- Inbox: the feed ------------------------------------------------------------


async def test_inbox_feed_items_show_content(context: BrowserContext, world: World) -> None:
    page = await open_inbox(context, world)
    await expect_feed(page, world, SEEDED_ORDER)

    titles = page.locator(".tjs-feed__title")
    await expect(titles).to_have_text(["Bob", "Carol", "Team", "Announcements"])
    previews = page.locator(".tjs-feed__preview")
    await expect(previews).to_have_text([
        "Bob: Hi Alice from Bob",
        "Carol: Carol says hi",
        "Bob: Welcome to the team",
        "Carol: Office closed on Friday",
    ])  # fmt: skip
    await expect(page.locator(".tjs-feed__time time")).to_have_text(["now"] * 4)

    # Carol has a photo, which her conversations with alice alone show. The
    # others show the initials of their titles.
    for name in ["carol", "news"]:
        photo = feed_item(page, world, name).locator("img.tjs-feed__avatar")
        await expect(photo).to_have_attribute("src", re.compile(r"^data:image/svg\+xml,"))
        assert await photo.evaluate("image => image.complete && image.naturalWidth > 0")
    for name, initials in [("bob", "B"), ("group", "T")]:
        avatar = feed_item(page, world, name).locator(".tjs-feed__avatar")
        await expect(avatar).to_have_text(initials)

    for name in ["bob", "carol", "group"]:
        badge = feed_item(page, world, name).locator(".tjs-feed__badge")
        await expect(badge.locator("[aria-hidden=true]")).to_have_text("1")
        await expect(badge).to_contain_text("1 unread message")
    await expect(feed_item(page, world, "news").locator(".tjs-feed__badge")).to_have_count(0)
    await expect(feed_item(page, world, "bob")).to_have_accessible_name(
        "Bob now Bob: Hi Alice from Bob 1 unread message"
    )


async def test_inbox_new_conversation_appears(context: BrowserContext, world: World) -> None:
    page = await open_inbox(context, world)
    await expect_feed(page, world, SEEDED_ORDER)
    await page.evaluate("window.pageMarker = 'not reloaded'")

    await world.create_conversation(
        "launch", "Launch plans", ["alice", "bob", "carol"], "carol", "Kick-off on Monday"
    )
    await expect_feed(page, world, ["launch", *SEEDED_ORDER])
    item = feed_item(page, world, "launch")
    await expect(item.locator(".tjs-feed__title")).to_have_text("Launch plans")
    await expect(item.locator(".tjs-feed__preview")).to_have_text("Carol: Kick-off on Monday")
    await expect(item.locator(".tjs-feed__badge")).to_contain_text("1 unread message")
    assert await page.evaluate("window.pageMarker") == "not reloaded"


async def test_inbox_message_reorders_and_counts(
    context: BrowserContext, browser: Browser, world: World
) -> None:
    page = await open_inbox(context, world)
    await expect_feed(page, world, SEEDED_ORDER)
    await page.evaluate("window.pageMarker = 'not reloaded'")

    # Bob writes from his own browser, through his Inbox's Chatbox.
    async with checked_context(browser) as bob_context:
        bob_page = await bob_context.new_page()
        await bob_page.goto(world.url(view="inbox", user="bob", conversation="group"))
        composer = bob_page.get_by_role("textbox", name="Message")
        await expect(composer).to_be_enabled()
        await composer.fill("Lunch at noon?")
        await composer.press("Enter")
        await expect(chat_log(bob_page)).to_contain_text("Lunch at noon?")

    await expect_feed(page, world, ["group", "bob", "carol", "news"])
    group = feed_item(page, world, "group")
    await expect(group.locator(".tjs-feed__preview")).to_have_text("Bob: Lunch at noon?")
    await expect(group.locator(".tjs-feed__badge")).to_contain_text("2 unread messages")

    # A message sent by the backend moves Carol's conversation to the top.
    await world.send("carol", "carol", "Are you there?")
    await expect_feed(page, world, ["carol", "group", "bob", "news"])
    await expect(feed_item(page, world, "carol").locator(".tjs-feed__badge")).to_contain_text(
        "2 unread messages"
    )

    # Reading the conversation clears its badge.
    await group.click()
    await expect(chat_log(page)).to_contain_text("Lunch at noon?")
    await expect(group.locator(".tjs-feed__badge")).to_have_count(0)
    assert await page.evaluate("window.pageMarker") == "not reloaded"


async def test_inbox_relative_time(context: BrowserContext, world: World) -> None:
    page = await context.new_page()
    await page.clock.install()
    await page.goto(world.url(view="inbox", user="alice"))
    time = feed_item(page, world, "bob").locator("time")
    await expect(time).to_have_text("now")
    await page.clock.fast_forward("05:00")
    await expect(time).to_have_text("5 min")


async def test_inbox_feed_header_toggle(context: BrowserContext, world: World) -> None:
    page = await open_inbox(context, world)
    heading = page.locator(".tjs-inbox").get_by_role("heading", name="Conversations")
    await expect(heading).to_be_visible()

    await page.goto(world.url(view="inbox", user="alice", header="0"))
    await expect_feed(page, world, SEEDED_ORDER)
    await expect(heading).to_have_count(0)


async def test_inbox_feed_filter_cases(context: BrowserContext, world: World) -> None:
    cases: list[tuple[object, list[str]]] = [
        ({"access": ["==", "ReadWrite"]}, ["bob", "carol", "group"]),
        ({"custom": {"category": ["==", "work"]}}, ["group"]),
        ({"hasUnreadMessages": False}, ["news"]),
        ({"subject": "set"}, ["group", "news"]),
        ({"subject": ["==", "Team"]}, ["group"]),
        ({"lastMessageTs": [">=", world.times["carol"]]}, ["bob", "carol"]),
        (["any", [{"subject": ["==", "Team"]}, {"access": ["==", "Read"]}]], ["group", "news"]),
    ]
    page = await context.new_page()
    for feed_filter, expected in cases:
        await page.goto(world.url(view="inbox", user="alice", filter=json.dumps(feed_filter)))
        await expect(feed(page)).to_be_visible()
        await expect_feed(page, world, expected)

    await page.get_by_role("button", name="Clear filter").click()
    await expect_feed(page, world, SEEDED_ORDER)


async def test_inbox_unread_filter_follows_reads(context: BrowserContext, world: World) -> None:
    page = await open_inbox(context, world, filter=json.dumps({"hasUnreadMessages": True}))
    await expect_feed(page, world, ["bob", "carol", "group"])
    await feed_item(page, world, "carol").click()
    await expect(chat_log(page)).to_contain_text("Carol says hi")
    # The conversation is read now, so the filter drops it, but the open chat stays.
    await expect_feed(page, world, ["bob", "group"])
    await expect(chat_log(page)).to_contain_text("Carol says hi")

    await world.send("carol", "carol", "One more thing")
    await expect(chat_log(page)).to_contain_text("One more thing")


async def test_inbox_invalid_filter_shows_alert(context: BrowserContext, world: World) -> None:
    page = await context.new_page()
    await page.goto(world.url(view="inbox", user="alice", filter=json.dumps({"colour": "red"})))
    alert = page.locator(".tjs-inbox").get_by_role("alert")
    await expect(alert).to_contain_text("colour")
    await expect(feed(page)).to_have_count(0)


# --- Inbox: selection ------------------------------------------------------------


async def test_inbox_keyboard_selects(context: BrowserContext, world: World) -> None:
    page = await open_inbox(context, world)
    await expect_feed(page, world, SEEDED_ORDER)

    await page.get_by_role("heading", name="Boxes test page").click()
    await page.keyboard.press("Tab")
    await expect(feed_item(page, world, "bob")).to_be_focused()
    await page.keyboard.press("Enter")
    await expect(chat_log(page)).to_contain_text("Hi Alice from Bob")
    await expect(feed_item(page, world, "bob")).to_have_attribute("aria-current", "true")
    # The Chatbox focuses its composer; in the wide layout the feed stays visible.
    await expect(page.get_by_role("textbox", name="Message")).to_be_focused()
    await expect(feed_item(page, world, "bob")).to_be_visible()
    await expect(page.get_by_role("button", name="Back to conversations")).to_be_hidden()

    await feed_item(page, world, "carol").focus()
    await expect(feed_item(page, world, "carol")).to_be_focused()
    await page.keyboard.press("Space")
    await expect(chat_log(page)).to_contain_text("Carol says hi")
    await expect(feed_item(page, world, "carol")).to_have_attribute("aria-current", "true")
    await expect(feed_item(page, world, "bob")).not_to_have_attribute("aria-current", "true")


async def test_inbox_click_events_and_prevent(context: BrowserContext, world: World) -> None:
    page = await open_inbox(context, world, prevent="carol")
    await expect(events(page)).to_have_text(["selected:none"])
    await expect(
        page.locator(".tjs-inbox").get_by_text("No conversation selected.")
    ).to_be_visible()

    await feed_item(page, world, "bob").click()
    await expect(chat_log(page)).to_contain_text("Hi Alice from Bob")
    await expect(feed_item(page, world, "bob")).to_have_attribute("aria-current", "true")
    await expect(events(page)).to_have_text(["selected:none", "select:bob", "selected:bob"])

    # The handler prevents selecting Carol's conversation: Bob's stays open.
    await feed_item(page, world, "carol").click()
    await expect(events(page)).to_have_text(
        ["selected:none", "select:bob", "selected:bob", "select:carol"]
    )
    await feed_item(page, world, "group").click()
    await expect(chat_log(page)).to_contain_text("Welcome to the team")
    await expect(events(page)).to_have_text([
        "selected:none", "select:bob", "selected:bob", "select:carol",
        "select:group", "selected:group",
    ])  # fmt: skip
    await expect(feed_item(page, world, "carol")).not_to_have_attribute("aria-current", "true")


async def test_inbox_selection_by_conversation_id(context: BrowserContext, world: World) -> None:
    page = await open_inbox(context, world, conversation="carol")
    await expect(chat_log(page)).to_contain_text("Carol says hi")
    await expect(feed_item(page, world, "carol")).to_have_attribute("aria-current", "true")
    await expect(events(page)).to_have_text(["selected:carol"])

    # A new conversation_id prop selects that conversation; no select event fires.
    await page.get_by_role("button", name="Show Bob by prop").click()
    await expect(chat_log(page)).to_contain_text("Hi Alice from Bob")
    await expect(feed_item(page, world, "bob")).to_have_attribute("aria-current", "true")
    await expect(feed_item(page, world, "carol")).not_to_have_attribute("aria-current", "true")
    await expect(events(page)).to_have_text(["selected:carol", "selected:bob"])


async def test_inbox_selection_by_sync_conversation(context: BrowserContext, world: World) -> None:
    page = await open_inbox(context, world, sync="1")
    # The synced conversation is created, selected and listed, though it has no messages.
    await expect(page.locator(".tjs-chatbox__header")).to_contain_text("Synced")
    await expect_feed(page, world, ["synced", *SEEDED_ORDER])
    synced = feed_item(page, world, "synced")
    await expect(synced).to_have_attribute("aria-current", "true")
    await expect(synced.locator(".tjs-feed__preview")).to_have_text("No messages yet")
    await expect(events(page)).to_have_text(["selected:synced"])

    composer = page.get_by_role("textbox", name="Message")
    await composer.fill("First message here")
    await composer.press("Enter")
    await expect(synced.locator(".tjs-feed__preview")).to_have_text("You: First message here")


async def test_inbox_ref_selects_and_clears(context: BrowserContext, world: World) -> None:
    page = await open_inbox(context, world)
    await expect(events(page)).to_have_text(["selected:none"])
    await page.get_by_role("button", name="Check ref").click()
    await expect(events(page)).to_have_text(["selected:none", "ref:inbox"])

    await page.get_by_role("button", name="Select Carol by ref").click()
    await expect(chat_log(page)).to_contain_text("Carol says hi")
    await expect(feed_item(page, world, "carol")).to_have_attribute("aria-current", "true")
    await expect(events(page)).to_have_text(["selected:none", "ref:inbox", "selected:carol"])

    await page.get_by_role("button", name="Unmount box").click()
    await expect(feed(page)).to_have_count(0)
    await page.get_by_role("button", name="Check ref").click()
    await expect(events(page)).to_have_text(
        ["selected:none", "ref:inbox", "selected:carol", "ref:none"]
    )


async def test_inbox_narrow_shows_one_pane(context: BrowserContext, world: World) -> None:
    page = await context.new_page()
    await page.set_viewport_size({"width": 400, "height": 700})
    await page.goto(world.url(view="inbox", user="alice"))
    await expect_feed(page, world, SEEDED_ORDER)
    back = page.get_by_role("button", name="Back to conversations")
    composer = page.get_by_role("textbox", name="Message")
    await expect(back).to_be_hidden()
    await expect(composer).to_be_hidden()

    await feed_item(page, world, "group").click()
    await expect(chat_log(page)).to_contain_text("Welcome to the team")
    await expect(feed(page)).to_be_hidden()
    await expect(back).to_be_visible()
    await expect(composer).to_be_focused()

    await back.focus()
    await expect(back).to_be_focused()
    await page.keyboard.press("Enter")
    await expect(feed(page)).to_be_visible()
    await expect(chat_log(page)).to_be_hidden()
    await expect(back).to_be_hidden()
    await expect(feed_item(page, world, "group")).to_be_focused()


# --- Popup -------------------------------------------------------------------------


async def open_popup(context: BrowserContext, world: World, **params: str) -> Page:
    page = await context.new_page()
    await page.goto(world.url(view="popup", user="alice", **params))
    await expect(page.get_by_role("button", name="Check ref")).to_be_visible()
    await expect(page.locator(".tjs-popup")).to_be_attached()
    return page


def launcher(page: Page) -> Locator:
    return page.locator(".tjs-popup__launcher")


def dialog(page: Page) -> Locator:
    return page.get_by_role("dialog", name="Chat")


async def focus_composer(scope: Locator) -> None:
    """Put the keyboard focus in the message field of the chatbox in ``scope``.

    A field stays disabled until its conversation has loaded, and a disabled
    field ignores focus(), so this waits for it to be enabled and then
    checks that the focus arrived.
    """
    field = scope.get_by_role("textbox", name="Message")
    await expect(field).to_be_enabled()
    await field.focus()
    await expect(field).to_be_focused()


async def expect_stays_closed(page: Page) -> None:
    """Check that the popup is closed and that a click on the launcher opens it.

    A popup that a wrongly restored open state reopened before the click would
    close on it instead, and the callers also check the recorded events.
    """
    await expect(dialog(page)).to_have_count(0)
    await page.get_by_role("button", name="Open chat").click()
    await expect(dialog(page)).to_be_visible()
    await expect(page.get_by_role("button", name="Close chat")).to_be_visible()


async def test_popup_launcher_position_and_count(context: BrowserContext, world: World) -> None:
    page = await open_popup(context, world)
    button = launcher(page)
    await expect(button).to_have_accessible_name("Open chat")
    await expect(button.locator(".tjs-popup__count [aria-hidden=true]")).to_have_text("3")
    await expect(button).to_have_accessible_description("3 unread messages")

    # The launcher can show before the module that styles it has loaded.
    await expect(button).to_have_css("position", "fixed")
    box = await button.bounding_box()
    assert box is not None
    # 20 px from the right and bottom edges of the 1100 x 800 viewport.
    assert box["x"] + box["width"] == pytest.approx(1080, abs=2)
    assert box["y"] + box["height"] == pytest.approx(780, abs=2)

    await world.send("bob", "bob", "Are you free later?")
    await expect(button.locator(".tjs-popup__count [aria-hidden=true]")).to_have_text("4")
    await expect(button).to_have_accessible_description("4 unread messages")


async def test_popup_launcher_and_escape(context: BrowserContext, world: World) -> None:
    page = await open_popup(context, world)
    await expect(launcher(page)).to_have_accessible_name("Open chat")
    await expect(dialog(page)).to_have_count(0)

    await launcher(page).click()
    await expect(dialog(page)).to_be_visible()
    await expect(chat_log(dialog(page))).to_contain_text("Welcome to the team")
    await expect(launcher(page)).to_have_accessible_name("Close chat")
    await expect(launcher(page)).to_have_attribute("aria-expanded", "true")
    await expect(events(page)).to_have_text(["open"])

    await focus_composer(dialog(page))
    await page.keyboard.press("Escape")
    await expect(dialog(page)).to_have_count(0)
    await expect(launcher(page)).to_be_focused()
    await expect(launcher(page)).to_have_accessible_name("Open chat")
    await expect(events(page)).to_have_text(["open", "close"])

    await launcher(page).click()
    await expect(dialog(page)).to_be_visible()
    await dialog(page).get_by_role("button", name="Close", exact=True).click()
    await expect(dialog(page)).to_have_count(0)
    await expect(launcher(page)).to_be_focused()
    await expect(events(page)).to_have_text(["open", "close", "open", "close"])


async def test_popup_show_prop_fires_no_events(context: BrowserContext, world: World) -> None:
    page = await open_popup(context, world)
    await page.get_by_role("button", name="Open by prop").click()
    await expect(dialog(page)).to_be_visible()
    await expect(chat_log(dialog(page))).to_contain_text("Welcome to the team")
    await page.get_by_role("button", name="Close by prop").click()
    await expect(dialog(page)).to_have_count(0)

    # Only the user's actions are reported, and the prop changes came first.
    await launcher(page).click()
    await expect(dialog(page)).to_be_visible()
    await launcher(page).click()
    await expect(dialog(page)).to_have_count(0)
    await expect(events(page)).to_have_text(["open", "close"])


async def test_popup_show_prop_opens_at_start(context: BrowserContext, world: World) -> None:
    page = await open_popup(context, world, show="1")
    await expect(dialog(page)).to_be_visible()
    await expect(chat_log(dialog(page))).to_contain_text("Welcome to the team")
    await dialog(page).get_by_role("button", name="Close", exact=True).click()
    await expect(dialog(page)).to_have_count(0)
    await expect(events(page)).to_have_text(["close"])


async def test_popup_close_only_launcher(context: BrowserContext, world: World) -> None:
    page = await open_popup(context, world, launcher="close-only")
    await expect(page.get_by_role("button", name="Open by prop")).to_be_visible()
    await expect(launcher(page)).to_have_count(0)

    await page.get_by_role("button", name="Open by prop").click()
    await expect(dialog(page)).to_be_visible()
    await expect(launcher(page)).to_have_accessible_name("Close chat")
    await launcher(page).click()
    await expect(dialog(page)).to_have_count(0)
    await expect(launcher(page)).to_have_count(0)
    await expect(events(page)).to_have_text(["close"])


async def test_popup_never_launcher(context: BrowserContext, world: World) -> None:
    page = await open_popup(context, world, launcher="never")
    await expect(page.get_by_role("button", name="Open by prop")).to_be_visible()
    await expect(launcher(page)).to_have_count(0)

    await page.get_by_role("button", name="Open by prop").click()
    await expect(dialog(page)).to_be_visible()
    await expect(chat_log(dialog(page))).to_contain_text("Welcome to the team")
    await expect(launcher(page)).to_have_count(0)
    # Without a launcher the panel takes its place in the corner.
    await expect(dialog(page)).to_have_css("position", "fixed")
    box = await dialog(page).bounding_box()
    assert box is not None
    assert box["y"] + box["height"] == pytest.approx(780, abs=2)

    await focus_composer(dialog(page))
    await page.keyboard.press("Escape")
    await expect(dialog(page)).to_have_count(0)
    await expect(launcher(page)).to_have_count(0)
    await expect(events(page)).to_have_text(["close"])


async def test_popup_ref_selects_and_clears(context: BrowserContext, world: World) -> None:
    page = await open_popup(context, world)
    await page.get_by_role("button", name="Check ref").click()
    await expect(events(page)).to_have_text(["ref:popup"])

    await page.get_by_role("button", name="Select Bob by ref").click()
    await launcher(page).click()
    await expect(chat_log(dialog(page))).to_contain_text("Hi Alice from Bob")

    await page.get_by_role("button", name="Unmount box").click()
    await expect(launcher(page)).to_have_count(0)
    await expect(dialog(page)).to_have_count(0)
    await page.get_by_role("button", name="Check ref").click()
    await expect(events(page)).to_have_text(["ref:popup", "open", "ref:none"])


async def test_popup_keep_open_survives_reload(context: BrowserContext, world: World) -> None:
    page = await open_popup(context, world, keep_open="1")
    await page.get_by_role("button", name="Open chat").click()
    await expect(dialog(page)).to_be_visible()

    await page.reload()
    await expect(dialog(page)).to_be_visible()
    await expect(page.get_by_role("button", name="Close chat")).to_be_visible()
    # Restoring is not a user action, so no open event is reported.
    await expect(events(page)).to_have_count(0)

    await page.get_by_role("button", name="Close chat").click()
    await expect(dialog(page)).to_have_count(0)
    await page.reload()
    await expect(page.get_by_role("button", name="Open chat")).to_be_visible()
    await expect_stays_closed(page)
    await expect(events(page)).to_have_text(["open"])


async def test_popup_without_keep_open_starts_closed(context: BrowserContext, world: World) -> None:
    page = await open_popup(context, world)
    await page.get_by_role("button", name="Open chat").click()
    await expect(dialog(page)).to_be_visible()
    await page.reload()
    await expect(page.get_by_role("button", name="Open chat")).to_be_visible()
    await expect_stays_closed(page)
    await expect(events(page)).to_have_text(["open"])
