"""Fan-out (c): one message to N connected participants, against a raw websocket broadcast.

Our server: N+1 users connect (N receivers and the sender) while they share no
conversation, and only then is one conversation of all of them created. This
order matters because each connect of a participant publishes a presence
event, carrying the whole conversation, to every other connected
participant: N squared frames in all.
Then the sender sends a message per round, and the round lasts until every
receiver has a frame containing the message's text.

The baseline: a bare ``websockets`` server (``benchmarks.broadcast_server``)
holding the same number of connections broadcasts the same frame text, as
captured from our server, on a small trigger frame. Both sides' receivers
are :class:`~benchmarks.realtime_client.RawReceiver` objects in this process,
so their receiving costs are the same.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import statistics
import sys
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

from ..processes import ChildProcess, free_port, python_path_environment, running_process
from ..realtime_client import (
    FrameWatch,
    ProtocolClient,
    RawReceiver,
    WatchHolder,
    close_all,
    connect_all,
    hello_text,
)
from ..stats import summarize
from ..talk_server import APP_ID, TalkServer, create_conversation, create_users

__all__ = [
    "ROUND_TIMEOUT",
    "broadcast_fanout",
    "serving_broadcast",
    "talk_fanout",
    "wait_until_idle",
]

ROUND_TIMEOUT = 60.0
"""Seconds one round may take before its missing receivers are counted and it ends."""

_PAUSE = 0.3
"""Seconds between rounds, so that the frames of one round are read before the next."""


async def _rounds(
    holder: WatchHolder,
    receivers: int,
    markers: Sequence[str],
    trigger: Any,
) -> tuple[list[dict[str, Any]], str | None]:
    """Run one round per marker: ``await trigger(marker)``, then wait for every receiver."""
    rounds: list[dict[str, Any]] = []
    sample: str | None = None
    for marker in markers:
        watch = FrameWatch(marker, receivers)
        holder.current = watch
        started = time.perf_counter()
        await trigger(marker)
        try:
            async with asyncio.timeout(ROUND_TIMEOUT):
                await watch.done.wait()
        except TimeoutError:
            pass
        holder.current = None
        delays = [(at - started) * 1000 for at in watch.arrivals]
        rounds.append(
            {
                "received": len(delays),
                "first_ms": min(delays, default=None),
                "median_ms": statistics.median(delays) if delays else None,
                "last_ms": max(delays, default=None),
            }
        )
        sample = watch.sample or sample
        await asyncio.sleep(_PAUSE)
    return rounds, sample


async def wait_until_idle(
    processes: Sequence[ChildProcess], *, timeout: float = 120.0, window: float = 0.5
) -> None:
    """Wait until none of ``processes`` used more than 5% of a core over ``window`` seconds.

    Each session's connect publishes presence from a background task, so
    presence events can trail the connects by seconds. Rounds that start
    before those tasks finish would measure them too.

    Raises:
        TimeoutError: a process was still busy after ``timeout`` seconds.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    before = [process.cpu_seconds() for process in processes]
    while loop.time() < deadline:
        await asyncio.sleep(window)
        after = [process.cpu_seconds() for process in processes]
        if all(end - start <= 0.05 * window for start, end in zip(before, after, strict=True)):
            return
        before = after
    raise TimeoutError(f"the servers were still busy after {timeout:g} s")


def _summary(receivers: int, rounds: list[dict[str, Any]], frame_bytes: int) -> dict[str, Any]:
    # The first round warms caches and is reported but not summarized.
    measured = rounds[1:] or rounds
    complete = [entry for entry in measured if entry["received"] == receivers]
    return {
        "receivers": receivers,
        "frame_bytes": frame_bytes,
        "rounds": rounds,
        "incomplete_rounds": len(measured) - len(complete),
        "last_ms": summarize([entry["last_ms"] for entry in complete]),
        "first_ms": summarize([entry["first_ms"] for entry in complete]),
    }


