"""Facts about the machine and the software that a benchmark result depends on."""

from __future__ import annotations

import os
import platform
import resource
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

__all__ = [
    "PACKAGES",
    "load_average",
    "machine_facts",
    "product_source",
    "raise_file_limit",
]

PACKAGES = (
    "talkjs-components",
    "websockets",
    "uvicorn",
    "starlette",
    "pydantic",
    "httpx",
    "reactpy",
    "playwright",
    "asyncpg",
    "redis",
    "pyinstrument",
)
"""Distributions whose versions go into the results, when installed in this environment."""


def load_average() -> tuple[float, float, float]:
    """Return the 1, 5 and 15 minute load averages."""
    return os.getloadavg()


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory_bytes() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return None


def _versions() -> dict[str, str]:
    versions: dict[str, str] = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def machine_facts() -> dict[str, Any]:
    """Return the CPU, cores, memory, OS, Python and package versions of this process."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return {
        "cpu_model": _cpu_model(),
        "cores": os.cpu_count(),
        "memory_bytes": _memory_bytes(),
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "python_implementation": platform.python_implementation(),
        "packages": _versions(),
        "open_files_limit": {"soft": soft, "hard": hard},
    }


def product_source(checkout: Path) -> dict[str, str | None]:
    """Return where ``talkjs_components`` was imported from and the checkout's commit.

    The two differ when ``PYTHONPATH`` puts another copy of the package first,
    such as one extracted from a commit with ``git archive``.
    """
    import talkjs_components

    try:
        completed = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=checkout,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
        commit = completed.stdout.strip() or None
    except (OSError, subprocess.TimeoutExpired):
        commit = None
    return {
        "talkjs_components": str(Path(talkjs_components.__file__).parent),
        "checkout_commit": commit,
    }


def raise_file_limit(needed: int) -> tuple[int, int]:
    """Raise this process's soft RLIMIT_NOFILE towards ``needed``, within the hard limit.

    Child processes inherit the new soft limit. Returns the (soft, hard)
    limits in force afterwards; the caller compares ``soft`` with what it needs.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
    if target > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)
