"""Benchmark outcomes and the report: bench/results/<date>.md and .json.

Each measurement returns an Outcome: summary rows (metric, value, target, verdict) for the
table, details for the JSON, and notes (what was raised, what was skipped and why, where the
time went when a target was missed).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

RESULTS_DIR = Path(__file__).resolve().parent / "results"


@dataclass
class Row:
    metric: str
    value: str
    target: str = ""
    verdict: str = ""  # "met", "MISSED" or "" (no target)


@dataclass
class Outcome:
    name: str
    title: str
    rows: list[Row] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    skipped: str | None = None  # why it did not run
    # Wall-clock seconds the measurement took, its own stacks' start and stop included (the
    # shared stack's start is a step of its own in the document's `wall_s`).
    wall_s: float | None = None  # float-ok: seconds

    @property
    def missed(self) -> list[Row]:
        return [r for r in self.rows if r.verdict == "MISSED"]


def ms(value: float) -> str:  # float-ok: milliseconds
    return f"{value:.1f} ms"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def summary_table(outcomes: list[Outcome]) -> str:
    lines = ["| measurement | metric | value | target | verdict |", "|---|---|---|---|---|"]
    for outcome in outcomes:
        if outcome.skipped:
            lines.append(f"| {_cell(outcome.title)} | – | skipped: {_cell(outcome.skipped)} | | |")
            continue
        for i, row in enumerate(outcome.rows):
            title = outcome.title if i == 0 else ""
            lines.append(
                f"| {_cell(title)} | {_cell(row.metric)} | {_cell(row.value)} | "
                f"{_cell(row.target)} | {row.verdict} |"
            )
    return "\n".join(lines)


def _kv_table(pairs: dict[str, Any]) -> str:
    lines = ["| | |", "|---|---|"]
    lines += [f"| {_cell(str(k))} | {_cell(str(v))} |" for k, v in pairs.items()]
    return "\n".join(lines)


def steps_table(steps: dict[str, float], total_s: float) -> str:  # float-ok: seconds
    """Each timed step of the run (measurements, stack starts and stops) with its wall-clock
    seconds and its share of the run's total, in the order they ended (the precision fuzz runs
    beside the first stack's start, so the shares may add up to a little more than 100 %)."""
    total = total_s or 1.0
    lines = ["| step | wall time | share of the total |", "|---|---|---|"]
    lines += [f"| {_cell(step)} | {s:.1f} s | {100 * s / total:.0f} % |"
              for step, s in steps.items()]
    return "\n".join(lines)


def render_markdown(doc: dict[str, Any], outcomes: list[Outcome]) -> str:
    parts = [
        f"# Tradewire benchmarks — {doc['date']}",
        "",
        f"Command: `{doc['command']}`" + (" (quick mode: small samples)" if doc["quick"] else ""),
        f"Total time: {doc['duration_s']} s",
        "",
        "## Results",
        "",
        summary_table(outcomes),
        "",
    ]
    if doc.get("wall_s"):
        parts += ["## Where the time went", "", steps_table(doc["wall_s"], doc["duration_s"]), ""]
    parts += [
        "## Machine",
        "",
        _kv_table(doc["machine"]),
        "",
        "## Versions",
        "",
        _kv_table(doc["versions"]),
        "",
        "## Settings raised for the benchmark",
        "",
        _kv_table(doc["settings"]),
        "",
    ]
    parts += [f"- {note}" for note in doc.get("notes", [])]
    for outcome in outcomes:
        parts += ["", f"## {outcome.title}", ""]
        if outcome.wall_s is not None:
            parts += [f"Wall time: {outcome.wall_s:.1f} s", ""]
        if outcome.skipped:
            parts.append(f"Skipped: {outcome.skipped}")
            continue
        parts += [f"- {note}" for note in outcome.notes]
        if outcome.details:
            parts += ["", "```json", json.dumps(outcome.details, indent=2, default=str), "```"]
    return "\n".join(parts) + "\n"


def document(
    *,
    command: str,
    quick: bool,
    started: datetime,
    duration_s: float,  # float-ok: seconds
    machine: dict[str, Any],
    versions: dict[str, Any],
    settings: dict[str, Any],
    notes: list[str],
    outcomes: list[Outcome],
    steps: dict[str, float] | None = None,  # float-ok: seconds
) -> dict[str, Any]:
    return {
        "date": started.strftime("%Y-%m-%d %H:%M UTC"),
        "command": command,
        "quick": quick,
        "duration_s": round(duration_s, 1),
        # step → wall-clock seconds, in the order run (where `duration_s` went)
        "wall_s": {step: round(s, 1) for step, s in (steps or {}).items()},
        "machine": machine,
        "versions": versions,
        "settings": settings,
        "notes": notes,
        "targets_missed": [
            f"{o.title}: {r.metric} {r.value} (target {r.target})"
            for o in outcomes for r in o.missed
        ],
        "results": {o.name: asdict(o) for o in outcomes},
    }


def write(doc: dict[str, Any], outcomes: list[Outcome], out_dir: Path = RESULTS_DIR,
          *, stem: str | None = None) -> tuple[Path, Path]:
    """Write <stem>.md and <stem>.json (stem: the UTC date, `-quick` for quick runs)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    if stem is None:
        stem = datetime.now(UTC).strftime("%Y-%m-%d") + ("-quick" if doc["quick"] else "")
    md, js = out_dir / f"{stem}.md", out_dir / f"{stem}.json"
    md.write_text(render_markdown(doc, outcomes), encoding="utf-8")
    js.write_text(json.dumps(doc, indent=2, default=str) + "\n", encoding="utf-8")
    return md, js
