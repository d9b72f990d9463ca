"""Timestamps and day headings of the Chatbox in Chromium: their text and their cost.

Date's toLocale*String methods build a new Intl.DateTimeFormat on every call
that passes options, and the ReactPy client renders every row of the page
again on each update. So the components must build each format once per page
and skip rows whose dates did not change, while showing the text that those
methods would show.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol

import pytest
from playwright.async_api import Browser, BrowserContext, Page, expect

from talkjs_components.models import Participation
from talkjs_components.service import TRUSTED, ChatService

from .apps.chatbox_data import set_created_at
from .chatbox_pages import TIMEOUT_MS, bubble, chatbox_server, message_log

HISTORY = 40
"""Messages of each conversation: fewer than a page (50), so all are on screen at once."""

DATE_FORMATS = 3
"""Formats the components use: the time of day, the full date and time, and the day heading."""

FIRST_DAY = datetime(2024, 3, 9, 8, 0, tzinfo=UTC)

# Runs in the page before its scripts. It counts the date formatters built,
# both by Intl.DateTimeFormat and inside each Date.prototype.toLocale*String
# call, and the calls of Intl.DateTimeFormat.prototype.format.
COUNT_DATE_FORMATTING = """
(() => {
  const counts = (window.__dateFormatting = { builds: 0, formats: 0 });
  const NativeFormat = Intl.DateTimeFormat;
  const getFormat = Object.getOwnPropertyDescriptor(NativeFormat.prototype, "format").get;
  Object.defineProperty(NativeFormat.prototype, "format", {
    configurable: true,
    get() {
      const bound = getFormat.call(this);
      return (date) => {
        counts.formats += 1;
        return bound(date);
      };
    },
  });
  function CountedFormat(...args) {
    counts.builds += 1;
    return new NativeFormat(...args);
  }
  CountedFormat.prototype = NativeFormat.prototype;
  CountedFormat.supportedLocalesOf = NativeFormat.supportedLocalesOf;
  Intl.DateTimeFormat = CountedFormat;
  for (const name of ["toLocaleString", "toLocaleDateString", "toLocaleTimeString"]) {
    const original = Date.prototype[name];
    Date.prototype[name] = function (...args) {
      counts.builds += 1;
      return original.apply(this, args);
    };
  }
})();
"""

# Returns every timestamp and day heading whose text differs from what Date's
# own toLocale*String methods return in this page's locale and time zone.
FIND_DATE_MISMATCHES = """log => {
  const mismatches = [];
  let checked = 0;
  let headings = 0;
  for (const row of log.querySelectorAll(".tjs-row")) {
    const time = row.querySelector("time");
    if (!time) continue;
    checked += 1;
    const date = new Date(time.dateTime);
    const expected = {
      text: date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" }),
      title: date.toLocaleString(),
      dir: "auto",
    };
    const rendered = { text: time.textContent, title: time.title, dir: time.getAttribute("dir") };
    for (const key of Object.keys(expected)) {
      if (rendered[key] !== expected[key]) {
        mismatches.push([time.dateTime, key, rendered[key], expected[key]]);
      }
    }
    const heading = row.querySelector('[role="separator"]');
    if (heading) {
      headings += 1;
      const day = date.toLocaleDateString([], {
        weekday: "long", year: "numeric", month: "long", day: "numeric",
      });
      if (heading.textContent !== day) {
        mismatches.push([time.dateTime, "day", heading.textContent, day]);
      }
    }
  }
  return { checked, headings, mismatches };
}"""


async def _seed_history(service: ChatService, conversation_id: str) -> dict[str, int]:
    """Write ``HISTORY`` messages over three days; return their backdated times by id."""
    participants = {"alice": Participation(), "bob": Participation()}
    await service.sync_conversation(TRUSTED, conversation_id, None, participants)
    times: dict[str, int] = {}
    for number in range(HISTORY):
        sender = "bob" if number % 3 else "alice"
        message = await service.send_message(
            TRUSTED, conversation_id, f"{conversation_id} message {number:02}", sender_id=sender
        )
        # Three days of 15 messages each, 37 minutes apart from 08:00 to 16:38 UTC,
        # so every time zone shows morning and afternoon times on at least three dates.
        created = FIRST_DAY + timedelta(days=number // 15, minutes=37 * (number % 15))
        times[message.id] = int(created.timestamp() * 1000)
    return times


async def seed(service: ChatService) -> Callable[[Path], None]:
    times = await _seed_history(service, "date-builds")
    times.update(await _seed_history(service, "date-text"))
    return lambda database: set_created_at(database, times)


@pytest.fixture(scope="module")
async def server(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    async with chatbox_server(tmp_path_factory.mktemp("message-dates"), seed) as base_url:
        yield base_url


class OpenChatbox(Protocol):
    async def __call__(
        self, conversation_id: str, *, locale: str, timezone_id: str, init_script: str = ""
    ) -> Page: ...


@pytest.fixture
async def open_page(browser: Browser, server: str) -> AsyncIterator[OpenChatbox]:
    """Yield a function that opens Alice's Chatbox of a conversation in a new context.

    The page must raise no uncaught error.
    """
    contexts: list[BrowserContext] = []
    errors: list[str] = []

    async def open_chatbox(
        conversation_id: str, *, locale: str, timezone_id: str, init_script: str = ""
    ) -> Page:
        context = await browser.new_context(
            viewport={"width": 1000, "height": 800}, locale=locale, timezone_id=timezone_id
        )
        contexts.append(context)
        context.on("weberror", lambda error: errors.append(str(error.error)))
        if init_script:
            await context.add_init_script(init_script)
        page = await context.new_page()
        await page.goto(f"{server}/?conversation={conversation_id}")
        last = bubble(page, f"{conversation_id} message {HISTORY - 1:02}")
        await expect(last.locator("time")).to_be_attached(timeout=TIMEOUT_MS)
        return page

    try:
        yield open_chatbox
    finally:
        for context in contexts:
            await context.close()
    assert errors == []


async def _date_formatting(page: Page) -> dict[str, int]:
    counts: dict[str, int] = await page.evaluate("({ ...window.__dateFormatting })")
    return counts


async def _send(page: Page, text: str) -> None:
    """Send ``text`` from the composer and wait until its row shows its time."""
    composer = page.get_by_role("textbox", name="Message")
    await expect(composer).to_be_enabled(timeout=TIMEOUT_MS)
    await composer.fill(text)
    await composer.press("Enter")
    # The time renders after the row, once the browser has rendered the
    # other rows of the page again for the same update.
    await expect(bubble(page, text).locator("time")).to_be_attached(timeout=TIMEOUT_MS)


async def test_date_formats_built_once_per_page(open_page: OpenChatbox) -> None:
    page = await open_page(
        "date-builds",
        locale="en-GB",
        timezone_id="Europe/Berlin",
        init_script=COUNT_DATE_FORMATTING,
    )
    rows = message_log(page).locator("time")
    await expect(rows).to_have_count(HISTORY)

    loaded = await _date_formatting(page)
    assert loaded["builds"] <= DATE_FORMATS, "each date format is built once, not once per row"
    assert loaded["formats"] >= HISTORY, "the counter sees the rows' formatting"

    sent = ("one more from alice", "and another one")
    for text in sent:
        await _send(page, text)
    await expect(rows).to_have_count(HISTORY + len(sent))

    updated = await _date_formatting(page)
    assert updated["builds"] == loaded["builds"], "updates build no new date formats"
    # A new row formats its time, its full date and perhaps a day heading.
    formatted = updated["formats"] - loaded["formats"]
    assert formatted <= DATE_FORMATS * len(sent), "rows whose dates did not change format again"


@pytest.mark.parametrize(
    ("locale", "timezone_id"),
    [
        ("en-US", "America/New_York"),
        ("ar-EG", "Africa/Cairo"),
        ("he-IL", "Asia/Jerusalem"),
        ("ja-JP", "Asia/Tokyo"),
    ],
)
async def test_dates_match_date_methods(
    open_page: OpenChatbox, locale: str, timezone_id: str
) -> None:
    page = await open_page("date-text", locale=locale, timezone_id=timezone_id)
    log = message_log(page)
    await expect(log.locator("time")).to_have_count(HISTORY)

    found = await log.evaluate(FIND_DATE_MISMATCHES)
    assert found["checked"] == HISTORY
    assert found["headings"] >= 3
    assert found["mismatches"] == []
