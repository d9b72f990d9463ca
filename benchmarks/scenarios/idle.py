"""Idle sessions (d): server memory per connected session, against bare websocket connections.

Sessions of distinct users, in no conversation, connect in batches; after
each size is reached and a short settle, the server's RSS is read. Memory
per session is ``(RSS at size - RSS before) / size``. The baseline is the
same number of connections to ``benchmarks.broadcast_server``, which keeps
nothing per connection besides what ``websockets`` needs.

A second run of our server, with tracemalloc, at the smallest size reports
the traced growth per session and the source lines that allocated it.
tracemalloc slows the server and adds memory of its own, so it never runs
in the RSS measurement.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import signal
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..processes import ChildProcess
from ..realtime_client import RawReceiver, WatchHolder, close_all, connect_all, hello_text
from ..talk_server import APP_ID, TalkServer, create_users

__all__ = [
    "SETTLE_SECONDS",
    "WARM_SESSIONS",
    "measure_idle",
    "talk_receivers",
    "tracemalloc_growth",
    "warm_receivers",
]

SETTLE_SECONDS = 2.0
"""Seconds to wait after the last connect before reading RSS."""

WARM_SESSIONS = 20
"""Sessions opened and closed before the first reading, so lazy imports and caches are in it."""


async def talk_receivers(server: TalkServer, count: int) -> list[RawReceiver]:
    """Create ``count`` users and return unconnected receivers with their hellos."""
    tag = secrets.token_hex(3)
    user_ids = [f"idle-{tag}-{i}" for i in range(count)]
    await create_users(server, user_ids)
    holder = WatchHolder()
    return [
        RawReceiver(
            server.websocket_url, hello_text(APP_ID, user_id, server.token(user_id)), holder
        )
        for user_id in user_ids
    ]


async def measure_idle(
    process: ChildProcess,
    sizes: Sequence[int],
    warm: list[RawReceiver],
    receivers: list[RawReceiver],
) -> dict[str, Any]:
    """Connect ``receivers`` up to each of ``sizes`` and read the server's RSS at each."""
    await connect_all(warm)
    await close_all(warm)
    await asyncio.sleep(SETTLE_SECONDS)
    before = process.rss_bytes()
    readings: list[dict[str, Any]] = []
    connected = 0
    try:
        for size in sorted(sizes):
            await connect_all(receivers[connected:size], timeout=600)
            connected = size
            await asyncio.sleep(SETTLE_SECONDS)
            rss = process.rss_bytes()
            readings.append(
                {
                    "sessions": size,
                    "open": sum(receiver.open for receiver in receivers[:size]),
                    "rss_bytes": rss,
                    "bytes_per_session": (rss - before) / size,
                }
            )
    finally:
        await close_all(receivers[:connected])
    return {"rss_before_bytes": before, "readings": readings}


async def tracemalloc_growth(server: TalkServer, report: Path, size: int) -> dict[str, Any]:
    """Connect ``size`` sessions to a server started with tracemalloc; return traced growth."""
    warm = await talk_receivers(server, WARM_SESSIONS)
    receivers = await talk_receivers(server, size)
    await connect_all(warm)
    await close_all(warm)
    await asyncio.sleep(SETTLE_SECONDS)
    records = await _report(server.process, report)
    try:
        await connect_all(receivers, timeout=600)
        await asyncio.sleep(SETTLE_SECONDS)
        records = await _report(server.process, report)
    finally:
        await close_all(receivers)
    before, after = records[-2], records[-1]
    return {
        "sessions": size,
        "traced_bytes_per_session": (after["traced_bytes"] - before["traced_bytes"]) / size,
        "top_growth": after["growth"][:10],
    }


async def _report(process: ChildProcess, report: Path) -> list[dict[str, Any]]:
    """Ask the server for a tracemalloc report (SIGUSR1) and return every report so far."""
    count = len(_read_reports(report))
    os.kill(process.pid, signal.SIGUSR1)
    # The report comes from another process, so there is no event to wait on: poll, 120 s at most.
    for _ in range(600):
        await asyncio.sleep(0.2)
        reports = _read_reports(report)
        if len(reports) > count:
            return reports
    raise TimeoutError(f"no tracemalloc report appeared in {report} within 120 s of SIGUSR1")


def _read_reports(report: Path) -> list[dict[str, Any]]:
    """Return the complete lines of the report file, parsed; a line being written is left out."""
    try:
        text = report.read_text()
    except FileNotFoundError:
        return []
    return [json.loads(line) for line in text.splitlines(keepends=True) if line.endswith("\n")]


def warm_receivers(url: str, count: int = WARM_SESSIONS) -> list[RawReceiver]:
    """Return ``count`` receivers for the baseline's warm-up."""
    holder = WatchHolder()
    return [RawReceiver(url, '{"type":"hello"}', holder) for _ in range(count)]
