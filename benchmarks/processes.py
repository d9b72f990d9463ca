"""Child server processes on 127.0.0.1: start, wait until they serve, measure, stop.

Every process started here is stopped by its own id when its context
exits: SIGINT first (a graceful shutdown for uvicorn and Synapse), then
SIGKILL after ``STOP_TIMEOUT`` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

__all__ = [
    "REPO_ROOT",
    "STARTUP_TIMEOUT",
    "STOP_TIMEOUT",
    "ChildProcess",
    "free_port",
    "python_path_environment",
    "running_process",
]

REPO_ROOT = Path(__file__).resolve().parent.parent
"""The checkout that contains ``benchmarks``."""

STARTUP_TIMEOUT = 60.0
"""Seconds a server may take to respond to its health URL; Synapse starts in about 4 s here."""

STOP_TIMEOUT = 60.0
"""Seconds a server may take to exit after SIGINT before it is killed.

A profiled server writes its profile before it exits, which takes a few seconds.
"""


def python_path_environment() -> dict[str, str]:
    """Return ``PYTHONPATH`` for a child Python that must import ``benchmarks``.

    The checkout goes last, so a ``PYTHONPATH`` that names another copy of
    ``talkjs_components`` (a snapshot of a commit, say) still wins in the
    child, as it does in this process. Children run outside the checkout
    for the same reason: ``python -m`` puts the working folder first.
    """
    current = os.environ.get("PYTHONPATH")
    return {"PYTHONPATH": f"{current}{os.pathsep}{REPO_ROOT}" if current else str(REPO_ROOT)}


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass(frozen=True)
class ChildProcess:
    """A server process started by a benchmark, with its combined output in ``log``."""

    name: str
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def rss_bytes(self) -> int:
        """Return the process's resident set size (VmRSS), in bytes.

        Raises:
            RuntimeError: the process has exited.
        """
        try:
            status = Path(f"/proc/{self.pid}/status").read_text()
        except OSError as exc:
            raise RuntimeError(f"{self.name} (pid {self.pid}) is not running: {exc}") from exc
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise RuntimeError(f"/proc/{self.pid}/status of {self.name} has no VmRSS line")

    def cpu_seconds(self) -> float:
        """Return the user plus system CPU time the process has used so far, in seconds."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks = int(fields[11]) + int(fields[12])
        return ticks / os.sysconf("SC_CLK_TCK")

    def output_tail(self, characters: int = 3000) -> str:
        """Return the end of what the process has written."""
        try:
            return self.log.read_text(errors="replace")[-characters:]
        except OSError:
            return ""


async def _wait_for_http(child: ChildProcess, health_url: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient() as client:
        while time.monotonic() < deadline:
            if child.process.poll() is not None:
                raise RuntimeError(
                    f"{child.name} exited with status {child.process.returncode} before it "
                    f"served {health_url}; its output ends with:\n{child.output_tail()}"
                )
            try:
                response = await client.get(health_url, timeout=2)
                if response.status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
    raise TimeoutError(
        f"{child.name} did not respond to {health_url} within {timeout:g} s; its output ends "
        f"with:\n{child.output_tail()}"
    )


def _spawn(
    command: Sequence[str], log: Path, environment: Mapping[str, str], cwd: Path | None
) -> subprocess.Popen[bytes]:
    # Popen returns once the child is forked: it does not wait for the program.
    with log.open("ab") as output:
        return subprocess.Popen(
            list(command), stdout=output, stderr=subprocess.STDOUT, env=dict(environment), cwd=cwd
        )


def _stop(child: ChildProcess) -> None:
    if child.process.poll() is None:
        child.process.send_signal(signal.SIGINT)
    try:
        child.process.wait(STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        child.process.kill()
        child.process.wait()


@contextlib.asynccontextmanager
async def running_process(
    name: str,
    command: Sequence[str],
    *,
    log: Path,
    health_url: str,
    environment: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    startup_timeout: float = STARTUP_TIMEOUT,
) -> AsyncIterator[ChildProcess]:
    """Run ``command`` until the context exits; yield once ``health_url`` returns 200."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **(environment or {})}
    child = ChildProcess(name, _spawn(command, log, env, cwd), log)
    try:
        await _wait_for_http(child, health_url, startup_timeout)
        yield child
    finally:
        await asyncio.to_thread(_stop, child)
