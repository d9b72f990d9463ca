"""Send-to-delivery latency (a) and persisted-message throughput (b), ours and Synapse's.

Latency: one user sends ``latency_messages`` messages paced
``latency_interval`` apart, without waiting for responses (an open loop,
so a slow server cannot slow the pace), to a conversation (a room) with one
other user, whose client records when each message arrives. Ours goes over
the realtime protocol both ways; Synapse's is ``PUT /rooms/{room}/send`` and
a ``/sync`` long-poll, the path of a Matrix client.

Throughput: each of N senders sends into a conversation of its own as fast
as responses come back (a closed loop, one request in flight per sender)
for a fixed time. A message counts once the server's response reports it
stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import httpx

from talkjs_components.models import ChatEvent, MessageSent
from talkjs_components.protocol import SendMessage

from ..realtime_client import ProtocolClient
from ..stats import summarize
from ..synapse import MatrixClient, SynapseServer, timeline_texts
from ..talk_server import APP_ID, TalkServer, create_conversation, create_users

__all__ = ["synapse_latency", "synapse_throughput", "talk_latency", "talk_throughput"]

DELIVERY_TIMEOUT = 60.0
"""Seconds to wait for the last message to arrive after the last send."""


class _Deliveries:
    """Arrival times of the expected message texts at the receiver."""

    def __init__(self) -> None:
        self.expected: set[str] = set()
        self.received_at: dict[str, float] = {}
        self.complete = asyncio.Event()

    def expect(self, texts: Sequence[str]) -> None:
        self.expected = set(texts)
        self.received_at = {}
        self.complete.clear()

    def arrived(self, text: str, at: float) -> None:
        if text in self.expected and text not in self.received_at:
            self.received_at[text] = at
            if len(self.received_at) >= len(self.expected):
                self.complete.set()


async def _paced_phase(
    texts: Sequence[str],
    interval: float,
    deliveries: _Deliveries,
    send: Callable[[str], Awaitable[asyncio.Future[object]]],
) -> dict[str, Any]:
    """Send ``texts`` ``interval`` seconds apart without waiting, then wait for every delivery.

    ``send(text)`` starts one send and returns a future that completes with
    the server's response.
    """
    deliveries.expect(texts)
    sent_at: list[float] = []
    acked_at: dict[int, float] = {}
    responses: list[asyncio.Future[object]] = []

    def acknowledge(index: int) -> Callable[[asyncio.Future[object]], None]:
        return lambda _: acked_at.__setitem__(index, time.perf_counter())

    start = time.perf_counter()
    for index, text in enumerate(texts):
        delay = start + index * interval - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        sent_at.append(time.perf_counter())
        response = await send(text)
        response.add_done_callback(acknowledge(index))
        responses.append(response)
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(DELIVERY_TIMEOUT):
            await asyncio.gather(*responses)
            await deliveries.complete.wait()

    received = deliveries.received_at
    delivery = [
        (received[text] - sent) * 1000
        for text, sent in zip(texts, sent_at, strict=True)
        if text in received
    ]
    acks = [(acked_at[i] - sent) * 1000 for i, sent in enumerate(sent_at) if i in acked_at]
    return {
        "messages": len(texts),
        "delivered": len(delivery),
        "delivery_ms": summarize(delivery),
        "send_response_ms": summarize(acks),
    }


def _phases(tag: str, warmup: int, messages: int) -> list[list[str]]:
    """Return the texts of the warm-up phase and of the measured phase; only the last counts."""
    return [
        [f"{phase}-{tag}-{index}" for index in range(count)]
        for phase, count in (("warmup", warmup), ("measured", messages))
    ]


async def talk_latency(
    send_server: TalkServer,
    receive_server: TalkServer,
    *,
    messages: int,
    interval: float,
    warmup: int,
) -> dict[str, Any]:
    """Measure delivery between two sessions, the sender on one server and the receiver on another.

    Pass the same server twice for a single node.
    """
    tag = secrets.token_hex(3)
    sender_id, receiver_id, conversation_id = f"lat-a-{tag}", f"lat-b-{tag}", f"lat-{tag}"
    await create_users(send_server, [sender_id, receiver_id])
    await create_conversation(send_server, conversation_id, [sender_id, receiver_id])
    deliveries = _Deliveries()

    def on_event(event: ChatEvent, at: float) -> None:
        if isinstance(event, MessageSent):
            deliveries.arrived(event.message.text, at)

    receiver = ProtocolClient(
        receive_server.websocket_url,
        APP_ID,
        receiver_id,
        receive_server.token(receiver_id),
        on_event,
    )
    sender = ProtocolClient(
        send_server.websocket_url, APP_ID, sender_id, send_server.token(sender_id)
    )

    async def send(text: str) -> asyncio.Future[object]:
        response = sender.send_message_nowait(conversation_id, text)
        await sender.flush()
        return response

    await receiver.connect()
    await sender.connect()
    try:
        results: dict[str, Any] = {}
        for texts in _phases(tag, warmup, messages):
            results = await _paced_phase(texts, interval, deliveries, send)
        return results
    finally:
        await sender.close()
        await receiver.close()


async def synapse_latency(
    synapse: SynapseServer, *, messages: int, interval: float, warmup: int
) -> dict[str, Any]:
    """Measure delivery between two Matrix users of one room: ``PUT send`` to ``/sync``."""
    tag = secrets.token_hex(3)
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
    async with (
        httpx.AsyncClient(limits=limits, timeout=60) as send_http,
        httpx.AsyncClient(timeout=60) as receive_http,
    ):
        alice = await synapse.register(send_http, f"lat-a-{tag}")
        bob = await synapse.register(send_http, f"lat-b-{tag}")
        sender = MatrixClient(send_http, synapse.base_url, alice)
        receiver = MatrixClient(receive_http, synapse.base_url, bob)
        room_id = await sender.create_room([bob.user_id])
        await receiver.join(room_id)
        filter_id = await receiver.create_timeline_filter()
        deliveries = _Deliveries()

        async def sync_loop(since: str) -> None:
            while True:
                body = await receiver.sync(since, filter_id, 30_000)
                at = time.perf_counter()
                since = body["next_batch"]
                for text in timeline_texts(body, room_id):
                    deliveries.arrived(text, at)

        async def send(text: str) -> asyncio.Future[object]:
            return asyncio.ensure_future(sender.send_text(room_id, text))

        first = await receiver.sync(None, filter_id, 0)
        syncing = asyncio.create_task(sync_loop(first["next_batch"]))
        try:
            results: dict[str, Any] = {}
            for texts in _phases(tag, warmup, messages):
                results = await _paced_phase(texts, interval, deliveries, send)
            return results
        finally:
            syncing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await syncing


def _throughput_summary(
    completions: list[float], latencies: list[float], seconds: float, senders: int
) -> dict[str, Any]:
    return {
        "senders": senders,
        "seconds": seconds,
        "messages": len(completions),
        "messages_per_second": len(completions) / seconds,
        "send_response_ms": summarize([latency * 1000 for latency in latencies]),
    }


async def talk_throughput(
    servers: Sequence[TalkServer], *, senders: int, seconds: float, warmup: int
) -> dict[str, Any]:
    """Count messages stored in ``seconds`` by ``senders`` closed-loop sessions.

    Sender ``j`` connects to ``servers[j % len(servers)]`` and sends into a
    conversation with one other participant, who is not connected.
    """
    tag = secrets.token_hex(3)
    first = servers[0]
    user_ids = [f"tp-{tag}-{j}" for j in range(senders)] + [f"tp-{tag}-peer"]
    await create_users(first, user_ids)
    for j in range(senders):
        await create_conversation(first, f"tp-{tag}-{j}", [user_ids[j], user_ids[-1]])
    clients = []
    for j in range(senders):
        server = servers[j % len(servers)]
        client = ProtocolClient(
            server.websocket_url, APP_ID, user_ids[j], server.token(user_ids[j])
        )
        await client.connect()
        clients.append(client)
    try:
        completions: list[float] = []
        latencies: list[float] = []
        deadline = 0.0

        async def run(j: int, client: ProtocolClient, count: int | None) -> None:
            number = 0
            while count is None or number < count:
                started = time.perf_counter()
                if count is None and started >= deadline:
                    return
                request = SendMessage(
                    conversation_id=f"tp-{tag}-{j}",
                    text=f"message {number} of sender {j}",
                    idempotency_key=client.protocol.new_idempotency_key(),
                )
                await client.request(request)
                finished = time.perf_counter()
                number += 1
                if count is None and finished <= deadline:
                    completions.append(finished)
                    latencies.append(finished - started)

        await asyncio.gather(*(run(j, client, warmup) for j, client in enumerate(clients)))
        cpu_before = [server.process.cpu_seconds() for server in servers]
        client_cpu_before = time.process_time()
        deadline = time.perf_counter() + seconds
        await asyncio.gather(*(run(j, client, None) for j, client in enumerate(clients)))
        cpu_used = [
            server.process.cpu_seconds() - before
            for server, before in zip(servers, cpu_before, strict=True)
        ]
        summary = _throughput_summary(completions, latencies, seconds, senders)
        summary["server_cpu_seconds"] = cpu_used
        summary["client_cpu_seconds"] = time.process_time() - client_cpu_before
        return summary
    finally:
        for client in clients:
            await client.close()


async def synapse_throughput(
    synapse: SynapseServer, *, senders: int, seconds: float, warmup: int
) -> dict[str, Any]:
    """Count messages Synapse stores in ``seconds`` from ``senders`` closed-loop clients."""
    tag = secrets.token_hex(3)
    limits = httpx.Limits(max_connections=senders + 5, max_keepalive_connections=senders + 5)
    async with httpx.AsyncClient(limits=limits, timeout=60) as http:
        clients: list[tuple[MatrixClient, str]] = []
        for j in range(senders):
            user = await synapse.register(http, f"tp-{tag}-{j}")
            client = MatrixClient(http, synapse.base_url, user)
            clients.append((client, await client.create_room()))
        completions: list[float] = []
        latencies: list[float] = []
        deadline = 0.0

        async def run(j: int, client: MatrixClient, room_id: str, count: int | None) -> None:
            number = 0
            while count is None or number < count:
                started = time.perf_counter()
                if count is None and started >= deadline:
                    return
                await client.send_text(room_id, f"message {number} of sender {j}")
                finished = time.perf_counter()
                number += 1
                if count is None and finished <= deadline:
                    completions.append(finished)
                    latencies.append(finished - started)

        await asyncio.gather(*(run(j, c, room, warmup) for j, (c, room) in enumerate(clients)))
        cpu_before = synapse.process.cpu_seconds()
        client_cpu_before = time.process_time()
        deadline = time.perf_counter() + seconds
        await asyncio.gather(*(run(j, c, room, None) for j, (c, room) in enumerate(clients)))
        summary = _throughput_summary(completions, latencies, seconds, senders)
        summary["server_cpu_seconds"] = [synapse.process.cpu_seconds() - cpu_before]
        summary["client_cpu_seconds"] = time.process_time() - client_cpu_before
        return summary
