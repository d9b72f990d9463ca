"""Command line of the benchmarks: ``python -m benchmarks [--quick] [--scenario NAME ...]``.

Run it from the repository root with the project's virtual environment.
Synapse, the baseline of the latency and throughput scenarios, lives in a
virtual environment of its own (see ``--synapse-venv``). Without it, those
scenarios measure our server only and report why.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import logging
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .context import QUICK_SIZES, Context, Sizes, parse_sizes
from .machine import load_average, machine_facts, product_source
from .processes import REPO_ROOT
from .report import ScenarioResult, format_table
from .runner import SCENARIOS, run_scenario
from .serve_variant import PATCHES
from .synapse import INSTALL_HINT, find_synapse

__all__ = ["main"]

SCENARIO_TIMEOUT = 1800.0
"""Seconds one scenario may run before it is cancelled and reported as failed."""

_DESCRIPTION = (
    """\
Benchmark the chat server against its baselines, side by side, on 127.0.0.1.

Scenarios (default: all):
  latency     a. send-to-delivery latency between two users, vs Synapse
  throughput  b. messages persisted per second with 1 and 8 senders, vs Synapse
  fanout      c. one message to N participants, vs a raw websockets.broadcast
  idle        d. server memory per idle session, vs a bare websockets server
  ui          e. REST send to visible in Chromium, and ReactPy bytes per update
  cluster     f. a, b and c on two nodes with PostgreSQL and Redis

