"""The settings every scenario gets from the command line: sizes, folders and options."""

from __future__ import annotations

import argparse
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["QUICK_SIZES", "Context", "Sizes", "parse_sizes"]

logger = logging.getLogger("benchmarks")


@dataclass(frozen=True)
class Sizes:
    """Counts and durations of the scenarios; ``--quick`` shrinks them for a smoke run."""

    latency_messages: int = 300
    latency_interval: float = 0.020
    """Seconds between two sends of the latency scenario."""
    warmup_messages: int = 20
    throughput_seconds: float = 10.0
    throughput_senders: tuple[int, ...] = (1, 8)
    fanout_sizes: tuple[int, ...] = (100, 1000)
    fanout_rounds: int = 5
    idle_sizes: tuple[int, ...] = (1000, 5000)
    ui_histories: tuple[int, ...] = (10, 1000)
    ui_rounds: int = 20


QUICK_SIZES = Sizes(
    latency_messages=30,
    warmup_messages=5,
    throughput_seconds=2.0,
    fanout_sizes=(20,),
    fanout_rounds=2,
    idle_sizes=(50,),
    ui_histories=(10,),
    ui_rounds=3,
)


@dataclass
class Context:
    """The run's settings and a folder for its servers' files."""

    workdir: Path
    sizes: Sizes
    synapse_venv: Path | None = None
    patches: tuple[str, ...] = ()
    """Prototype patches applied to our server (``benchmarks.serve_variant.PATCHES``)."""
    deflate: bool = False
    """Whether our server and the raw websocket baselines accept permessage-deflate."""
    profile_dir: Path | None = None
    """Folder for pyinstrument profiles of our servers; ``None`` profiles nothing."""
    database_url: str | None = None
    """PostgreSQL URL for the cluster scenario; ``None`` skips it."""
    redis_url: str | None = None
    started: float = field(default_factory=time.monotonic)

    def folder(self, name: str) -> Path:
        """Return a new folder under the work folder for one server or scenario."""
        path = self.workdir / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    def log(self, message: str, *arguments: object) -> None:
        """Log progress with the seconds since the run began."""
        logger.info("[%6.1f s] " + message, time.monotonic() - self.started, *arguments)


def parse_sizes(text: str) -> tuple[int, ...]:
    """Parse a command-line list of sizes such as ``100,1000``.

    Raises:
        argparse.ArgumentTypeError: ``text`` is not a list of integers of at least 1.
    """
    try:
        values = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"invalid size list {text!r}: use comma-separated integers, like 100,1000"
        ) from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"invalid size list {text!r}: sizes must be at least 1")
    return values
