"""The scenarios as the command line runs them: servers, sizes, goals and table rows."""

from __future__ import annotations

import asyncio
import logging
import secrets
import subprocess
import sys
import traceback
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

from .context import Context
from .machine import raise_file_limit
from .processes import python_path_environment
from .report import Row, ScenarioResult
from .scenarios import fanout, idle, messaging
from .stats import ratio
from .synapse import INSTALL_HINT, SynapseServer, find_synapse, serving_synapse
from .talk_server import TalkServer, serving_talk

__all__ = ["SCENARIOS", "cluster_support", "run_scenario"]

logger = logging.getLogger("benchmarks")

KB = 1024
LATENCY_P99_GOAL_MS = 5.0
LATENCY_P50_GOAL_RATIO = 0.1
"""Ours over Synapse's p50: at least ten times faster."""
THROUGHPUT_GOAL = 5000.0
"""Messages per second persisted with 8 senders."""
FANOUT_GOAL_RATIO = 1.5
IDLE_GOAL_BYTES = 50 * KB
UI_BYTES_GOAL = 8 * KB
UI_VISIBLE_GOAL_MS = 100.0


def _value(summary: dict[str, Any], key: str) -> float | None:
    value = summary.get(key)
    return float(value) if isinstance(value, int | float) else None


@asynccontextmanager
async def _talk(ctx: Context, name: str, **options: Any) -> AsyncIterator[TalkServer]:
    profile = ctx.profile_dir / f"{name}.txt" if ctx.profile_dir is not None else None
    async with serving_talk(
        ctx.folder(name), name, patches=ctx.patches, deflate=ctx.deflate, profile=profile, **options
    ) as server:
        yield server


@asynccontextmanager
async def _synapse(ctx: Context, name: str) -> AsyncIterator[SynapseServer | None]:
    python, detail = find_synapse(ctx.synapse_venv)
    if python is None:
        yield None
        return
    async with serving_synapse(ctx.folder(name), python, detail.split()[0]) as server:
        yield server


def _synapse_missing(ctx: Context) -> str:
    python, detail = find_synapse(ctx.synapse_venv)
    return "" if python is not None else f"Synapse not measured ({detail}): {INSTALL_HINT}"


# -- a. latency ---------------------------------------------------------------------------


async def run_latency(ctx: Context) -> ScenarioResult:
    sizes = ctx.sizes
    messages, interval = sizes.latency_messages, sizes.latency_interval
    warmup = sizes.warmup_messages
    result = ScenarioResult(
        "latency",
        f"a. Send-to-delivery latency, {sizes.latency_messages} messages "
        f"{sizes.latency_interval * 1000:g} ms apart",
        "ours (SQLite)",
        "Synapse (SQLite)",
    )
    ctx.log("latency: our server")
    async with _talk(ctx, "latency-talk") as server:
        ours = await messaging.talk_latency(
            server, server, messages=messages, interval=interval, warmup=warmup
        )
    theirs: dict[str, Any] | None = None
    async with _synapse(ctx, "latency-synapse") as synapse:
        if synapse is not None:
            ctx.log("latency: Synapse %s", synapse.version)
            theirs = await messaging.synapse_latency(
                synapse, messages=messages, interval=interval, warmup=warmup
            )
            result.baseline_label = f"Synapse {synapse.version} (SQLite)"
    result.reason = _synapse_missing(ctx)
    result.details = {"ours": ours, "baseline": theirs}
    _latency_rows(result, ours, theirs)
    return result


def _latency_rows(
    result: ScenarioResult, ours: dict[str, Any], theirs: dict[str, Any] | None
) -> None:
    for key in ("p50", "p95", "p99"):
        mine = _value(ours["delivery_ms"], key)
        other = _value(theirs["delivery_ms"], key) if theirs else None
        row = Row(f"delivery {key}", "ms", mine, other, ratio(mine, other))
        if key == "p99":
            row.goal = f"<= {LATENCY_P99_GOAL_MS:g} ms"
            row.met = None if mine is None else mine <= LATENCY_P99_GOAL_MS
        if key == "p50" and theirs is not None:
            row.goal = f"ratio <= {LATENCY_P50_GOAL_RATIO:g}"
            row.met = None if row.ratio is None else row.ratio <= LATENCY_P50_GOAL_RATIO
        result.rows.append(row)
    mine = _value(ours["send_response_ms"], "p50")
    other = _value(theirs["send_response_ms"], "p50") if theirs else None
    result.rows.append(Row("send response p50", "ms", mine, other, ratio(mine, other)))
    delivered = float(ours["delivered"])
    other_delivered = float(theirs["delivered"]) if theirs else None
    result.rows.append(Row("messages delivered", "count", delivered, other_delivered))


