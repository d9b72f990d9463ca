"""UI (e): from a REST send to the message on screen in another user's Chromium page.

A ReactPy page (``benchmarks.ui_app``) shows a Chatbox of a conversation with
a seeded history; its session connects to our server's realtime endpoint.
The page is scrolled up until the whole history is on screen. Each round
sends a message through the REST API and measures:

- the time until the ReactPy websocket frame with the message's text reaches
  the page, until the text is in the page's DOM, and until the next animation
  frame after that (``visible``), on the wall clock both Chromium
  (``performance.timeOrigin + performance.now()``) and Python read;
- the bytes of the ReactPy websocket frames the page received from the send
  until ``SETTLE_SECONDS`` after it was visible (read receipts and other
  follow-up renders included).

The comparison is the same page with 10 and with 1,000 messages on screen.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import sys
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

from playwright.async_api import Browser, Page, async_playwright, expect

from talkjs_components.rest.models import NewUserMessage

from ..processes import free_port, python_path_environment, running_process
from ..stats import summarize
from ..talk_server import SECRET_KEY, TalkServer, create_conversation, create_users

__all__ = [
    "CHROMIUM_PATH",
    "SETTLE_SECONDS",
    "chromium_path",
    "measure_ui",
    "seed_history",
    "serving_ui_app",
]

CHROMIUM_PATH = "/usr/bin/chromium"
"""Debian's Chromium; ``CHROMIUM_PATH`` overrides it."""

SETTLE_SECONDS = 0.5
"""Seconds after the message is visible during which frames still count for the update."""

TIMEOUT_MS = 60_000

VIEWER, WRITER = "ui-viewer", "ui-writer"

# Runs in the page: records when a node containing window.__marker is added
# to the message list, and the animation frame after that.
_OBSERVE = """
() => {
  const log = document.querySelector('[role=log]');
  window.__inserted = undefined;
  window.__painted = undefined;
  const now = () => performance.timeOrigin + performance.now();
  new MutationObserver((mutations) => {
    if (window.__marker === undefined || window.__inserted !== undefined) return;
    for (const mutation of mutations) {
      const nodes = mutation.type === 'characterData' ? [mutation.target] : mutation.addedNodes;
      for (const node of nodes) {
        if ((node.textContent || '').includes(window.__marker)) {
          window.__inserted = now();
          requestAnimationFrame(() => { window.__painted = now(); });
          return;
        }
      }
    }
  }).observe(log, {childList: true, subtree: true, characterData: true});
}
"""


# Runs in the page before its scripts: records when the first websocket
# message containing window.__marker arrives, before ReactPy handles it.
_WATCH_FRAMES = """
(() => {
  const Native = window.WebSocket;
  window.WebSocket = class extends Native {
    constructor(...args) {
      super(...args);
      this.addEventListener('message', (event) => {
        if (window.__marker !== undefined && window.__framed === undefined
            && typeof event.data === 'string' && event.data.includes(window.__marker)) {
          window.__framed = performance.timeOrigin + performance.now();
        }
      });
    }
  };
})();
"""


def chromium_path() -> str:
    """Return the Chromium executable to use."""
    return os.environ.get("CHROMIUM_PATH", CHROMIUM_PATH)


@contextlib.asynccontextmanager
async def serving_ui_app(workdir: Path, server: TalkServer) -> AsyncIterator[str]:
    """Run ``benchmarks.ui_app`` under uvicorn on a free port; yield its base URL."""
    port = free_port()
    command = [
        sys.executable, "-m", "uvicorn", "benchmarks.ui_app:app", "--host", "127.0.0.1",
        "--port", str(port), "--log-level", "warning",
    ]  # fmt: skip
    environment = {
        "BENCH_SERVER_URL": server.base_url,
        "BENCH_SECRET_KEY": SECRET_KEY,
        **python_path_environment(),
    }
    async with running_process(
        "ui-app",
        command,
        log=workdir / f"ui-app-{port}.log",
        health_url=f"http://127.0.0.1:{port}/",
        environment=environment,
        cwd=workdir,
    ):
        yield f"http://127.0.0.1:{port}"


async def seed_history(server: TalkServer, conversation_id: str, messages: int) -> None:
    """Create the viewer, the writer and a conversation with ``messages`` messages."""
    await create_users(server, [VIEWER, WRITER])
    await create_conversation(server, conversation_id, [VIEWER, WRITER])
    async with server.rest() as client:
        for start in range(0, messages, 10):
            batch = [
                NewUserMessage(text=f"history message {number}", sender=WRITER)
                for number in range(start, min(start + 10, messages))
            ]
            await client.send_messages(conversation_id, batch)


