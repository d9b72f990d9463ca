"""The Chatbox in Chromium: props, header, message list, reads and message text.

One server serves the whole module. Each test uses conversations of its own,
seeded before the server starts, so tests do not see each other's messages.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, Page, expect

from talkjs_components.models import ConversationAttributes, MessageType, Participation
from talkjs_components.service import TRUSTED, ChatService

from .apps.chatbox_data import BOB_PHOTO_URL, set_created_at
from .chatbox_pages import (
    TIMEOUT_MS,
    Contexts,
    bubble,
    chatbox_server,
    message_log,
    receipt,
    send,
)

PAGE_HISTORY = 130
"""Messages of the paging conversation: two full pages of 50 and a partial one."""

FOLLOW_HISTORY = 40
"""Messages of the following conversation: more than the list shows at once."""

HEBREW_LINE = "שלום לכולם, זו שורה ארוכה למדי בעברית"
HEBREW_SHORT = "\u05db\u05df"
"""The Hebrew word for "yes", as escapes because its last letter looks like a Latin "l"."""
ENGLISH_LINE = "Hello everyone, this is a rather long line in English"

FORMATTED = "fmt: *bold* _italic_ ~strike~ `code`"
FENCED = "```\nfenced *kept as typed*\n```"
LINKS = "web links: https://example.com/a?b=1 and http://example.org and mailto:someone@example.com"
NOT_LINKS = (
    "other schemes: javascript:alert(1) and ftp://example.com and "
    "[x](javascript:alert(2)) and www.example.com"
)
MARKUP = (
    '<b>markup stays text</b> <img src=x onerror="window.injected = 1"> '
    "<script>window.injected = 2</script>"
)
LONG_WORD = "long:" + "x" * 400
LONG_URL = "https://example.com/" + "y" * 400
UNICODE_TEXT = (
    "family 👩\u200d👩\u200d👧\u200d👦 flag 🇺🇳 thumbs 👍🏽 cafe\u0301 "
    "a\u0301\u0302\u0303 keycap 1\ufe0f\u20e3 hebrew שָׁלוֹם"
)


def _ms(year: int, month: int, day: int, hour: int, minute: int) -> int:
    return int(datetime(year, month, day, hour, minute, tzinfo=UTC).timestamp() * 1000)


async def _conversation(
    service: ChatService,
    conversation_id: str,
    members: list[str],
    attributes: ConversationAttributes | None = None,
) -> None:
    participants = {member: Participation() for member in members}
    await service.sync_conversation(TRUSTED, conversation_id, attributes, participants)


async def _say(service: ChatService, conversation_id: str, sender: str, text: str) -> str:
    message = await service.send_message(TRUSTED, conversation_id, text, sender_id=sender)
    return message.id


async def seed(service: ChatService) -> Callable[[Path], None]:
    """Write every conversation of this module; return the backdating of the list test."""
    await _conversation(
        service, "hdr-group", ["alice", "bob", "carol"], ConversationAttributes(subject="Planning")
    )
    await _conversation(service, "hdr-bob", ["alice", "bob"])
    await _say(service, "hdr-bob", "bob", "bob in the header test")
    await _conversation(service, "hdr-carol", ["alice", "carol"])

    await _conversation(service, "guest-conv", ["alice", "bob"])
    await _say(service, "guest-conv", "alice", "alice wrote this earlier")
    await _say(service, "guest-conv", "bob", "bob asks a question")

    await _conversation(service, "ref-conv", ["alice", "bob"])
    await _say(service, "ref-conv", "bob", "a message for the ref test")
    await _conversation(service, "load-conv", ["alice", "bob"])
    await _say(service, "load-conv", "bob", "seen after connecting")
    await _conversation(service, "style-conv", ["alice", "bob"])
    await _say(service, "style-conv", "alice", "styled own message")
    await _conversation(service, "field-conv", ["alice", "bob"])
    await _say(service, "field-conv", "bob", "a message above the composer")
    await _conversation(service, "dir-conv", ["alice", "bob"])
    await _say(service, "dir-conv", "bob", f"{HEBREW_LINE}\n{HEBREW_SHORT}")
    await _say(service, "dir-conv", "alice", f"{ENGLISH_LINE}\nok")

    welcome = ConversationAttributes(welcome_messages=["Welcome to the list tests"])
    await _conversation(service, "list-conv", ["alice", "bob", "carol", "erin"], welcome)
    times = {
        await _say(service, "list-conv", "bob", "first from bob"): _ms(2024, 3, 9, 9, 30),
        await _say(service, "list-conv", "bob", "second from bob"): _ms(2024, 3, 9, 9, 31),
        # 00:30 on 10 March in Berlin, still 9 March in UTC.
        await _say(service, "list-conv", "carol", "carol after midnight"): _ms(2024, 3, 9, 23, 30),
    }
    system = await service.send_message(
        TRUSTED, "list-conv", "Carol renamed the conversation", type=MessageType.SYSTEM
    )
    times[system.id] = _ms(2024, 3, 11, 8, 0)
    times[await _say(service, "list-conv", "alice", "alice on monday")] = _ms(2024, 3, 11, 8, 1)
    times[await _say(service, "list-conv", "alice", "alice six minutes later")] = _ms(
        2024, 3, 11, 8, 7
    )
    times[await _say(service, "list-conv", "alice", "alice right after")] = _ms(2024, 3, 11, 8, 8)

    await _conversation(service, "receipts", ["alice", "bob", "carol"])
    first = await _say(service, "receipts", "alice", "receipt one")
    second = await _say(service, "receipts", "alice", "receipt two")
    await _say(service, "receipts", "alice", "receipt three")
    await service.mark_read("bob", "receipts", second)
    await service.mark_read("carol", "receipts", first)

    await _conversation(service, "paging", ["alice", "bob", "carol"])
    for number in range(PAGE_HISTORY):
        await _say(service, "paging", ("bob", "carol")[number % 2], f"page message {number:03}")
    await _conversation(service, "follow", ["alice", "bob"])
    await _conversation(service, "reads", ["alice", "bob"])
    await _conversation(service, "scroll-race", ["alice", "bob"])
    await _conversation(service, "shrink-grow", ["alice", "bob"])
    for number in range(FOLLOW_HISTORY):
        await _say(service, "follow", "bob", f"follow message {number:02}")
        await _say(service, "reads", "bob", f"earlier message {number:02}")
        await _say(service, "scroll-race", "bob", f"race message {number:02}")
        await _say(service, "shrink-grow", "bob", f"shrink message {number:02}")

    await _conversation(service, "text-conv", ["alice", "bob"])
    for text in (FORMATTED, FENCED, LINKS, NOT_LINKS, MARKUP, LONG_WORD, LONG_URL):
        await _say(service, "text-conv", "bob", text)

    await _conversation(service, "filter-conv", ["alice", "bob", "carol"])
    await _say(service, "filter-conv", "bob", "apple pie from bob")
    await _say(service, "filter-conv", "carol", "Apple juice from carol")
    await _say(service, "filter-conv", "carol", "pineapple from carol")
    await _say(service, "filter-conv", "bob", "no fruit from bob")

    return lambda database: set_created_at(database, times)


@pytest.fixture(scope="module")
async def server(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    async with chatbox_server(tmp_path_factory.mktemp("chatbox-ui"), seed) as base_url:
        yield base_url


@pytest.fixture
async def contexts(browser: Browser, server: str) -> AsyncIterator[Contexts]:
    opened = Contexts(browser, server)
    try:
        yield opened
    finally:
        errors = await opened.close()
    assert errors == []


# Props


async def test_conversation_selection_props(contexts: Contexts) -> None:
    """The conversation comes from conversation_id, a builder, a function, or None."""
    page = await contexts.open("conversation=ref-conv")
    await expect(bubble(page, "a message for the ref test")).to_be_visible(timeout=TIMEOUT_MS)

    page = await contexts.open("conversation=sync-builder&sync=builder")
    title = page.locator(".tjs-chatbox__header .tjs-title")
    await expect(title).to_contain_text("Made by a builder", timeout=TIMEOUT_MS)
    await expect(title).to_contain_text("Bob")
    await send(page, "hello to a synced conversation")
    await expect(bubble(page, "hello to a synced conversation")).to_be_visible(timeout=TIMEOUT_MS)

    page = await contexts.open("conversation=sync-callable&sync=callable")
    title = page.locator(".tjs-chatbox__header .tjs-title")
    await expect(title).to_contain_text("Made for alice by a function", timeout=TIMEOUT_MS)
    await expect(page.get_by_role("textbox", name="Message")).to_be_enabled()

    page = await contexts.open("conversation=none")
    await expect(page.get_by_text("No conversation selected.")).to_be_visible(timeout=TIMEOUT_MS)
    await expect(message_log(page)).to_have_count(0)
    await expect(page.get_by_role("textbox", name="Message")).to_have_count(0)


async def test_as_guest_reads_without_marking(contexts: Contexts) -> None:
    bob = await contexts.open("user=bob&conversation=guest-conv")
    await expect(receipt(bob, "bob asks a question")).to_have_text("Sent", timeout=TIMEOUT_MS)
    alice = await contexts.open("conversation=guest-conv&guest=1")
    await expect(bubble(alice, "bob asks a question")).to_be_visible(timeout=TIMEOUT_MS)
    await expect(bubble(alice, "alice wrote this earlier")).to_be_visible()
    await expect(alice.get_by_role("textbox", name="Message")).to_have_count(0)
    await expect(message_log(alice).get_by_role("button")).to_have_count(0)
    await expect(alice.get_by_role("button", name="Leave conversation")).to_have_count(0)

    # Alice's page reported the list as seen on load (it is focused and at the
    # end), so a read would already be on its way. Bob's next message is
    # published after it, and Bob's session handles events in order: once his
    # page shows the new message, a read of the old one would show too.
    await send(bob, "bob follows up")
    await expect(bubble(bob, "bob follows up")).to_be_visible(timeout=TIMEOUT_MS)
    await expect(receipt(bob, "bob asks a question")).to_have_text("Sent")
    await expect(bubble(alice, "bob follows up")).to_be_visible(timeout=TIMEOUT_MS)
    await send(bob, "bob asks again")
    await expect(bubble(bob, "bob asks again")).to_be_visible(timeout=TIMEOUT_MS)
    await expect(receipt(bob, "bob follows up")).to_have_text("Sent")


async def test_chatbox_ref_follows_mount(contexts: Contexts) -> None:
    page = await contexts.open("conversation=ref-conv")
    await expect(bubble(page, "a message for the ref test")).to_be_visible(timeout=TIMEOUT_MS)
    ref_state = page.get_by_role("status", name="Chatbox ref")
    read_ref = page.get_by_role("button", name="Read chatbox ref")
    await read_ref.click()
    await expect(ref_state).to_have_text("box of ref-conv, alive: True")

    await page.get_by_role("button", name="Unmount chatbox").click()
    await expect(message_log(page)).to_have_count(0)
    await read_ref.click()
    await expect(ref_state).to_have_text("empty")

    await page.get_by_role("button", name="Mount chatbox").click()
    await expect(bubble(page, "a message for the ref test")).to_be_visible(timeout=TIMEOUT_MS)
    await read_ref.click()
    await expect(ref_state).to_have_text("box of ref-conv, alive: True")


async def test_loading_component_until_connected(contexts: Contexts) -> None:
    page = await contexts.open("conversation=load-conv&loading=1")
    loading = page.locator(".tjs-chatbox .test-loading")
    await expect(loading).to_have_text("Connecting to the test chat…")
    await expect(message_log(page)).to_have_count(0)

    await page.get_by_role("button", name="Finish connecting").click()
    await expect(bubble(page, "seen after connecting")).to_be_visible(timeout=TIMEOUT_MS)
    await expect(loading).to_have_count(0)


async def test_class_style_and_theme_apply(contexts: Contexts) -> None:
    page = await contexts.open("conversation=style-conv&styled=1&theme=1")
    chatbox = page.locator(".tjs-chatbox")
    await expect(chatbox).to_have_class(re.compile(r"(^|\s)test-chatbox(\s|$)"))
    await expect(chatbox).to_have_css("max-width", "540px")
    own = bubble(page, "styled own message")
    await expect(own).to_have_css("background-color", "rgb(255, 240, 200)", timeout=TIMEOUT_MS)
    await expect(page.get_by_role("button", name="Send")).to_have_css(
        "background-color", "rgb(0, 119, 102)"
    )

    # Without the props, the defaults apply.
    page = await contexts.open("conversation=style-conv")
    own = bubble(page, "styled own message")
    await expect(own).to_have_css("background-color", "rgb(230, 240, 251)", timeout=TIMEOUT_MS)
    await expect(page.get_by_role("button", name="Send")).to_have_css(
        "background-color", "rgb(43, 108, 176)"
    )
    await expect(page.locator(".tjs-chatbox")).not_to_have_class(re.compile("test-chatbox"))


async def test_show_chat_header_false_hides_it(contexts: Contexts) -> None:
    page = await contexts.open("conversation=style-conv&header=0")
    await expect(bubble(page, "styled own message")).to_be_visible(timeout=TIMEOUT_MS)
    await expect(page.get_by_role("textbox", name="Message")).to_be_enabled()
    await expect(page.locator(".tjs-chatbox__header")).to_have_count(0)
    await expect(page.get_by_role("button", name="Leave conversation")).to_have_count(0)


async def test_message_field_defaults(contexts: Contexts) -> None:
    page = await contexts.open("conversation=field-conv")
    composer = page.get_by_role("textbox", name="Message")
    await expect(composer).to_be_enabled(timeout=TIMEOUT_MS)
    await expect(composer).to_have_attribute("placeholder", "Say something...")
    await expect(composer).to_be_focused()
    await expect(composer).to_have_attribute("spellcheck", "false")


async def test_message_field_options(contexts: Contexts) -> None:
    query = "conversation=field-conv&placeholder=Write+to+Bob&enter=0&autofocus=0&spellcheck=1"
    page = await contexts.open(query)
    composer = page.get_by_role("textbox", name="Message")
    await expect(composer).to_be_enabled(timeout=TIMEOUT_MS)
    await expect(composer).to_have_attribute("placeholder", "Write to Bob")
    await expect(composer).not_to_be_focused()
    await expect(composer).to_have_attribute("spellcheck", "true")

    # With enter_sends_message off, Enter adds a line and only the button sends.
    await composer.click()
    await composer.press_sequentially("first line")
    await composer.press("Enter")
    await composer.press_sequentially("second line")
    await expect(composer).to_have_value("first line\nsecond line")
    await page.get_by_role("button", name="Send").click()
    sent = bubble(page, "first line")
    await expect(sent.locator(".tjs-message__text")).to_have_text(
        "first line\nsecond line", timeout=TIMEOUT_MS
    )
    await expect(composer).to_have_value("")

    page = await contexts.open("conversation=field-conv&field=hidden")
    await expect(bubble(page, "a message above the composer")).to_be_visible(timeout=TIMEOUT_MS)
    await expect(page.get_by_role("textbox", name="Message")).to_have_count(0)
    await expect(page.get_by_role("button", name="Send")).to_have_count(0)


async def test_dir_prop_sets_direction(contexts: Contexts) -> None:
    for direction in ("rtl", "ltr", "auto"):
        page = await contexts.open(f"conversation=dir-conv&dir={direction}")
        chatbox = page.locator(".tjs-chatbox")
        await expect(chatbox).to_have_attribute("dir", direction, timeout=TIMEOUT_MS)
        await expect(bubble(page, HEBREW_SHORT)).to_be_visible(timeout=TIMEOUT_MS)
        if direction == "rtl":
            await expect(chatbox).to_have_css("direction", "rtl")
            # The composer follows the chatbox, and message text picks its own direction.
            await expect(page.get_by_role("textbox", name="Message")).to_have_css(
                "direction", "rtl"
            )
            english = bubble(page, ENGLISH_LINE).locator(".tjs-message__text")
            await expect(english).to_have_css("direction", "ltr")


# Header


async def test_header_title_avatars_presence(contexts: Contexts) -> None:
    page = await contexts.open("conversation=hdr-group")
    header = page.locator(".tjs-chatbox__header")
    await expect(header.locator(".tjs-title > span")).to_have_text("Planning", timeout=TIMEOUT_MS)
    await expect(header.locator(".tjs-title small")).to_have_text("Bob, Carol Jones")
    await expect(header.locator(".tjs-avatar--initials")).to_have_text("P")
    await expect(header.get_by_role("status")).to_have_text("0 online")

    page = await contexts.open("conversation=hdr-carol")
    header = page.locator(".tjs-chatbox__header")
    await expect(header.locator(".tjs-title > span")).to_have_text(
        "Carol Jones", timeout=TIMEOUT_MS
    )
    await expect(header.locator(".tjs-title small")).to_have_count(0)
    await expect(header.locator(".tjs-avatar--initials")).to_have_text("CJ")

    alice = await contexts.open("conversation=hdr-bob")
    header = alice.locator(".tjs-chatbox__header")
    await expect(header.locator(".tjs-title > span")).to_have_text("Bob", timeout=TIMEOUT_MS)
    picture = header.locator("img.tjs-avatar")
    await expect(picture).to_have_attribute("src", BOB_PHOTO_URL)
    await expect(picture).to_have_js_property("complete", True)
    assert await picture.evaluate("image => image.naturalWidth") == 32
    # The sender's picture appears next to his message too.
    message_picture = bubble(alice, "bob in the header test").locator("img.tjs-avatar")
    await expect(message_picture).to_have_attribute("src", BOB_PHOTO_URL)

    presence = header.get_by_role("status")
    await expect(presence).to_have_text("Offline")
    bob = await contexts.open("user=bob&conversation=hdr-bob")
    await expect(presence).to_have_text("Online", timeout=TIMEOUT_MS)
    await expect(presence).to_have_class(re.compile(r"tjs-presence--online"))
    await bob.close()
    await expect(presence).to_have_text("Offline", timeout=TIMEOUT_MS)


# Message list


async def test_list_groups_days_and_welcome(contexts: Contexts) -> None:
    page = await contexts.open("conversation=list-conv")
    log = message_log(page)
    await expect(bubble(page, "alice right after")).to_be_visible(timeout=TIMEOUT_MS)

    # The conversation's welcome messages come first, then those of the
    # other participants.
    welcome = log.locator(".tjs-message--system:not([data-message-id])")
    await expect(welcome).to_have_count(2)
    await expect(welcome.nth(0)).to_have_text("Welcome to the list tests")
    await expect(welcome.nth(1).locator(".tjs-message__sender")).to_have_text("Erin")
    await expect(welcome.nth(1).locator(".tjs-message__text")).to_have_text(
        "Erin here, ask me anything"
    )

    # Day headings follow the reader's time zone: 23:30 UTC is the next day in Berlin.
    await expect(log.get_by_role("separator")).to_have_text(
        ["Saturday, 9 March 2024", "Sunday, 10 March 2024", "Monday, 11 March 2024"]
    )
    carol_row = log.locator(".tjs-row", has_text="carol after midnight")
    await expect(carol_row.get_by_role("separator")).to_have_text("Sunday, 10 March 2024")

    grouped = {
        "first from bob": False,
        "second from bob": True,
        "carol after midnight": False,
        "alice on monday": False,
        "alice six minutes later": False,
        "alice right after": True,
    }
    for text, is_grouped in grouped.items():
        classes = re.compile(r"tjs-message--grouped")
        if is_grouped:
            await expect(bubble(page, text)).to_have_class(classes)
            await expect(bubble(page, text).locator(".tjs-message__sender")).to_be_hidden()
        else:
            await expect(bubble(page, text)).not_to_have_class(classes)
            await expect(bubble(page, text).locator(".tjs-message__sender")).to_be_visible()
    await expect(bubble(page, "first from bob").locator(".tjs-message__sender")).to_have_text("Bob")

    time = bubble(page, "first from bob").locator("time")
    await expect(time).to_have_text("10:30")
    await expect(time).to_have_attribute("datetime", "2024-03-09T09:30:00.000Z")
    await expect(bubble(page, "carol after midnight").locator("time")).to_have_text("00:30")

    system = bubble(page, "Carol renamed the conversation")
    await expect(system).to_have_class(re.compile(r"tjs-message--system"))
    await expect(system.locator(".tjs-message__sender")).to_have_count(0)
    await expect(system.locator("time")).to_have_count(0)
    # The centre of the list's content box leaves out a scrollbar, if any.
    offset = await system.evaluate(
        """node => {
            const log = node.closest('[role="log"]');
            const centre = log.getBoundingClientRect().left + log.clientLeft + log.clientWidth / 2;
            const box = node.getBoundingClientRect();
            return (box.left + box.right) / 2 - centre;
        }"""
    )
    assert abs(offset) <= 1, "the system message is centred in the list"


async def test_read_receipts_sent_some_all(contexts: Contexts) -> None:
    alice = await contexts.open("conversation=receipts")
    await expect(receipt(alice, "receipt one")).to_have_text("Read", timeout=TIMEOUT_MS)
    await expect(receipt(alice, "receipt two")).to_have_text("Read by some")
    await expect(receipt(alice, "receipt three")).to_have_text("Sent")

    # Carol reads everything: the receipts change live.
    carol = await contexts.open("user=carol&conversation=receipts")
    await expect(bubble(carol, "receipt three")).to_be_visible(timeout=TIMEOUT_MS)
    await expect(receipt(alice, "receipt two")).to_have_text("Read", timeout=TIMEOUT_MS)
    await expect(receipt(alice, "receipt three")).to_have_text("Read by some")
    # Only own messages carry receipts.
    await expect(message_log(carol).locator(".tjs-message__receipt")).to_have_count(0)


async def test_scroll_up_loads_older_pages(contexts: Contexts) -> None:
    page = await contexts.open("conversation=paging")
    log = message_log(page)
    rows = log.locator("[data-message-id]")
    await expect(rows.last).to_contain_text("page message 129", timeout=TIMEOUT_MS)
    await expect(rows).to_have_count(50)
    await expect(rows.first).to_contain_text("page message 080")

    oldest = bubble(page, "page message 080")
    # The message's distance from the top of the list's content, which is where
    # it appears when the list is scrolled to the top.
    content_offset = """node => {
        const log = node.closest('[role="log"]');
        return node.getBoundingClientRect().top - log.getBoundingClientRect().top + log.scrollTop;
    }"""
    shown_offset = """node => {
        const log = node.closest('[role="log"]');
        return node.getBoundingClientRect().top - log.getBoundingClientRect().top;
    }"""
    offset_at_top: float = await oldest.evaluate(content_offset)
    await log.evaluate("node => { node.scrollTop = 0; }")
    await expect(rows).to_have_count(100, timeout=TIMEOUT_MS)
    await expect(rows.first).to_contain_text("page message 030")
    # The reader still sees the message that was at the top, where it was.
    shown_at: float = await oldest.evaluate(shown_offset)
    assert abs(shown_at - offset_at_top) <= 2
    assert await log.evaluate("node => node.scrollTop") > 0

    await log.evaluate("node => { node.scrollTop = 0; }")
    await expect(rows).to_have_count(PAGE_HISTORY, timeout=TIMEOUT_MS)
    await expect(rows.first).to_contain_text("page message 000")
    await expect(rows.last).to_contain_text("page message 129")


async def _scroll_up(page: Page) -> None:
    """Scroll the message list up with the mouse wheel, away from its end."""
    log = message_log(page)
    await log.hover()
    await page.mouse.wheel(0, -600)
    await page.wait_for_function(
        """() => {
            const log = document.querySelector('[role="log"]');
            return log.scrollHeight - log.scrollTop - log.clientHeight > 300;
        }""",
        timeout=TIMEOUT_MS,
    )


async def test_list_follows_or_offers_jump(contexts: Contexts) -> None:
    alice = await contexts.open("conversation=follow")
    bob = await contexts.open("user=bob&conversation=follow")
    await expect(bubble(alice, "follow message 39")).to_be_in_viewport(timeout=TIMEOUT_MS)

    await send(bob, "live one")
    await expect(bubble(alice, "live one")).to_be_in_viewport(timeout=TIMEOUT_MS)

    await _scroll_up(alice)
    log = message_log(alice)
    position: int = await log.evaluate("node => node.scrollTop")
    jump = alice.get_by_role("button", name="New messages ↓")
    await expect(jump).to_have_count(0)
    await send(bob, "live two")
    await expect(jump).to_be_visible(timeout=TIMEOUT_MS)
    await expect(bubble(alice, "live two")).to_be_attached()
    await expect(bubble(alice, "live two")).not_to_be_in_viewport()
    assert await log.evaluate("node => node.scrollTop") == position

    await jump.click()
    await expect(bubble(alice, "live two")).to_be_in_viewport()
    await expect(jump).to_have_count(0)


async def test_scroll_before_list_change_kept(contexts: Contexts) -> None:
    alice = await contexts.open("conversation=scroll-race")
    bob = await contexts.open("user=bob&conversation=scroll-race")
    await expect(bubble(alice, "race message 39")).to_be_in_viewport(timeout=TIMEOUT_MS)

    # The browser reports a scroll with the next frame. A list update that
    # lands before that report must not take the reader back to the end.
    # Any change of the list's DOM runs the same handler as an update.
    log = message_log(alice)
    await log.evaluate(
        """log => {
            log.scrollTop = 0;
            log.append(document.createComment("changed before the scroll event"));
        }"""
    )
    await alice.wait_for_function(
        "() => document.querySelector('[role=\"log\"]').scrollTop < 80", timeout=TIMEOUT_MS
    )
    position: int = await log.evaluate("node => node.scrollTop")
    await send(bob, "after the scroll")
    jump = alice.get_by_role("button", name="New messages ↓")
    await expect(jump).to_be_visible(timeout=TIMEOUT_MS)
    await expect(bubble(alice, "after the scroll")).not_to_be_in_viewport()
    assert await log.evaluate("node => node.scrollTop") == position


async def test_shrink_then_grow_keeps_following(contexts: Contexts) -> None:
    alice = await contexts.open("conversation=shrink-grow")
    bob = await contexts.open("user=bob&conversation=shrink-grow")
    await expect(bubble(alice, "shrink message 39")).to_be_in_viewport(timeout=TIMEOUT_MS)
    log = message_log(alice)
    at_end = """() => {
        const log = document.querySelector('[role="log"]');
        return log.scrollHeight - log.scrollTop - log.clientHeight < 2;
    }"""
    await log.evaluate(
        """log => {
            const spacer = document.createElement("div");
            spacer.id = "spacer";
            spacer.style.height = "300px";
            spacer.style.flex = "none";  // the log is a column flexbox
            log.append(spacer);
        }"""
    )
    await alice.wait_for_function(at_end, timeout=TIMEOUT_MS)

    # The content shrinks, so the browser moves the view up to the new end.
    # Then, before that move's scroll event, the content grows again: the
    # list must still follow, since the reader never scrolled.
    await log.evaluate(
        """async log => {
            document.getElementById("spacer").remove();
            await Promise.resolve();  // lets the list's MutationObserver run
            const grown = document.createElement("div");
            grown.style.height = "200px";
            grown.style.flex = "none";
            log.append(grown);
        }"""
    )
    await alice.wait_for_function(at_end, timeout=TIMEOUT_MS)
    await send(bob, "after shrink and grow")
    await expect(bubble(alice, "after shrink and grow")).to_be_in_viewport(timeout=TIMEOUT_MS)
    await expect(alice.get_by_role("button", name="New messages ↓")).to_have_count(0)


async def _without_focus_emulation(page: Page) -> None:
    """Let the page's focus follow which page is in front, as in a desktop browser.

    Playwright emulates focus for every page, so ``document.hasFocus()`` is
    always true. With the emulation off, Chromium gives focus to the page
    brought to the front. A page sent behind another gets a real ``blur``
    event, and its ``document.hasFocus()`` turns false. The message list's
    script checks exactly that before it reports messages as seen. Call this
    after the page has navigated, because Playwright turns the emulation back
    on for the new document's renderer.
    """
    session = await page.context.new_cdp_session(page)
    await session.send("Emulation.setFocusEmulationEnabled", {"enabled": False})
    await page.bring_to_front()


async def test_reads_need_focus_and_list_end(contexts: Contexts) -> None:
    bob = await contexts.open("user=bob&conversation=reads")
    await expect(receipt(bob, "earlier message 39")).to_have_text("Sent", timeout=TIMEOUT_MS)
    alice = await contexts.open("conversation=reads")
    await _without_focus_emulation(alice)
    assert await alice.evaluate("document.hasFocus()")
    await expect(receipt(bob, "earlier message 39")).to_have_text("Read", timeout=TIMEOUT_MS)

    # Another page in front: Alice's window loses focus.
    elsewhere = await alice.context.new_page()
    await elsewhere.bring_to_front()
    await alice.wait_for_function("!document.hasFocus()")
    await send(bob, "while away")
    await expect(bubble(alice, "while away")).to_be_visible(timeout=TIMEOUT_MS)
    # Had Alice's page reported "while away" as seen, that read would be
    # published before Bob's next message, which his session handles in order.
    await send(bob, "still away")
    await expect(bubble(bob, "still away")).to_be_visible(timeout=TIMEOUT_MS)
    await expect(receipt(bob, "while away")).to_have_text("Sent")
    await expect(bubble(alice, "still away")).to_be_visible(timeout=TIMEOUT_MS)

    await alice.bring_to_front()
    await expect(receipt(bob, "while away")).to_have_text("Read", timeout=TIMEOUT_MS)
    await expect(receipt(bob, "still away")).to_have_text("Read", timeout=TIMEOUT_MS)

    # Focused, but the end of the list is scrolled out of view.
    await _scroll_up(alice)
    await send(bob, "while scrolled up")
    jump = alice.get_by_role("button", name="New messages ↓")
    await expect(jump).to_be_visible(timeout=TIMEOUT_MS)
    await send(bob, "still scrolled up")
    await expect(bubble(bob, "still scrolled up")).to_be_visible(timeout=TIMEOUT_MS)
    await expect(receipt(bob, "while scrolled up")).to_have_text("Sent")

    await jump.click()
    await expect(receipt(bob, "while scrolled up")).to_have_text("Read", timeout=TIMEOUT_MS)
    await expect(receipt(bob, "still scrolled up")).to_have_text("Read", timeout=TIMEOUT_MS)


# Message text


async def test_formatting_subset_renders(contexts: Contexts) -> None:
    page = await contexts.open("conversation=text-conv")
    formatted = bubble(page, "fmt:").locator(".tjs-message__text")
    await expect(formatted).to_be_visible(timeout=TIMEOUT_MS)
    await expect(formatted.locator("strong")).to_have_text("bold")
    await expect(formatted.locator("em")).to_have_text("italic")
    await expect(formatted.locator("s")).to_have_text("strike")
    await expect(formatted.locator("code")).to_have_text("code")
    await expect(formatted).to_have_text("fmt: bold italic strike code")

    fenced = bubble(page, "fenced").locator(".tjs-message__text")
    await expect(fenced.locator("pre > code")).to_have_text("fenced *kept as typed*")
    await expect(fenced.locator("strong")).to_have_count(0)


async def test_only_web_urls_become_links(contexts: Contexts) -> None:
    page = await contexts.open("conversation=text-conv")
    links = bubble(page, "web links:").get_by_role("link")
    await expect(links).to_have_count(3, timeout=TIMEOUT_MS)
    expected = ["https://example.com/a?b=1", "http://example.org", "mailto:someone@example.com"]
    for link, href in zip(await links.all(), expected, strict=True):
        await expect(link).to_have_attribute("href", href)
        await expect(link).to_have_text(href)
        await expect(link).to_have_attribute("target", "_blank")
        rel = (await link.get_attribute("rel") or "").split()
        assert "noopener" in rel
        assert "nofollow" in rel

    not_links = bubble(page, "other schemes:").locator(".tjs-message__text")
    await expect(not_links).to_have_text(NOT_LINKS)
    await expect(not_links.locator("a")).to_have_count(0)

    markup = bubble(page, "markup stays text").locator(".tjs-message__text")
    await expect(markup).to_have_text(MARKUP)
    await expect(markup.locator("b, img, script")).to_have_count(0)
    assert await page.evaluate("window.injected === undefined")


async def test_long_words_wrap_inside_bubble(contexts: Contexts) -> None:
    page = await contexts.open("conversation=text-conv")
    for text in (LONG_WORD, LONG_URL):
        message = bubble(page, text[:24])
        await expect(message).to_be_visible(timeout=TIMEOUT_MS)
        await expect(message.locator(".tjs-message__text")).to_have_text(text)
        sizes: dict[str, Any] = await message.evaluate(
            """node => {
                const log = node.closest('[role="log"]').getBoundingClientRect();
                const box = node.getBoundingClientRect();
                return {
                    scrollWidth: node.scrollWidth, clientWidth: node.clientWidth,
                    left: box.left, right: box.right, logLeft: log.left, logRight: log.right,
                    logScrollWidth: node.closest('[role="log"]').scrollWidth,
                    logClientWidth: node.closest('[role="log"]').clientWidth,
                };
            }"""
        )
        assert sizes["scrollWidth"] <= sizes["clientWidth"], sizes
        assert sizes["left"] >= sizes["logLeft"], sizes
        assert sizes["right"] <= sizes["logRight"], sizes
        assert sizes["logScrollWidth"] <= sizes["logClientWidth"], sizes


async def test_unicode_text_stays_intact(contexts: Contexts) -> None:
    page = await contexts.open("conversation=text-conv")
    await send(page, UNICODE_TEXT)
    text = bubble(page, "family").locator(".tjs-message__text")
    await expect(text).to_be_visible(timeout=TIMEOUT_MS)
    assert await text.evaluate("node => node.textContent") == UNICODE_TEXT

    await send(page, "marks *👍🏽* around _🇺🇳_")
    styled = bubble(page, "marks").locator(".tjs-message__text")
    await expect(styled.locator("strong")).to_have_text("👍🏽", timeout=TIMEOUT_MS)
    await expect(styled.locator("em")).to_have_text("🇺🇳")


async def test_rtl_message_aligns_right(contexts: Contexts) -> None:
    page = await contexts.open("conversation=dir-conv")
    texts = message_log(page).locator("[data-message-id] .tjs-message__text")
    await expect(texts).to_have_count(2, timeout=TIMEOUT_MS)
    for index in range(2):
        await expect(texts.nth(index)).to_have_attribute("dir", "auto")

    # Where does the short last line of each two-line message sit in its box?
    last_line = """(node, word) => {
        const walker = document.createTreeWalker(node, NodeFilter.SHOW_TEXT);
        while (walker.nextNode()) {
            const text = walker.currentNode;
            const start = text.data.lastIndexOf(word);
            if (start < 0) continue;
            const range = document.createRange();
            range.setStart(text, start);
            range.setEnd(text, start + word.length);
            const line = range.getBoundingClientRect();
            const box = node.getBoundingClientRect();
            return {fromLeft: line.left - box.left, fromRight: box.right - line.right};
        }
        return null;
    }"""
    hebrew = bubble(page, HEBREW_SHORT).locator(".tjs-message__text")
    await expect(hebrew).to_have_css("direction", "rtl")
    place: dict[str, float] = await hebrew.evaluate(last_line, HEBREW_SHORT)
    assert abs(place["fromRight"]) <= 1, place
    assert place["fromLeft"] > 50, place

    english = bubble(page, ENGLISH_LINE).locator(".tjs-message__text")
    await expect(english).to_have_css("direction", "ltr")
    place = await english.evaluate(last_line, "ok")
    assert abs(place["fromLeft"]) <= 1, place
    assert place["fromRight"] > 50, place


# Filters


async def test_filter_and_highlights_set_and_clear(contexts: Contexts) -> None:
    page = await contexts.open("conversation=filter-conv")
    rows = message_log(page).locator("[data-message-id]")
    await expect(rows).to_have_count(4, timeout=TIMEOUT_MS)

    await page.get_by_role("button", name="Show only Bob").click()
    await expect(rows).to_have_count(2, timeout=TIMEOUT_MS)
    await expect(rows).to_contain_text(["apple pie from bob", "no fruit from bob"])
    await page.get_by_role("button", name="Show all").click()
    await expect(rows).to_have_count(4, timeout=TIMEOUT_MS)

    marks = message_log(page).locator("mark")
    await expect(marks).to_have_count(0)
    await page.get_by_role("button", name="Highlight apple").click()
    await expect(marks).to_have_text(["apple", "Apple"], timeout=TIMEOUT_MS)
    await page.get_by_role("button", name="Clear highlights").click()
    await expect(marks).to_have_count(0, timeout=TIMEOUT_MS)
    await expect(bubble(page, "apple pie")).to_contain_text("apple pie from bob")