# -- b. throughput ---------------------------------------------------------------------------


async def run_throughput(ctx: Context) -> ScenarioResult:
    sizes = ctx.sizes
    result = ScenarioResult(
        "throughput",
        f"b. Throughput, {sizes.throughput_seconds:g} s per sender count",
        "ours (SQLite)",
        "Synapse (SQLite)",
    )
    ours: dict[str, Any] = {}
    theirs: dict[str, Any] = {}
    async with _talk(ctx, "throughput-talk") as server:
        for senders in sizes.throughput_senders:
            ctx.log("throughput: our server, %d senders", senders)
            ours[str(senders)] = await messaging.talk_throughput(
                [server],
                senders=senders,
                seconds=sizes.throughput_seconds,
                warmup=sizes.warmup_messages,
            )
    async with _synapse(ctx, "throughput-synapse") as synapse:
        if synapse is not None:
            result.baseline_label = f"Synapse {synapse.version} (SQLite)"
            for senders in sizes.throughput_senders:
                ctx.log("throughput: Synapse, %d senders", senders)
                theirs[str(senders)] = await messaging.synapse_throughput(
                    synapse,
                    senders=senders,
                    seconds=sizes.throughput_seconds,
                    warmup=sizes.warmup_messages,
                )
    result.reason = _synapse_missing(ctx)
    result.details = {"ours": ours, "baseline": theirs or None}
    _throughput_rows(result, ours, theirs)
    return result


def _throughput_rows(result: ScenarioResult, ours: dict[str, Any], theirs: dict[str, Any]) -> None:
    for senders, summary in ours.items():
        mine = float(summary["messages_per_second"])
        other_summary = theirs.get(senders)
        other = float(other_summary["messages_per_second"]) if other_summary else None
        label = "1 sender" if senders == "1" else f"{senders} senders"
        row = Row(label, "msg/s", mine, other, ratio(mine, other))
        if senders == "8":
            row.goal = f">= {THROUGHPUT_GOAL:,.0f} msg/s"
            row.met = mine >= THROUGHPUT_GOAL
        result.rows.append(row)
        mine_p50 = _value(summary["send_response_ms"], "p50")
        other_p50 = _value(other_summary["send_response_ms"], "p50") if other_summary else None
        result.rows.append(
            Row(
                f"{label}: send response p50",
                "ms",
                mine_p50,
                other_p50,
                ratio(mine_p50, other_p50),
            )
        )


# -- c. fan-out ---------------------------------------------------------------------------------


def _file_limit_for(connections: int) -> tuple[bool, str]:
    """Raise the open-file limit for ``connections`` clients plus slack; report whether it fits."""
    needed = connections + 500
    soft, hard = raise_file_limit(needed)
    if soft < needed:
        return False, (
            f"{connections} connections need about {needed} open files in this process, but "
            f"RLIMIT_NOFILE is {soft} (hard limit {hard}): raise the hard limit (ulimit -Hn)"
        )
    return True, ""