class _Frames:
    """Sizes in bytes of the websocket frames the page received."""

    def __init__(self) -> None:
        self.sizes: list[int] = []

    def received(self, payload: str | bytes) -> None:
        self.sizes.append(len(payload.encode() if isinstance(payload, str) else payload))


async def _open_page(
    browser: Browser, url: str, history: int, frames: _Frames
) -> tuple[Page, dict[str, float]]:
    """Open the page and scroll up until all ``history`` messages are on screen.

    Returns the page, and the seconds, ReactPy frames and bytes that took,
    from the navigation on.
    """
    context = await browser.new_context(viewport={"width": 1000, "height": 800})
    await context.add_init_script(_WATCH_FRAMES)
    page = await context.new_page()
    page.on("websocket", lambda socket: socket.on("framereceived", frames.received))
    frames.sizes.clear()
    started = time.monotonic()
    await page.goto(url)
    log = page.get_by_role("log", name="Messages")
    if history:
        await expect(log).to_contain_text(f"history message {history - 1}", timeout=TIMEOUT_MS)
    await expect(page.get_by_role("textbox", name="Message")).to_be_enabled(timeout=TIMEOUT_MS)
    rows = log.locator("[data-message-id]")
    while (shown := await rows.count()) < history:
        await log.evaluate("node => { node.scrollTop = 0; }")
        await page.wait_for_function(
            f"document.querySelectorAll('[data-message-id]').length > {shown}", timeout=TIMEOUT_MS
        )
    opening = {
        "seconds": time.monotonic() - started,
        "frames": len(frames.sizes),
        "bytes": sum(frames.sizes),
        "largest_frame_bytes": max(frames.sizes, default=0),
    }
    return page, opening


async def measure_ui(
    server: TalkServer, app_url: str, histories: Sequence[int], rounds: int
) -> dict[str, Any]:
    """Measure ``rounds`` REST sends per history size; return a summary per size."""
    results: dict[str, Any] = {}
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=chromium_path(), headless=True)
        try:
            for history in histories:
                conversation_id = f"ui-{history}-{secrets.token_hex(3)}"
                await seed_history(server, conversation_id, history)
                frames = _Frames()
                page, opening = await _open_page(
                    browser,
                    f"{app_url}/?user={VIEWER}&conversation={conversation_id}",
                    history,
                    frames,
                )
                try:
                    results[str(history)] = await _rounds(
                        server, page, frames, conversation_id, rounds
                    )
                    results[str(history)]["rows_on_screen"] = await page.locator(
                        "[data-message-id]"
                    ).count()
                    results[str(history)]["open"] = opening
                finally:
                    await page.context.close()
        finally:
            await browser.close()
    return results


async def _rounds(
    server: TalkServer, page: Page, frames: _Frames, conversation_id: str, rounds: int
) -> dict[str, Any]:
    await page.evaluate(_OBSERVE)
    framed: list[float] = []
    visible: list[float] = []
    inserted: list[float] = []
    update_bytes: list[float] = []
    largest_frames: list[float] = []
    async with server.rest() as client:
        # One round more than measured: the first warms the page and the server.
        for number in range(rounds + 1):
            marker = f"ui-update-{secrets.token_hex(4)}"
            await page.evaluate(
                "m => { window.__inserted = undefined; window.__painted = undefined;"
                " window.__framed = undefined; window.__marker = m; }",
                marker,
            )
            await asyncio.sleep(0.3)
            frames.sizes.clear()
            sent = time.time() * 1000
            await client.send_messages(
                conversation_id, [NewUserMessage(text=marker, sender=WRITER)]
            )
            await page.wait_for_function("window.__painted !== undefined", timeout=TIMEOUT_MS)
            await asyncio.sleep(SETTLE_SECONDS)
            times = await page.evaluate("[window.__framed, window.__inserted, window.__painted]")
            if number == 0:
                continue
            if times[0] is not None:
                framed.append(times[0] - sent)
            inserted.append(times[1] - sent)
            visible.append(times[2] - sent)
            update_bytes.append(sum(frames.sizes))
            largest_frames.append(max(frames.sizes, default=0))
    return {
        "rounds": rounds,
        "frame_in_page_ms": summarize(framed),
        "in_dom_ms": summarize(inserted),
        "visible_ms": summarize(visible),
        "update_bytes": summarize(update_bytes),
        "largest_frame_bytes": summarize(largest_frames),
    }
