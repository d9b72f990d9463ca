"""Fixtures shared by the test suite: backends on real SQLite files, and Chromium.

``backend`` is the embedded backend. ``any_backend`` runs a test twice: on the
embedded backend, and on a chat server on 127.0.0.1 whose sessions use the
websocket transport. A test marked ``embedded_only`` is skipped on the server.
The PostgreSQL fixtures (``postgres_url``, ``store_database``) are in ``services``.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import AsyncIterator, Generator
from pathlib import Path

import pytest
from playwright.async_api import Browser, async_playwright

from talkjs_components import embedded
from talkjs_components.auth import App
from talkjs_components.embedded import EmbeddedBackend
from talkjs_components.models import Participation, User
from talkjs_components.service import TRUSTED

from .demo_server import RUNNING_LOGS, STARTED_LOGS
from .remote_backend import ChatBackend, RemoteBackend
from .services import empty_postgres_url as empty_postgres_url
from .services import postgres_url as postgres_url
from .services import store_database as store_database

SECRET_KEY = "sk_test_" + "0123456789abcdef" * 3


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "embedded_only(reason): skip the chat-server run of an any_backend test, for the reason",
    )


SERVER_LOG_LINES = 80
"""Lines of each server log that a failed test's report shows, at most."""

_log_offsets = pytest.StashKey[dict[Path, int]]()
"""Per test: the byte offset in each server log from which its report shows lines."""
_logs_started_before = pytest.StashKey[int]()
"""Per test: the length of ``STARTED_LOGS`` when the test's setup began."""


def pytest_runtest_setup(item: pytest.Item) -> None:
    # Servers that run already are shown from their size now. Servers that
    # the test's own fixtures start are shown from their first line.
    item.stash[_log_offsets] = {log: _size(log) for log in RUNNING_LOGS}
    item.stash[_logs_started_before] = len(STARTED_LOGS)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Add to a failed test's report what the server processes logged during it.

    A browser test reaches a server only through the page, so its log is often
    the only record of why an expected update never came. A failure in
    teardown after one in the call shows only the lines written in between.
    """
    report = yield
    if not report.failed:
        return report
    offsets = item.stash.setdefault(_log_offsets, {})
    started = STARTED_LOGS[item.stash.get(_logs_started_before, len(STARTED_LOGS)) :]
    for log in sorted({*offsets, *started}):
        written = _read_from(log, offsets.get(log, 0))
        offsets[log] = _size(log)
        if written:
            lines = written.splitlines()[-SERVER_LOG_LINES:]
            report.sections.append((f"server log {log}", "\n".join(lines)))
    return report


def _size(log: Path) -> int:
    try:
        return log.stat().st_size
    except OSError:
        return 0


def _read_from(log: Path, offset: int) -> str:
    """Return the text of ``log`` from byte ``offset`` on, its last 64 KiB at most."""
    try:
        with log.open("rb") as file:
            end = file.seek(0, os.SEEK_END)
            file.seek(max(offset, end - 65_536))
            return file.read().decode(errors="replace")
    except OSError:
        return ""


async def _add_users_and_group(backend: ChatBackend) -> None:
    for user_id in ("alice", "bob", "carol"):
        await backend.service.upsert_user(User(id=user_id, name=user_id.title()))
    await backend.service.sync_conversation(
        TRUSTED,
        "group",
        participants={user_id: Participation() for user_id in ("alice", "bob", "carol")},
    )


def _new_app_id() -> str:
    return f"test-{uuid.uuid4().hex[:12]}"


@pytest.fixture
async def backend(tmp_path: Path) -> AsyncIterator[EmbeddedBackend]:
    """A started embedded backend of a fresh app, with users alice, bob and carol."""
    chat = embedded.configure(
        _new_app_id(), secret_key=SECRET_KEY, database=tmp_path / "chat.sqlite3", server_url=""
    )
    await chat.start()
    await _add_users_and_group(chat)
    try:
        yield chat
    finally:
        await chat.close()


def _remote_backend(database: Path) -> RemoteBackend:
    """Return a server for a fresh app, whose sessions the app's configuration sends to it."""
    app_id = _new_app_id()
    chat = RemoteBackend(App(app_id, secret_key=SECRET_KEY), database)
    embedded.configure(app_id, secret_key=SECRET_KEY, server_url=chat.server_url)
    return chat


@pytest.fixture
async def server_backend(tmp_path: Path) -> AsyncIterator[RemoteBackend]:
    """A started chat server on 127.0.0.1 of a fresh app, with users alice, bob and carol.

    Sessions of the app reach it through ``embedded.configure(server_url=...)``,
    as an app's would.
    """
    chat = _remote_backend(tmp_path / "chat.sqlite3")
    await chat.start()
    await _add_users_and_group(chat)
    try:
        yield chat
    finally:
        await chat.close()


@pytest.fixture(params=["embedded", "server"])
async def any_backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[ChatBackend]:
    """A fresh app with users alice, bob and carol: embedded, then on a chat server."""
    database = tmp_path / "chat.sqlite3"
    if request.param == "embedded":
        chat: ChatBackend = embedded.configure(
            _new_app_id(), secret_key=SECRET_KEY, database=database, server_url=""
        )
    else:
        marker = request.node.get_closest_marker("embedded_only")
        if marker is not None:
            pytest.skip(f"embedded backend only: {marker.kwargs.get('reason', '')}")
        chat = _remote_backend(database)
    await chat.start()
    await _add_users_and_group(chat)
    try:
        yield chat
    finally:
        await chat.close()


BROWSER_REQUIRED_VARIABLE = "TALKJS_REQUIRE_BROWSER"


def chromium_executable() -> str:
    """Return the Chromium to drive, or skip (fail in CI) when there is none.

    ``CHROMIUM_PATH`` overrides the default ``/usr/bin/chromium`` (Debian's
    package). No browser is ever downloaded.
    """
    path = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
    if shutil.which(path) is not None:
        return path
    message = (
        f"Chromium not found at {path!r}: install Debian's package "
        "(apt-get install chromium) or set CHROMIUM_PATH"
    )
    if os.environ.get(BROWSER_REQUIRED_VARIABLE) == "1":
        pytest.fail(f"{message}; {BROWSER_REQUIRED_VARIABLE}=1 makes this an error")
    pytest.skip(message)


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    """A headless Chromium shared by the browser tests."""
    executable = chromium_executable()
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=executable, headless=True)
        try:
            yield launched
        finally:
            await launched.close()
