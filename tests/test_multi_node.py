"""Two ``talkjs-components serve`` nodes on one PostgreSQL schema and one Redis prefix.

A message sent through one node reaches a session on the other, and both
nodes return the same unread counts. Then one node is killed with SIGKILL
while messages stream through the other: its sessions move to the surviving
node (their server URL lists both) and resume with every message once.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import subprocess
import sys
import uuid
from pathlib import Path

from talkjs_components.auth import App, create_user_token
from talkjs_components.rest import AsyncTalkJSClient, ConversationUpdate, UserUpdate
from talkjs_components.rest.models import RestUserConversation
from talkjs_components.session import Backoff, SessionMessage, TalkSession, WebSocketTransport
from talkjs_components.store.postgres import SCHEMA_VERSION

from .conftest import SECRET_KEY
from .server_process import ServerProcess, serving_process
from .services import RedisNamespace
from .services import redis_namespace as redis_namespace
from .waiting import wait_until

TIMEOUT = 20.0
"""Seconds any single wait in this test may take before it fails."""

MIGRATE_TIMEOUT = 60.0
"""Seconds the ``migrate`` command may take before the test fails."""

STREAM_LENGTH = 60
"""Messages sent through the surviving node while the other one is killed."""

FAST_RETRIES = Backoff(initial=0.05, maximum=0.5, jitter=0)


def _websocket_url(node: ServerProcess) -> str:
    return "ws://" + node.base_url.removeprefix("http://")


def _session(app: App, user_id: str, transport: WebSocketTransport) -> TalkSession:
    return TalkSession(
        app.app_id,
        user_id,
        token=create_user_token(app, user_id),
        transport=transport,
        retry_backoff=FAST_RETRIES,
    )


async def _conversations_on(
    node: ServerProcess, app: App, user_id: str
) -> list[RestUserConversation]:
    async with AsyncTalkJSClient(app.app_id, SECRET_KEY, base_url=node.base_url) as client:
        return await client.list_user_conversations(user_id, limit=100)


def _collect_id(into: list[str], message: SessionMessage) -> None:
    into.append(message.id)


def _ends_with(ids: list[str], last: str) -> bool:
    return ids[-1:] == [last]


def _unread_counts(conversations: list[RestUserConversation]) -> dict[str, int]:
    return {conversation.id: conversation.unread_message_count for conversation in conversations}


async def test_two_nodes_share_and_fail_over(
    empty_postgres_url: str, redis_namespace: RedisNamespace, tmp_path: Path
) -> None:
    migrated = await asyncio.to_thread(
        subprocess.run,
        [
            sys.executable,
            "-m",
            "talkjs_components.cli",
            "migrate",
            "--database",
            empty_postgres_url,
        ],
        capture_output=True,
        text=True,
        timeout=MIGRATE_TIMEOUT,
    )
    assert migrated.returncode == 0, migrated.stderr
    assert f"schema version 0 -> {SCHEMA_VERSION}" in migrated.stdout

    app = App(f"nodes-{uuid.uuid4().hex[:12]}", secret_key=SECRET_KEY)
    # The Redis prefix of this test's own, shared by both nodes.
    config_text = f'broker_prefix = "{redis_namespace.prefix}"\n'
    with contextlib.ExitStack() as nodes:
        first, second = (
            nodes.enter_context(
                serving_process(
                    tmp_path,
                    {app.app_id: SECRET_KEY},
                    config_text=config_text,
                    database=empty_postgres_url,
                    broker=redis_namespace.url,
                )
            )
            for _ in range(2)
        )
        both = f"{_websocket_url(first)},{_websocket_url(second)}"
        async with AsyncTalkJSClient(app.app_id, SECRET_KEY, base_url=first.base_url) as client:
            for user_id in ("alice", "bob", "carol"):
                await client.upsert_user(user_id, UserUpdate(name=user_id.title()))
            await client.upsert_conversation(
                "group", ConversationUpdate(participants=["alice", "bob", "carol"])
            )

        # alice and carol list both nodes and start on the first; bob uses the second only.
        transports = {
            "alice": WebSocketTransport(both),
            "bob": WebSocketTransport(_websocket_url(second)),
            "carol": WebSocketTransport(both),
        }
        alice = _session(app, "alice", transports["alice"])
        bob = _session(app, "bob", transports["bob"])
        carol = _session(app, "carol", transports["carol"])
        received: dict[str, list[str]] = {"alice": [], "bob": [], "carol": []}
        for name, session in (("alice", alice), ("bob", bob), ("carol", carol)):
            session.on_message(functools.partial(_collect_id, received[name]))
        sender: asyncio.Task[None] | None = None
        try:
            await asyncio.wait_for(
                asyncio.gather(alice.wait_ready(), bob.wait_ready(), carol.wait_ready()), TIMEOUT
            )
            servers_before = {name: transport.server_url for name, transport in transports.items()}

            # Across nodes: sent through the first, received on the second.
            hello = await alice.send_message("group", "hello from the first node")
            await wait_until(lambda: received["bob"] == [hello.id], TIMEOUT, "bob's message")
            await wait_until(
                lambda: bob.unreads.current is not None and len(bob.unreads.current) == 1,
                TIMEOUT,
                "bob's unread conversation",
            )
            assert bob.unreads.current is not None
            live_unread = bob.unreads.current[0].unread_message_count
            on_first = await _conversations_on(first, app, "bob")
            on_second = await _conversations_on(second, app, "bob")

            # While bob streams messages through the second node, the first is killed.
            killed = asyncio.Event()

            async def stream() -> None:
                for number in range(STREAM_LENGTH):
                    if number == STREAM_LENGTH // 2:
                        await killed.wait()
                    await bob.send_message("group", f"m{number}")

            sender = asyncio.create_task(stream())
            await wait_until(lambda: len(received["alice"]) >= 10, TIMEOUT, "the stream to start")
            first.process.kill()
            killed.set()
            await asyncio.wait_for(sender, TIMEOUT)
            marker = await bob.send_message("group", "marker")
            # Events arrive in order, so once the marker is in, every earlier one is.
            for name in ("alice", "bob", "carol"):
                await wait_until(
                    functools.partial(_ends_with, received[name], marker.id),
                    TIMEOUT,
                    f"{name}'s marker",
                )
            async with AsyncTalkJSClient(
                app.app_id, SECRET_KEY, base_url=second.base_url
            ) as client:
                stored = [message.id for message in await client.list_messages("group", limit=100)]
            alice_unreads = _unread_counts(await _conversations_on(second, app, "alice"))
            servers_after = {name: transport.server_url for name, transport in transports.items()}
        finally:
            if sender is not None:
                sender.cancel()
            for session in (alice, bob, carol):
                session.destroy()
        first_status = first.process.wait(TIMEOUT)

    assert live_unread == 1
    assert _unread_counts(on_first) == {"group": 1}
    assert _unread_counts(on_second) == _unread_counts(on_first)
    assert first_status == -9
    stored.reverse()
    assert len(stored) == STREAM_LENGTH + 2
    assert received["alice"] == stored
    assert received["carol"] == stored
    assert received["bob"] == stored
    assert alice_unreads == {"group": STREAM_LENGTH + 1}
    first_url, second_url = _websocket_url(first), _websocket_url(second)
    assert servers_before == {"alice": first_url, "bob": second_url, "carol": first_url}
    assert servers_after == {"alice": second_url, "bob": second_url, "carol": second_url}