async def _fanout_pair(
    ctx: Context, servers: list[TalkServer], receivers: int, name: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    rounds = ctx.sizes.fanout_rounds
    ctx.log("fan-out: %s, %d receivers", name, receivers)
    ours, sample, marker = await fanout.talk_fanout(servers, receivers=receivers, rounds=rounds)
    broadcast = fanout.serving_broadcast(ctx.folder(f"{name}-broadcast"), deflate=ctx.deflate)
    async with broadcast as (_, url):
        ctx.log("fan-out: raw websockets.broadcast, %d receivers", receivers)
        raw = await fanout.broadcast_fanout(
            url, receivers=receivers, rounds=rounds, payload=sample, placeholder=marker
        )
    return ours, raw


def _fanout_rows(
    result: ScenarioResult, size: int, ours: dict[str, Any], raw: dict[str, Any]
) -> None:
    for key in ("p50", "p95"):
        mine, other = _value(ours["last_ms"], key), _value(raw["last_ms"], key)
        row = Row(f"{size} receivers: last has it, {key}", "ms", mine, other, ratio(mine, other))
        if size >= 1000 and key == "p50":
            row.goal = f"ratio <= {FANOUT_GOAL_RATIO:g}"
            row.met = None if row.ratio is None else row.ratio <= FANOUT_GOAL_RATIO
        result.rows.append(row)
    mine, other = _value(ours["first_ms"], "p50"), _value(raw["first_ms"], "p50")
    result.rows.append(
        Row(f"{size} receivers: first has it, p50", "ms", mine, other, ratio(mine, other))
    )
    result.rows.append(
        Row(
            f"{size} receivers: frame size",
            "bytes",
            float(ours["frame_bytes"]),
            float(raw["frame_bytes"]),
        )
    )


async def run_fanout(ctx: Context) -> ScenarioResult:
    sizes = ctx.sizes.fanout_sizes
    result = ScenarioResult(
        "fanout",
        f"c. Fan-out of one message, {ctx.sizes.fanout_rounds} rounds per size",
        "ours (SQLite)",
        "raw websockets.broadcast",
    )
    details: dict[str, Any] = {}
    notes: list[str] = []
    for size in sizes:
        fits, reason = _file_limit_for(size)
        if not fits:
            notes.append(reason)
            continue
        async with _talk(ctx, f"fanout-{size}-talk") as server:
            ours, raw = await _fanout_pair(ctx, [server], size, f"fanout-{size}")
        details[str(size)] = {"ours": ours, "baseline": raw}
        _fanout_rows(result, size, ours, raw)
    result.details = details
    result.reason = "; ".join(notes)
    return result


# -- d. idle sessions ---------------------------------------------------------------------------


async def run_idle(ctx: Context) -> ScenarioResult:
    sizes = sorted(ctx.sizes.idle_sizes)
    result = ScenarioResult(
        "idle",
        "d. Server memory per idle session (RSS growth / sessions)",
        "ours (SQLite)",
        "raw websockets server",
    )
    fits, reason = _file_limit_for(sizes[-1])
    if not fits:
        result.status, result.reason = "skipped", reason
        return result

    async with _talk(ctx, "idle-talk") as server:
        ctx.log("idle: our server, up to %d sessions", sizes[-1])
        warm = await idle.talk_receivers(server, idle.WARM_SESSIONS)
        receivers = await idle.talk_receivers(server, sizes[-1])
        ours = await idle.measure_idle(server.process, sizes, warm, receivers)

    report = ctx.folder("idle-tracemalloc") / "tracemalloc.jsonl"
    async with serving_talk(
        ctx.folder("idle-tracemalloc"),
        "idle-tracemalloc",
        patches=ctx.patches,
        deflate=ctx.deflate,
        tracemalloc=report,
    ) as server:
        ctx.log("idle: our server with tracemalloc, %d sessions", sizes[0])
        traced = await idle.tracemalloc_growth(server, report, sizes[0])

    broadcast = fanout.serving_broadcast(ctx.folder("idle-broadcast"), deflate=ctx.deflate)
    async with broadcast as (process, url):
        ctx.log("idle: raw websockets server, up to %d connections", sizes[-1])
        baseline = await idle.measure_idle(
            process, sizes, idle.warm_receivers(url), idle.warm_receivers(url, sizes[-1])
        )

    result.details = {"ours": ours, "ours_tracemalloc": traced, "baseline": baseline}
    for mine, other in zip(ours["readings"], baseline["readings"], strict=True):
        mine_kb = mine["bytes_per_session"] / KB
        other_kb = other["bytes_per_session"] / KB
        result.rows.append(
            Row(
                f"{mine['sessions']} sessions ({mine['open']} open)",
                "KiB/session",
                mine_kb,
                other_kb,
                ratio(mine_kb, other_kb),
                f"<= {IDLE_GOAL_BYTES // KB} KiB",
                mine["bytes_per_session"] <= IDLE_GOAL_BYTES,
            )
        )
    result.rows.append(
        Row(
            f"{traced['sessions']} sessions, tracemalloc",
            "KiB/session",
            traced["traced_bytes_per_session"] / KB,
        )
    )
    return result


# -- e. UI ----------------------------------------------------------------------------------------


async def run_ui(ctx: Context) -> ScenarioResult:
    from .scenarios import ui

    histories = sorted(ctx.sizes.ui_histories)
    largest, smallest = str(histories[-1]), str(histories[0])
    result = ScenarioResult(
        "ui",
        f"e. UI: REST send to visible in Chromium, {ctx.sizes.ui_rounds} rounds",
        f"{int(largest):,} messages on screen",
        f"{int(smallest):,} messages on screen",
    )
    async with (
        _talk(ctx, "ui-talk") as server,
        ui.serving_ui_app(ctx.folder("ui-app"), server) as url,
    ):
        ctx.log("ui: Chromium, histories %s", histories)
        measured = await ui.measure_ui(server, url, histories, ctx.sizes.ui_rounds)
    result.details = measured
    big, small = measured[largest], measured[smallest]
    mine, other = _value(big["frame_in_page_ms"], "p50"), _value(small["frame_in_page_ms"], "p50")
    result.rows.append(Row("frame in page p50", "ms", mine, other, ratio(mine, other)))
    for key, goal in (("p50", None), ("p95", UI_VISIBLE_GOAL_MS)):
        mine, other = _value(big["visible_ms"], key), _value(small["visible_ms"], key)
        row = Row(f"visible {key}", "ms", mine, other, ratio(mine, other))
        if goal is not None:
            row.goal, row.met = f"<= {goal:g} ms", mine is not None and mine <= goal
        result.rows.append(row)
    for key, label in (
        ("update_bytes", "bytes per update"),
        ("largest_frame_bytes", "largest frame"),
    ):
        mine, other = _value(big[key], "p50"), _value(small[key], "p50")
        row = Row(f"{label} p50", "bytes", mine, other, ratio(mine, other))
        if key == "update_bytes":
            row.goal, row.met = (
                f"<= {UI_BYTES_GOAL // KB} KiB",
                mine is not None and mine <= UI_BYTES_GOAL,
            )
        result.rows.append(row)
    mine, other = _value(big["update_bytes"], "p95"), _value(small["update_bytes"], "p95")
    result.rows.append(Row("bytes per update p95", "bytes", mine, other, ratio(mine, other)))
    # Opening the page and scrolling up page by page until the whole history shows.
    for key, label, unit in (
        ("seconds", "open with all history shown", "s"),
        ("frames", "frames to open", "count"),
        ("bytes", "bytes to open", "bytes"),
    ):
        mine, other = _value(big["open"], key), _value(small["open"], key)
        result.rows.append(Row(label, unit, mine, other, ratio(mine, other)))
    return result


# -- f. cluster -------------------------------------------------------------------------------


def cluster_support() -> str:
    """Return why ``serve`` cannot run the cluster scenario, or ``""`` when it can."""
    completed = subprocess.run(
        [sys.executable, "-m", "talkjs_components.cli", "serve", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**python_path_environment()},
        cwd="/",
    )
    help_text = completed.stdout
    if completed.returncode != 0:
        return f"'talkjs-components serve --help' failed: {completed.stderr.strip()[-300:]}"
    missing = [option for option in ("--broker",) if option not in help_text]
    if "postgres" not in help_text:
        missing.append("postgresql:// in --database")
    if missing:
        return "'talkjs-components serve' does not accept " + " and ".join(missing) + " yet"
    return ""


async def _delete_redis_keys(url: str, prefix: str) -> int:
    """Delete the keys whose names start with ``prefix``; return how many there were."""
    import redis.asyncio

    client = redis.asyncio.from_url(url)
    try:
        keys = [key async for key in client.scan_iter(match=f"{prefix}*", count=1000)]
        if keys:
            await client.delete(*keys)
        return len(keys)
    finally:
        await client.aclose()


@asynccontextmanager
async def _postgres_schema(url: str) -> AsyncIterator[str]:
    """Create a schema of random name, migrate it and yield its URL; drop it at exit."""
    import asyncpg

    from talkjs_components.store.postgres import migrate

    schema = f"bench_{secrets.token_hex(4)}"
    connection = await asyncpg.connect(url)
    try:
        await connection.execute(f"CREATE SCHEMA {schema}")
        separator = "&" if "?" in url else "?"
        schema_url = f"{url}{separator}search_path={schema}"
        await migrate(schema_url)
        yield schema_url
    finally:
        await connection.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        await connection.close()


async def run_cluster(ctx: Context) -> ScenarioResult:
    result = ScenarioResult(
        "cluster",
        "f. Two nodes on PostgreSQL + Redis: a, b and c",
        "ours (2 nodes, PostgreSQL + Redis)",
        "the baselines of a, b and c",
    )
    reason = cluster_support()
    if not reason and (ctx.database_url is None or ctx.redis_url is None):
        reason = "needs --postgres-url and --redis-url"
    if reason:
        result.status, result.reason = "skipped", reason
        return result
    assert ctx.database_url is not None and ctx.redis_url is not None
    # A random prefix keeps this run's Redis channels and keys apart from everyone else's.
    prefix = f"bench-{secrets.token_hex(4)}"
    details: dict[str, Any] = {}
    try:
        await _measure_cluster(ctx, prefix, details, result)
    finally:
        details["redis_keys_deleted"] = await _delete_redis_keys(ctx.redis_url, prefix)
    result.details = details
    _latency_rows(result, details["latency"], None)
    _throughput_rows(result, details["throughput"], {})
    for size, pair in details["fanout"].items():
        _fanout_rows(result, int(size), pair["ours"], pair["baseline"])
    result.reason = (result.reason + " " if result.reason else "") + (
        "Synapse columns: see a and b; the fan-out baseline ran in this scenario."
    )
    return result


async def _measure_cluster(
    ctx: Context, prefix: str, details: dict[str, Any], result: ScenarioResult
) -> None:
    """Run a, b and c on two nodes sharing a new PostgreSQL schema and Redis; fill ``details``."""
    assert ctx.database_url is not None and ctx.redis_url is not None
    sizes = ctx.sizes
    async with _postgres_schema(ctx.database_url) as database, AsyncExitStack() as stack:
        nodes = [
            await stack.enter_async_context(
                _talk(
                    ctx,
                    f"cluster-node{number}",
                    database=database,
                    extra_arguments=["--broker", ctx.redis_url],
                    config_keys=f'broker_prefix = "{prefix}"',
                )
            )
            for number in (1, 2)
        ]
        ctx.log("cluster: latency, sender on node 1 and receiver on node 2")
        details["latency"] = await messaging.talk_latency(
            nodes[0],
            nodes[1],
            messages=sizes.latency_messages,
            interval=sizes.latency_interval,
            warmup=sizes.warmup_messages,
        )
        details["throughput"] = {}
        for senders in sizes.throughput_senders:
            ctx.log("cluster: throughput, %d senders over both nodes", senders)
            details["throughput"][str(senders)] = await messaging.talk_throughput(
                nodes,
                senders=senders,
                seconds=sizes.throughput_seconds,
                warmup=sizes.warmup_messages,
            )
        details["fanout"] = {}
        for size in sizes.fanout_sizes:
            fits, note = _file_limit_for(size)
            if not fits:
                result.reason = note
                continue
            ours, raw = await _fanout_pair(ctx, nodes, size, f"cluster-fanout-{size}")
            details["fanout"][str(size)] = {"ours": ours, "baseline": raw}


ScenarioRunner = Callable[[Context], Awaitable[ScenarioResult]]

SCENARIOS: dict[str, ScenarioRunner] = {
    "latency": run_latency,
    "throughput": run_throughput,
    "fanout": run_fanout,
    "idle": run_idle,
    "ui": run_ui,
    "cluster": run_cluster,
}
"""Scenario runners by ``--scenario`` name, in the order a full run takes them."""


async def run_scenario(ctx: Context, key: str, timeout: float) -> ScenarioResult:
    """Run one scenario within ``timeout`` seconds; a failure becomes a ``failed`` result."""
    try:
        async with asyncio.timeout(timeout):
            return await SCENARIOS[key](ctx)
    except Exception as exc:
        logger.error("scenario %s failed:\n%s", key, traceback.format_exc())
        return ScenarioResult(
            key, key, "ours", "baseline", status="failed", reason=f"{type(exc).__name__}: {exc}"
        )
