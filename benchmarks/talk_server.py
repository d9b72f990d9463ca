"""Our chat server (``talkjs-components serve``) as a child process, and its data setup.

The server gets one app whose REST rate limit is raised out of the way, a
fresh SQLite file (or the database and broker URLs given), and logs at
WARNING so that logging costs nothing per message.
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from talkjs_components.auth import App, create_user_token
from talkjs_components.rest import AsyncTalkJSClient
from talkjs_components.rest.models import ConversationUpdate, UserUpdate

from .processes import ChildProcess, free_port, python_path_environment, running_process

__all__ = [
    "APP_ID",
    "SECRET_KEY",
    "TalkServer",
    "create_conversation",
    "create_users",
    "serving_talk",
]

APP_ID = "bench"
SECRET_KEY = "sk_bench_" + "b" * 40
"""A fixed key: the server listens on 127.0.0.1 only, for the length of one scenario."""

_USERS_PER_REQUEST = 100
"""Users per ``PUT /users`` call: the REST API's maximum (``MAX_USERS_PER_REQUEST``)."""

# Requests per second and burst of the REST limiter, high enough never to
# throttle a benchmark; the realtime endpoint has no rate limit.
_CONFIG = """\
[limits]
requests_per_second = 1000000.0
burst = 1000000
"""


@dataclass(frozen=True)
class TalkServer:
    """A running server with one app, ``APP_ID``."""

    base_url: str
    process: ChildProcess
    app: App = field(default_factory=lambda: App(APP_ID, secret_key=SECRET_KEY))

    @property
    def websocket_url(self) -> str:
        """The realtime endpoint of the app: ``ws://127.0.0.1:PORT/v1/bench/realtime``."""
        return "ws://" + self.base_url.removeprefix("http://") + f"/v1/{APP_ID}/realtime"

    def token(self, user_id: str) -> str:
        """Return a user token for ``user_id``, valid for a day."""
        return create_user_token(self.app, user_id)

    def rest(self) -> AsyncTalkJSClient:
        """Return a REST client of the app; the caller closes it."""
        return AsyncTalkJSClient(APP_ID, SECRET_KEY, base_url=self.base_url)


@contextlib.asynccontextmanager
async def serving_talk(
    workdir: Path,
    name: str = "talkjs-server",
    *,
    database: str | None = None,
    extra_arguments: Sequence[str] = (),
    config_keys: str = "",
    deflate: bool = False,
    patches: Sequence[str] = (),
    profile: Path | None = None,
    tracemalloc: Path | None = None,
) -> AsyncIterator[TalkServer]:
    """Run ``talkjs-components serve`` on a free port of 127.0.0.1 until the context exits.

    Args:
        workdir: Folder for the config file, the log and the SQLite file.
        name: Label of the process in logs and errors.
        database: The ``--database`` value; a new SQLite file in ``workdir`` by default.
        extra_arguments: More ``serve`` options, such as ``--broker``.
        config_keys: Top-level TOML keys for the config file, such as ``broker_prefix``.
        deflate: Accept permessage-deflate on the realtime endpoint
            (``[realtime] per_message_deflate``); off, the server's default, when false.
        patches: Prototype patches of ``benchmarks.serve_variant`` to apply.
        profile: Write a pyinstrument profile of the server here at exit.
        tracemalloc: Trace allocations; SIGUSR1 appends a report here.
    """
    port = free_port()
    config = _write_config(workdir, name, config_keys, deflate=deflate)
    serve = [
        "serve", "--host", "127.0.0.1", "--port", str(port), "--config", str(config),
        "--database", database or f"sqlite:///{workdir / f'{name}-{port}.sqlite3'}",
        "--log-level", "warning", *extra_arguments,
    ]  # fmt: skip
    variant: list[str] = []
    for patch in patches:
        variant += ["--patch", patch]
    if profile is not None:
        variant += ["--profile", str(profile)]
    if tracemalloc is not None:
        variant += ["--tracemalloc", str(tracemalloc)]
    if variant:
        command = [sys.executable, "-m", "benchmarks.serve_variant", *variant, "--", *serve]
    else:
        command = [sys.executable, "-m", "talkjs_components.cli", *serve]
    base_url = f"http://127.0.0.1:{port}"
    environment = {"TALKJS_APPS": json.dumps({APP_ID: SECRET_KEY}), **python_path_environment()}
    async with running_process(
        name,
        command,
        log=workdir / f"{name}-{port}.log",
        health_url=base_url + "/health",
        environment=environment,
        cwd=workdir,
    ) as process:
        yield TalkServer(base_url, process)


def _write_config(workdir: Path, name: str, keys: str, *, deflate: bool) -> Path:
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / f"{name}.toml"
    # Top-level keys go before the first table.
    text = keys + "\n" + _CONFIG if keys else _CONFIG
    text += f"\n[realtime]\nper_message_deflate = {'true' if deflate else 'false'}\n"
    config.write_text(text)
    return config


async def create_users(server: TalkServer, user_ids: Sequence[str]) -> None:
    """Create the users through the REST API, ``_USERS_PER_REQUEST`` per call."""
    async with server.rest() as client:
        for start in range(0, len(user_ids), _USERS_PER_REQUEST):
            batch = user_ids[start : start + _USERS_PER_REQUEST]
            await client.upsert_users({user_id: UserUpdate(name=user_id) for user_id in batch})


async def create_conversation(
    server: TalkServer, conversation_id: str, participants: Sequence[str]
) -> None:
    """Create a conversation with ``participants`` (ReadWrite) through the REST API."""
    async with server.rest() as client:
        await client.upsert_conversation(
            conversation_id, ConversationUpdate(participants=list(participants))
        )
