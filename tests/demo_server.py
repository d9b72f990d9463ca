"""Run the demo, or any ASGI app under uvicorn, as a child process on a loopback port."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx

__all__ = [
    "RUNNING_LOGS",
    "STARTED_LOGS",
    "free_port",
    "running_demo",
    "running_server",
    "uvicorn_command",
]

STARTUP_TIMEOUT = 30.0
"""Seconds a server process may take to respond to HTTP before the test fails."""

ROOT = Path(__file__).resolve().parent.parent
LOG_CONFIG = Path(__file__).resolve().parent / "apps" / "server_logging.json"
"""Logging of the test apps: INFO and above, with times, except uvicorn's
access log, so a failed browser test shows what the server did (see
``conftest.py``)."""

RUNNING_LOGS: set[Path] = set()
"""Log files of the server processes running now."""

STARTED_LOGS: list[Path] = []
"""Log file of every server process started, in order, including stopped ones."""


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def running_demo(data: Path, port: int, log: Path) -> contextlib.AbstractAsyncContextManager[str]:
    """Start the demo on 127.0.0.1:``port`` with its data in ``data``; yield its base URL."""
    command = [
        sys.executable, "-m", "talkjs_components.cli", "demo",
        "--port", str(port), "--data", str(data), "--log-level", "warning",
    ]  # fmt: skip
    return running_server(command, port, log)


def uvicorn_command(app: str, port: int) -> list[str]:
    """Return the command that serves ASGI ``app`` ("module:attribute") on 127.0.0.1:``port``."""
    return [
        sys.executable, "-m", "uvicorn", app, "--app-dir", str(ROOT), "--port", str(port),
        "--log-config", str(LOG_CONFIG),
    ]  # fmt: skip


@contextlib.asynccontextmanager
async def running_server(
    command: list[str],
    port: int,
    log: Path,
    environment: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> AsyncIterator[str]:
    """Run ``command`` in ``cwd``; it serves HTTP on 127.0.0.1:``port``. Yield the base URL.

    The process is stopped with SIGINT (uvicorn's graceful shutdown) on exit,
    and killed if it has not stopped after 10 seconds.
    """
    environment = {**os.environ, "PYTHONUNBUFFERED": "1", **(environment or {})}
    process = await asyncio.to_thread(_start, command, environment, log, cwd)
    base_url = f"http://127.0.0.1:{port}"
    RUNNING_LOGS.add(log)
    STARTED_LOGS.append(log)
    try:
        await _wait_for_http(base_url, process, log)
        yield base_url
    finally:
        RUNNING_LOGS.discard(log)
        process.send_signal(signal.SIGINT)
        try:
            await asyncio.to_thread(process.wait, 10)
        except subprocess.TimeoutExpired:
            process.kill()
            await asyncio.to_thread(process.wait)


def _start(
    command: list[str], environment: dict[str, str], log: Path, cwd: Path | None
) -> subprocess.Popen[bytes]:
    with log.open("ab") as output:
        return subprocess.Popen(
            command, stdout=output, stderr=subprocess.STDOUT, env=environment, cwd=cwd
        )


async def _wait_for_http(base_url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + STARTUP_TIMEOUT
    async with httpx.AsyncClient() as client:
        while loop.time() < deadline:
            if process.poll() is not None:
                output = await asyncio.to_thread(log.read_text, errors="replace")
                raise RuntimeError(
                    f"the server exited with status {process.returncode}: {output[-2000:]}"
                )
            try:
                response = await client.get(base_url + "/", timeout=2)
                if response.status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
    output = await asyncio.to_thread(log.read_text, errors="replace")
    raise TimeoutError(
        f"the server did not answer at {base_url} within {STARTUP_TIMEOUT} s: {output[-2000:]}"
    )
