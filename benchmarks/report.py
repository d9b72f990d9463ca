"""Scenario results: rows of the printed table, and the JSON document of a run."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

__all__ = ["Row", "ScenarioResult", "format_table"]

Status = Literal["ok", "skipped", "failed"]


@dataclass
class Row:
    """One compared number: ours, the baseline's, their ratio, and the goal when there is one.

    ``ratio`` is ``ours / baseline``, so below 1 means ours is smaller
    (faster for times, leaner for bytes); for throughputs above 1 is better.
    """

    metric: str
    unit: str
    ours: float | None
    baseline: float | None = None
    ratio: float | None = None
    goal: str = ""
    met: bool | None = None
    """Whether ``ours`` meets ``goal``; ``None`` when there is no goal or no number."""


@dataclass
class ScenarioResult:
    """The measurements of one scenario, or the reason it did not run."""

    key: str
    """Short name used by ``--scenario``, such as ``latency``."""

    title: str
    ours_label: str
    baseline_label: str
    status: Status = "ok"
    reason: str = ""
    rows: list[Row] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    """Raw summaries per system and size, for the JSON file."""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _number(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit in ("x",):
        return f"{value:.2f}"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def format_table(results: list[ScenarioResult]) -> str:
    """Return the results as a Markdown table, one row per compared number."""
    lines = [
        "| Scenario | Metric | Ours | Baseline | Ours/baseline | Goal | Met |",
        "|---|---|---:|---:|---:|---|---|",
    ]
    for result in results:
        title = f"{result.title} ({result.ours_label} vs {result.baseline_label})"
        if result.status != "ok":
            lines.append(f"| {title} | {result.status}: {result.reason} | | | | | |")
            continue
        for row in result.rows:
            met = ""
            if row.met is not None:
                met = "yes" if row.met else "no"
            ratio = "-" if row.ratio is None else f"{row.ratio:.2f}"
            lines.append(
                f"| {title} | {row.metric} ({row.unit}) | {_number(row.ours, row.unit)} | "
                f"{_number(row.baseline, row.unit)} | {ratio} | {row.goal} | {met} |"
            )
    return "\n".join(lines)
