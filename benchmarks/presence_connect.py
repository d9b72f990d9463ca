"""Presence on connect: what the participants of one conversation receive as they connect.

``python -m benchmarks.presence_connect [--sizes 200,1000] [--timeout 120]``

For each size N, the script starts our server on 127.0.0.1 with a fresh
SQLite file, creates N users and one conversation of all of them, and then
connects one realtime session per user, one after another. Every session
counts as the user being online, so each connect publishes presence events
to the participants already connected. The script waits until the
expected presence frames arrived or the timeout passed, and then until the
server is idle. N * (N + 1) / 2 frames are expected, because each user's
event reaches the sessions connected before it and the user's own. A
session that connects while an earlier user's event is still on its way
receives that event too, so a few more frames can arrive. It reports:

- the presence frames and their bytes, summed over all clients;
- the seconds from the first connect until the last presence frame arrived;
- the server's CPU seconds (user plus system) from the first connect until idle;
- the sessions the server closed, for example as slow consumers (close code 4004).

The clients run in this process, so on a small machine they compete with
the server for the CPU, and the time includes their reading. The server is
killed at the end, because its graceful stop would publish every user's
offline event to the sessions still open, which is not what this measures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import secrets
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from .context import parse_sizes
from .machine import load_average, machine_facts, product_source, raise_file_limit
from .processes import REPO_ROOT
from .realtime_client import MAX_FRAME_BYTES, close_all, close_reading, hello_text
from .scenarios.fanout import wait_until_idle
from .talk_server import APP_ID, TalkServer, create_conversation, create_users, serving_talk

__all__ = ["PresenceReceiver", "main", "measure"]

DEFAULT_SIZES = (200, 1000)
DEFAULT_TIMEOUT = 120.0
"""Seconds one size may take from its first connect until every presence frame arrived."""

_PRESENCE_MARKER = '"type":"presence_changed"'
_PING_PREFIX = '{"type":"ping"'
_PONG = '{"type":"pong"}'


class PresenceReceiver:
    """One user's realtime session that counts the presence frames it receives.

    It sends a fresh hello, waits for the welcome and then only reads: it
    responds to pings and counts frames whose text contains a presence event.
    """

    def __init__(self, url: str, hello: str) -> None:
        self.url = url
        self.hello = hello
        self.presence_frames = 0
        self.presence_bytes = 0
        self.last_presence_at: float | None = None
        """``time.perf_counter()`` when the last presence frame arrived."""
        self.close_code: int | None = None
        """The server's close code, when the server closed the session."""
        self._websocket: ClientConnection | None = None
        self._reader: asyncio.Task[None] | None = None

    async def connect(self, timeout: float = 30.0) -> None:
        """Open the websocket, send the hello and wait for the welcome.

        Raises:
            RuntimeError: the reply is not a welcome.
            TimeoutError: no reply within ``timeout`` seconds.
        """
        async with asyncio.timeout(timeout):
            self._websocket = await connect(
                self.url, open_timeout=timeout, max_size=MAX_FRAME_BYTES, ping_interval=None
            )
            await self._websocket.send(self.hello)
            reply = await self._websocket.recv()
        text = reply if isinstance(reply, str) else reply.decode()
        if '"type":"welcome"' not in text:
            raise RuntimeError(f"expected a welcome after the hello, got: {text[:300]}")
        self._reader = asyncio.get_running_loop().create_task(self._read())

    async def _read(self) -> None:
        assert self._websocket is not None
        websocket = self._websocket
        try:
            async for message in websocket:
                text = message if isinstance(message, str) else message.decode()
                if _PRESENCE_MARKER in text:
                    self.last_presence_at = time.perf_counter()
                    self.presence_frames += 1
                    self.presence_bytes += len(text) if text.isascii() else len(text.encode())
                elif text.startswith(_PING_PREFIX):
                    await websocket.send(_PONG)
        except ConnectionClosed:
            pass
        self.close_code = websocket.close_code

    async def close(self) -> None:
        """Close the websocket, waiting at most a few seconds for the closing handshake."""
        await close_reading(self._websocket, self._reader)


async def _wait_for_frames(
    receivers: Sequence[PresenceReceiver], expected: int, deadline: float
) -> None:
    """Poll until ``expected`` presence frames arrived in all, or ``deadline`` (loop time)."""
    loop = asyncio.get_running_loop()
    while loop.time() < deadline:
        if sum(receiver.presence_frames for receiver in receivers) >= expected:
            return
        await asyncio.sleep(0.2)


