"""Run the standalone server for tests: in this process on a loopback socket, or as a child.

Both bind 127.0.0.1 only. The child is ``talkjs-components serve``, stopped
with SIGINT (uvicorn's graceful shutdown) and killed if it has not exited
after 10 seconds. A test may kill it earlier itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx
import uvicorn
from starlette.applications import Starlette

from talkjs_components.server import ServerConfig, create_app
from talkjs_components.server.hosting import AppHost

from .waiting import wait_until

__all__ = [
    "STARTUP_TIMEOUT",
    "InProcessServer",
    "ServerProcess",
    "free_port",
    "serving_in_process",
    "serving_process",
]

STARTUP_TIMEOUT = 30.0
"""Seconds a server may take to respond to ``GET /health`` before the test fails."""


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass(frozen=True)
class InProcessServer:
    """A server running on this test's event loop."""

    base_url: str
    app: Starlette

    @property
    def host(self) -> AppHost:
        """The server's apps, to reach their chat services directly."""
        host: AppHost = self.app.state.host
        return host


@contextlib.asynccontextmanager
async def serving_in_process(config: ServerConfig) -> AsyncIterator[InProcessServer]:
    """Serve ``create_app(config)`` with uvicorn on this event loop, on a fresh loopback port."""
    app = create_app(config)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(app, log_level="warning", lifespan="on", ws="none", access_log=False)
    )
    task = asyncio.create_task(server.serve(sockets=[listener]))
    try:
        await wait_until(lambda: server.started or task.done(), STARTUP_TIMEOUT, "uvicorn start")
        if task.done():
            task.result()
            raise RuntimeError("uvicorn exited before it started")
        yield InProcessServer(f"http://127.0.0.1:{port}", app)
    finally:
        server.should_exit = True
        await task
        listener.close()


@dataclass(frozen=True)
class ServerProcess:
    """A ``talkjs-components serve`` child process."""

    base_url: str
    process: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        """Return what the process has logged so far."""
        return self.log.read_text(errors="replace")


@contextlib.contextmanager
def serving_process(
    tmp_path: Path,
    apps: Mapping[str, str],
    *,
    config_text: str = "",
    log_level: str = "warning",
    database: str | None = None,
    broker: str | None = None,
) -> Iterator[ServerProcess]:
    """Run ``talkjs-components serve`` with ``apps`` (id to secret key) from ``TALKJS_APPS``.

    ``config_text`` becomes the config file, for limits and the broker
    prefix. ``database`` is the ``--database`` value, by default a new
    SQLite file in ``tmp_path``; ``broker`` is the ``--broker`` value, by
    default none (``memory://``). Several servers may run in one
    ``tmp_path``: each has its own port, config file and log.
    """
    port = free_port()
    config = tmp_path / f"server-{port}.toml"
    config.write_text(config_text)
    log = tmp_path / f"server-{port}.log"
    database = database or f"sqlite:///{tmp_path / 'chat.sqlite3'}"
    command = [
        sys.executable, "-m", "talkjs_components.cli", "serve",
        "--port", str(port), "--config", str(config),
        "--database", database, "--log-level", log_level,
    ]  # fmt: skip
    if broker is not None:
        command += ["--broker", broker]
    environment = {**os.environ, "PYTHONUNBUFFERED": "1", "TALKJS_APPS": json.dumps(dict(apps))}
    for name in ("TALKJS_APP_ID", "TALKJS_SECRET_KEY", "TALKJS_BROKER_URL"):
        environment.pop(name, None)
    with log.open("ab") as output:
        process = subprocess.Popen(
            command, stdout=output, stderr=subprocess.STDOUT, env=environment
        )
    running = ServerProcess(f"http://127.0.0.1:{port}", process, log)
    try:
        _wait_for_health(running)
        yield running
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_for_health(running: ServerProcess) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    with httpx.Client() as client:
        while time.monotonic() < deadline:
            if running.process.poll() is not None:
                raise RuntimeError(
                    f"the server exited with status {running.process.returncode}: "
                    f"{running.output()[-2000:]}"
                )
            try:
                if client.get(running.base_url + "/health", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
    raise TimeoutError(
        f"the server did not answer at {running.base_url} within {STARTUP_TIMEOUT} s"
    )