async def talk_fanout(
    servers: Sequence[TalkServer], *, receivers: int, rounds: int
) -> tuple[dict[str, Any], str, str]:
    """Measure our fan-out; return the summary, one received frame and its marker.

    Receiver ``i`` connects to ``servers[i % len(servers)]``; the sender to ``servers[0]``.
    """
    tag = secrets.token_hex(3)
    first = servers[0]
    sender_id, conversation_id = f"fan-{tag}-sender", f"fan-{tag}"
    receiver_ids = [f"fan-{tag}-{i}" for i in range(receivers)]
    await create_users(first, [sender_id, *receiver_ids])

    holder = WatchHolder()
    clients = [
        RawReceiver(
            servers[i % len(servers)].websocket_url,
            hello_text(APP_ID, user_id, servers[i % len(servers)].token(user_id)),
            holder,
        )
        for i, user_id in enumerate(receiver_ids)
    ]
    sender = ProtocolClient(first.websocket_url, APP_ID, sender_id, first.token(sender_id))
    try:
        await connect_all(clients)
        await sender.connect()
        await wait_until_idle([server.process for server in servers])

        # Every receiver hears of the new conversation before the first round.
        created = FrameWatch(conversation_id, receivers)
        holder.current = created
        await create_conversation(first, conversation_id, [sender_id, *receiver_ids])
        async with asyncio.timeout(ROUND_TIMEOUT * 2):
            await created.done.wait()
        holder.current = None
        await wait_until_idle([server.process for server in servers])

        async def trigger(marker: str) -> None:
            sender.send_message_nowait(conversation_id, marker)
            await sender.flush()

        markers = [f"fanout-{tag}-{number:03d}" for number in range(rounds + 1)]
        measured, sample = await _rounds(holder, receivers, markers, trigger)
        if sample is None:
            raise RuntimeError("no receiver got the fan-out message: nothing to compare")
        summary = _summary(receivers, measured, len(sample.encode()))
        summary["still_open"] = sum(client.open for client in clients)
        return summary, sample, markers[-1]
    finally:
        await sender.close()
        await close_all(clients)


async def broadcast_fanout(
    url: str, *, receivers: int, rounds: int, payload: str, placeholder: str
) -> dict[str, Any]:
    """Measure ``websockets.broadcast`` of ``payload`` to ``receivers`` clients plus a trigger.

    ``placeholder`` (a marker inside ``payload``) is replaced in each round by
    a marker of the same length.
    """
    tag = secrets.token_hex(3)
    holder = WatchHolder()
    hello = '{"type":"hello"}'
    clients = [RawReceiver(url, hello, holder) for _ in range(receivers)]
    trigger_client = RawReceiver(url, hello, WatchHolder())
    try:
        await connect_all(clients)
        await trigger_client.connect()
        await trigger_client.send(
            json.dumps({"type": "set_payload", "payload": payload, "placeholder": placeholder})
        )
        await asyncio.sleep(0.5)

        async def trigger(marker: str) -> None:
            await trigger_client.send(json.dumps({"type": "broadcast", "marker": marker}))

        markers = [f"fanout-{tag}-{number:03d}" for number in range(rounds + 1)]
        if any(len(marker) != len(placeholder) for marker in markers):
            raise ValueError("baseline markers must have the placeholder's length")
        measured, _ = await _rounds(holder, receivers, markers, trigger)
        summary = _summary(receivers, measured, len(payload.encode()))
        summary["still_open"] = sum(client.open for client in clients)
        return summary
    finally:
        await trigger_client.close()
        await close_all(clients)


@contextlib.asynccontextmanager
async def serving_broadcast(
    workdir: Path, *, deflate: bool = False
) -> AsyncIterator[tuple[ChildProcess, str]]:
    """Run ``benchmarks.broadcast_server`` on a free port; yield the process and its ws URL."""
    port = free_port()
    command = [sys.executable, "-m", "benchmarks.broadcast_server", "--port", str(port)]
    if not deflate:
        command.append("--no-deflate")
    async with running_process(
        "broadcast-server",
        command,
        log=workdir / f"broadcast-{port}.log",
        health_url=f"http://127.0.0.1:{port}/health",
        environment=python_path_environment(),
        cwd=workdir,
    ) as process:
        yield process, f"ws://127.0.0.1:{port}/"