Synapse: """
    + INSTALL_HINT
)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description=_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--scenario",
        action="append",
        choices=list(SCENARIOS),
        help="run this scenario; repeat for several (default: all)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a smoke run: few messages, 2 s throughput, 20 fan-out receivers, 50 idle sessions",
    )

    # Sizes; each overrides the --quick or default value.
    parser.add_argument("--messages", type=int, help="latency: messages sent (default: 300)")
    parser.add_argument(
        "--interval-ms", type=float, help="latency: milliseconds between sends (default: 20)"
    )
    parser.add_argument("--seconds", type=float, help="throughput: seconds per run (default: 10)")
    parser.add_argument(
        "--senders",
        type=parse_sizes,
        help="throughput: sender counts, comma-separated (default: 1,8)",
    )
    parser.add_argument(
        "--fanout-sizes", type=parse_sizes, help="fan-out: receiver counts (default: 100,1000)"
    )
    parser.add_argument("--fanout-rounds", type=int, help="fan-out: measured rounds (default: 5)")
    parser.add_argument(
        "--idle-sizes", type=parse_sizes, help="idle: session counts (default: 1000,5000)"
    )
    parser.add_argument(
        "--ui-histories", type=parse_sizes, help="ui: messages on screen (default: 10,1000)"
    )
    parser.add_argument(
        "--ui-rounds", type=int, help="ui: measured sends per history (default: 20)"
    )

    # Files, folders and the Synapse installation.
    parser.add_argument(
        "--output",
        type=Path,
        help="JSON results file (default: benchmarks/results/results-TIMESTAMP.json)",
    )
    parser.add_argument(
        "--workdir",
        type=Path,
        help="folder for the servers' databases and logs (default: a new folder in /tmp, "
        "deleted at the end unless --keep-workdir)",
    )
    parser.add_argument("--keep-workdir", action="store_true", help="keep the work folder")
    parser.add_argument(
        "--synapse-venv",
        type=Path,
        help="virtual environment with matrix-synapse (default: $BENCH_SYNAPSE_VENV, else "
        "benchmarks/.venv-synapse)",
    )

    # Variants of our server, and the cluster's services.
    parser.add_argument(
        "--patch",
        action="append",
        default=[],
        choices=sorted(PATCHES),
        help="run our server with this prototype optimization (benchmarks/serve_variant.py)",
    )
    parser.add_argument(
        "--deflate",
        action="store_true",
        help="accept permessage-deflate on our server ([realtime] per_message_deflate) and on "
        "the raw websocket baselines (default: off on both, the server's default)",
    )
    parser.add_argument(
        "--profile",
        type=Path,
        metavar="DIR",
        help="profile our servers with pyinstrument into DIR (slows them: not for the table)",
    )
    parser.add_argument(
        "--postgres-url",
        default="postgresql://postgres@127.0.0.1:5432/test",
        help="cluster: PostgreSQL database; a schema of random name is created in it and "
        "dropped (default: %(default)s)",
    )
    parser.add_argument(
        "--redis-url",
        default="redis://127.0.0.1:6379/0",
        help="cluster: Redis server; keys get a random prefix (default: %(default)s)",
    )
    return parser


def _sizes_from(arguments: argparse.Namespace) -> Sizes:
    sizes = QUICK_SIZES if arguments.quick else Sizes()
    overrides: dict[str, Any] = {
        "latency_messages": arguments.messages,
        "latency_interval": None if arguments.interval_ms is None else arguments.interval_ms / 1000,
        "throughput_seconds": arguments.seconds,
        "throughput_senders": arguments.senders,
        "fanout_sizes": arguments.fanout_sizes,
        "fanout_rounds": arguments.fanout_rounds,
        "idle_sizes": arguments.idle_sizes,
        "ui_histories": arguments.ui_histories,
        "ui_rounds": arguments.ui_rounds,
    }
    return dataclasses.replace(sizes, **{k: v for k, v in overrides.items() if v is not None})


async def run(
    ctx: Context, keys: Sequence[str], scenario_timeout: float = SCENARIO_TIMEOUT
) -> dict[str, Any]:
    """Run the scenarios ``keys`` in order; return the JSON document of the run."""
    started = datetime.now(UTC)
    load_at_start = load_average()
    results: list[ScenarioResult] = []
    for key in keys:
        ctx.log("scenario %s: start (load average %.2f)", key, load_average()[0])
        results.append(await run_scenario(ctx, key, scenario_timeout))
        ctx.log("scenario %s: %s", key, results[-1].status)
    return {
        "started_at": started.isoformat(),
        "finished_at": datetime.now(UTC).isoformat(),
        "load_average_start": load_at_start,
        "load_average_end": load_average(),
        "machine": machine_facts(),
        "product": product_source(REPO_ROOT),
        "sizes": dataclasses.asdict(ctx.sizes),
        "patches": list(ctx.patches),
        "deflate": ctx.deflate,
        "profiled": ctx.profile_dir is not None,
        "scenarios": [result.to_json() for result in results],
        "table": format_table(results),
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmarks; return the exit status (1 when a scenario failed)."""
    arguments = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    # httpx logs every request at INFO; the progress lines are what matter here.
    logging.getLogger("httpx").setLevel(logging.WARNING)

    keys = arguments.scenario or list(SCENARIOS)
    if {"latency", "throughput"} & set(keys):
        python, detail = find_synapse(arguments.synapse_venv)
        if python is None:
            logging.getLogger("benchmarks").warning(
                "Synapse scenarios will measure our server only: %s. To compare, %s",
                detail,
                INSTALL_HINT,
            )

    workdir = arguments.workdir or Path(tempfile.mkdtemp(prefix="talkjs-bench-"))
    if arguments.profile is not None:
        arguments.profile.mkdir(parents=True, exist_ok=True)
    ctx = Context(
        workdir=workdir,
        sizes=_sizes_from(arguments),
        synapse_venv=arguments.synapse_venv,
        patches=tuple(arguments.patch),
        deflate=arguments.deflate,
        profile_dir=arguments.profile.resolve() if arguments.profile else None,
        database_url=arguments.postgres_url,
        redis_url=arguments.redis_url,
    )
    try:
        document = asyncio.run(run(ctx, keys))
    finally:
        if arguments.workdir is None and not arguments.keep_workdir:
            shutil.rmtree(workdir, ignore_errors=True)

    output = arguments.output or (
        REPO_ROOT / "benchmarks" / "results" / f"results-{time.strftime('%Y%m%d-%H%M%S')}.json"
    )
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(document, indent=2), encoding="utf-8")

    print(document["table"])
    start, end = document["load_average_start"], document["load_average_end"]
    print(
        f"\n{document['machine']['cpu_model']}, {document['machine']['cores']} cores; "
        f"load average {start[0]:.2f} at start, {end[0]:.2f} at end. Results: {output}"
    )
    failed = [s["key"] for s in document["scenarios"] if s["status"] == "failed"]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