async def _measure_on(server: TalkServer, size: int, timeout: float) -> dict[str, Any]:
    tag = secrets.token_hex(3)
    user_ids = [f"presence-{tag}-{number}" for number in range(size)]
    await create_users(server, user_ids)
    await create_conversation(server, f"presence-{tag}", user_ids)
    await wait_until_idle([server.process])
    receivers = [
        PresenceReceiver(server.websocket_url, hello_text(APP_ID, user_id, server.token(user_id)))
        for user_id in user_ids
    ]
    expected = size * (size + 1) // 2

    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    cpu_before = server.process.cpu_seconds()
    started = time.perf_counter()
    try:
        connected_count = 0
        for receiver in receivers:
            if loop.time() >= deadline:
                break
            await receiver.connect()
            connected_count += 1
        connected = time.perf_counter()
        await _wait_for_frames(receivers, expected, deadline)
        remaining = max(deadline - loop.time(), 1.0)
        idle = True
        try:
            await wait_until_idle([server.process], timeout=remaining)
        except TimeoutError:
            idle = False
        cpu_seconds = server.process.cpu_seconds() - cpu_before
        closed_by_server = sum(receiver.close_code is not None for receiver in receivers)
    finally:
        # Killed rather than stopped, because a graceful stop publishes every offline event first.
        server.process.process.kill()
        await close_all(receivers)

    arrivals = [r.last_presence_at for r in receivers if r.last_presence_at is not None]
    frames = sum(receiver.presence_frames for receiver in receivers)
    return {
        "participants": size,
        "expected_frames": expected,
        "presence_frames": frames,
        "presence_bytes": sum(receiver.presence_bytes for receiver in receivers),
        "connected": connected_count,
        "complete": frames >= expected,
        "server_idle_at_end": idle,
        "connect_seconds": connected - started,
        "seconds_to_last_frame": (max(arrivals) - started) if arrivals else None,
        "server_cpu_seconds": cpu_seconds,
        "closed_by_server": closed_by_server,
    }


async def measure(size: int, timeout: float, workdir: Path) -> dict[str, Any]:
    """Start a server in ``workdir``, connect ``size`` participants and return the counts."""
    async with serving_talk(workdir, f"presence-{size}") as server:
        return await _measure_on(server, size, timeout)


def _format(result: dict[str, Any]) -> str:
    last = result["seconds_to_last_frame"]
    parts = [
        f"{result['participants']:>5} participants",
        f"{result['presence_frames']:,} presence frames (expected {result['expected_frames']:,})",
        f"{result['presence_bytes'] / 1e6:,.1f} MB",
        f"last frame after {'-' if last is None else f'{last:.1f}'} s",
        f"server CPU {result['server_cpu_seconds']:.1f} s",
        f"connects took {result['connect_seconds']:.1f} s",
        f"{result['closed_by_server']} sessions closed by the server",
    ]
    if result["connected"] < result["participants"]:
        parts.append(f"only {result['connected']} connected in time")
    if not result["complete"]:
        parts.append("timed out")
    return ", ".join(parts)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.presence_connect",
        description="Measure the presence frames, bytes, time and server CPU when the "
        "participants of one conversation connect one after another, on 127.0.0.1.",
    )
    parser.add_argument(
        "--sizes",
        type=parse_sizes,
        default=DEFAULT_SIZES,
        help="participant counts, comma-separated (default: 200,1000)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT,
        help="seconds one size may take from its first connect; a size that runs out "
        "reports what arrived by then (default: %(default)s)",
    )
    parser.add_argument("--output", type=Path, help="also write the results as JSON to this file")
    return parser


async def _run(sizes: Sequence[int], timeout: float) -> dict[str, Any]:
    load_at_start = load_average()
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="presence-connect-") as workdir:
        for size in sizes:
            result = await measure(size, timeout, Path(workdir))
            print(_format(result), flush=True)
            results.append(result)
    return {
        "load_average_start": load_at_start,
        "load_average_end": load_average(),
        "machine": machine_facts(),
        "product": product_source(REPO_ROOT),
        "timeout_seconds": timeout,
        "results": results,
    }


def main(argv: Sequence[str] | None = None) -> None:
    """Run the measurement for each size and print one line per size."""
    arguments = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    # Each session needs a socket in this process and one in the server.
    raise_file_limit(2 * max(arguments.sizes) + 256)
    document = asyncio.run(_run(arguments.sizes, arguments.timeout))
    load_start, load_end = document["load_average_start"], document["load_average_end"]
    print(
        f"{os.cpu_count()} cores, {document['machine']['cpu_model']}; load average "
        f"{load_start[0]:.2f} at start, {load_end[0]:.2f} at end; "
        f"commit {document['product']['checkout_commit']}"
    )
    if arguments.output is not None:
        arguments.output.write_text(json.dumps(document, indent=2) + "\n")


if __name__ == "__main__":
    main()
