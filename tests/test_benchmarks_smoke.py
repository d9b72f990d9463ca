"""The benchmarks' entry point at toy size: it runs and reports every field, whatever the timing."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from benchmarks.__main__ import run
from benchmarks.context import QUICK_SIZES, Context
from benchmarks.report import format_table

TOY_SIZES = dataclasses.replace(
    QUICK_SIZES, latency_messages=5, warmup_messages=2, fanout_sizes=(3,), fanout_rounds=1
)


async def test_latency_and_fanout_report_structure(tmp_path: Path) -> None:
    # A missing Synapse environment keeps the run short and tests the skip message.
    ctx = Context(tmp_path / "work", TOY_SIZES, synapse_venv=tmp_path / "no-synapse")
    document = await run(ctx, ["latency", "fanout"], scenario_timeout=120)

    for key in ("machine", "product", "load_average_start", "load_average_end", "scenarios"):
        assert key in document
    assert document["machine"]["cores"] >= 1
    assert "talkjs-components" in document["machine"]["packages"]
    latency, fanout = document["scenarios"]
    assert [latency["key"], fanout["key"]] == ["latency", "fanout"]
    assert latency["status"] == "ok", latency["reason"]
    assert fanout["status"] == "ok", fanout["reason"]

    ours = latency["details"]["ours"]
    assert ours["messages"] == 5
    assert ours["delivered"] == 5
    assert ours["delivery_ms"]["count"] == 5
    assert latency["details"]["baseline"] is None
    assert "pip install matrix-synapse" in latency["reason"]

    pair = fanout["details"]["3"]
    for side in ("ours", "baseline"):
        assert pair[side]["receivers"] == 3
        assert pair[side]["incomplete_rounds"] == 0
        assert len(pair[side]["rounds"]) == 2
        assert pair[side]["still_open"] == 3
    assert pair["ours"]["frame_bytes"] == pair["baseline"]["frame_bytes"]

    assert "3 receivers: last has it, p50" in document["table"]
    assert format_table([]).count("\n") == 1
