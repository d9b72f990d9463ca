"""Run ``talkjs-components serve`` with a profiler, tracemalloc, or a prototype patch.

Usage: ``python -m benchmarks.serve_variant [OPTIONS] -- serve --port ...``.
Everything after ``--`` goes to ``talkjs_components.cli.main`` unchanged.
The patches are prototypes of optimizations, applied to this process only,
so a benchmark can measure their effect before anyone changes the product.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import re
import signal
import sys
import tracemalloc
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType
from typing import Any

__all__ = ["PATCHES", "main"]


def _group_commit() -> None:
    """Commit the writes that queue up while one commit runs together, in one transaction.

    Each write still runs in a SAVEPOINT of its own, so a write that raises
    rolls back alone and gets its exception; the others commit. Every caller
    gets its result only after the shared COMMIT, and writes run in arrival
    order, so event numbers stay in commit order. Reads are unchanged.
    """
    import sqlite3

    from talkjs_components.errors import StorageError
    from talkjs_components.store import sqlite as store_module

    original_run = store_module.SQLiteStore._run
    Work = Callable[[Any], Any]

    def run_batch(database: Any, works: list[Work]) -> list[tuple[bool, Any]]:
        connection = database.connection
        outcomes: list[tuple[bool, Any]] = []
        connection.execute("BEGIN IMMEDIATE")
        try:
            for work in works:
                connection.execute("SAVEPOINT bench_write")
                try:
                    outcomes.append((True, work(database)))
                except Exception as exc:
                    connection.execute("ROLLBACK TO bench_write")
                    outcomes.append((False, exc))
                connection.execute("RELEASE bench_write")
            connection.execute("COMMIT")
        except BaseException:
            if connection.in_transaction:
                connection.execute("ROLLBACK")
            raise
        return outcomes

    async def flush(store: Any) -> None:
        loop = asyncio.get_running_loop()
        while store._bench_pending:
            batch, store._bench_pending = store._bench_pending, []
            works = [work for work, _ in batch]
            try:
                outcomes = await loop.run_in_executor(
                    store._executor, run_batch, store._database, works
                )
            except BaseException as exc:
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for (_, future), (succeeded, value) in zip(batch, outcomes, strict=True):
                if succeeded:
                    future.set_result(value)
                elif isinstance(value, sqlite3.Error):
                    future.set_exception(StorageError(f"SQLite write failed: {value}"))
                else:
                    future.set_exception(value)
        store._bench_flushing = None

    async def run(self: Any, operation: str, work: Work, *, write: bool) -> Any:
        if not write or self._database is None:
            return await original_run(self, operation, work, write=write)
        if not hasattr(self, "_bench_pending"):
            self._bench_pending, self._bench_flushing = [], None
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._bench_pending.append((work, future))
        if self._bench_flushing is None:
            self._bench_flushing = asyncio.ensure_future(flush(self))
        return await future

    store_module.SQLiteStore._run = run  # type: ignore[method-assign]


def _log_send_timing() -> None:
    """Log to stderr where the time of each message send goes, in milliseconds.

    A diagnostic: for every ``send_message`` call, how long the call took, and
    when the broker handed its event to the service and how long the
    dispatch to every listener (the fan-out) took, both from the call's start.
    """
    import time

    from talkjs_components.service import ChatService

    original_send = ChatService.send_message
    original_deliver = ChatService._on_broker_payload
    last_call: list[float] = [0.0]

    def log(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    async def send_message(self: ChatService, *args: Any, **kwargs: Any) -> Any:
        started = last_call[0] = time.perf_counter()
        message = await original_send(self, *args, **kwargs)
        log(f"send: call took {(time.perf_counter() - started) * 1000:.1f} ms")
        return message

    def on_broker_payload(self: ChatService, payload: bytes) -> None:
        delivered = time.perf_counter()
        original_deliver(self, payload)
        finished = time.perf_counter()
        kind = re.search(rb'"type":"([a-z_]+)"', payload)
        log(
            f"send: dispatch of {kind[1].decode() if kind else 'an event'} began at "
            f"{(delivered - last_call[0]) * 1000:.1f} ms and took "
            f"{(finished - delivered) * 1000:.1f} ms"
        )

    ChatService.send_message = send_message  # type: ignore[method-assign]
    ChatService._on_broker_payload = on_broker_payload  # type: ignore[method-assign]


PATCHES: dict[str, Callable[[], None]] = {
    "group-commit": _group_commit,
    "log-send-timing": _log_send_timing,
}
"""Prototype optimizations and one diagnostic (``log-send-timing``) by name.

``--patch NAME`` applies one; several may be combined.
"""


def _start_tracemalloc(output: Path) -> None:
    """Trace allocations; each SIGUSR1 appends traced memory and the growth since the last one."""
    tracemalloc.start(1)
    previous: list[tracemalloc.Snapshot] = []

    def report(signal_number: int, frame: FrameType | None) -> None:
        current, peak = tracemalloc.get_traced_memory()
        snapshot = tracemalloc.take_snapshot().filter_traces(
            [tracemalloc.Filter(False, tracemalloc.__file__)]
        )
        top: list[dict[str, object]] = []
        if previous:
            for stat in snapshot.compare_to(previous[-1], "lineno")[:15]:
                place = stat.traceback[0]
                top.append(
                    {
                        "place": f"{place.filename}:{place.lineno}",
                        "size_diff": stat.size_diff,
                        "count_diff": stat.count_diff,
                    }
                )
        previous[:] = [snapshot]
        record = {"traced_bytes": current, "peak_bytes": peak, "growth": top}
        with output.open("a", encoding="utf-8") as file:
            file.write(json.dumps(record) + "\n")

    signal.signal(signal.SIGUSR1, report)


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the options before ``--``, then run the CLI with the arguments after it."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    if "--" not in arguments:
        print("serve_variant: put the CLI arguments after '--'", file=sys.stderr)
        return 2
    split = arguments.index("--")
    parser = argparse.ArgumentParser(prog="python -m benchmarks.serve_variant")
    parser.add_argument("--patch", action="append", default=[], choices=sorted(PATCHES))
    parser.add_argument("--profile", type=Path, help="write a pyinstrument text profile here")
    parser.add_argument("--tracemalloc", type=Path, help="append tracemalloc reports here")
    options = parser.parse_args(arguments[:split])

    for name in options.patch:
        PATCHES[name]()
    if options.tracemalloc is not None:
        _start_tracemalloc(options.tracemalloc)

    from talkjs_components import cli

    if options.profile is None:
        return cli.main(arguments[split + 1 :])

    # Imported by name so that type checking passes without the bench extra.
    Profiler: Any = importlib.import_module("pyinstrument").Profiler
    # Samples every 1 ms, of the event loop's thread only. Time spent on the
    # SQLite worker thread shows up as the await that waits for it.
    profiler = Profiler(interval=0.001, async_mode="disabled")
    profiler.start()
    try:
        return cli.main(arguments[split + 1 :])
    finally:
        profiler.stop()
        options.profile.write_text(
            profiler.output_text(unicode=False, color=False, show_all=False), encoding="utf-8"
        )
        # The same profile with the frames of libraries (uvicorn, websockets) shown.
        options.profile.with_suffix(".all.txt").write_text(
            profiler.output_text(unicode=False, color=False, show_all=True), encoding="utf-8"
        )


if __name__ == "__main__":
    sys.exit(main())
