"""Percentiles, summaries and the report files."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bench.report import Outcome, Row, document, summary_table, write
from bench.stats import percentile, summary, verdict

samples = st.lists(st.floats(min_value=0, max_value=1e6, allow_nan=False), min_size=1,
                   max_size=200)


def test_percentile_interpolates_between_closest_ranks() -> None:
    assert percentile([4.0, 1.0, 3.0, 2.0], 50) == 2.5
    assert percentile([1.0, 2.0, 3.0, 4.0], 0) == 1.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 100) == 4.0
    assert percentile(list(map(float, range(1, 101))), 99) == pytest.approx(99.01)
    assert percentile([7.0], 99) == 7.0


@pytest.mark.parametrize("bad", [-1, 100.5])
def test_percentile_refuses_a_rank_outside_0_to_100(bad: float) -> None:
    with pytest.raises(ValueError, match="within"):
        percentile([1.0], bad)


def test_percentile_of_nothing_is_an_error() -> None:
    with pytest.raises(ValueError, match="no samples"):
        percentile([], 50)


@given(samples, st.floats(0, 100), st.floats(0, 100))
def test_percentile_is_monotonic_and_within_the_samples(values: list[float], a: float,
                                                        b: float) -> None:
    low, high = sorted((a, b))
    p_low, p_high = percentile(values, low), percentile(values, high)
    ulp = 1e-9 * max(1.0, max(values))  # interpolation in floats may be off by rounding
    assert p_low <= p_high + ulp
    assert min(values) - ulp <= p_low and p_high <= max(values) + ulp


def test_summary_names_the_percentiles_and_rounds() -> None:
    out = summary([1.0, 2.0, 3.0, 4.0, 10.0])
    assert out == {"n": 5, "min": 1.0, "p50": 3.0, "p90": 7.6, "p99": 9.76, "max": 10.0,
                   "mean": 4.0}
    assert summary([]) == {"n": 0}


def test_verdict_is_met_at_or_under_the_target() -> None:
    assert verdict(15.0, 15.0) == "met"
    assert verdict(15.01, 15.0) == "MISSED"


def _outcomes() -> list[Outcome]:
    return [
        Outcome(name="ack", title="4a. Ack", rows=[
            Row("ack p50", "3.0 ms"),
            Row("ack p99", "22.0 ms", "≤ 15 ms", "MISSED"),
        ], details={"ack_ms": {"p99": 22.0}}, notes=["one at a time"]),
        Outcome(name="burst", title="4b. Burst", skipped="failed: no stack"),
    ]


def test_summary_table_has_a_row_per_metric_and_says_what_was_skipped() -> None:
    table = summary_table(_outcomes()).splitlines()
    assert table[2] == "| 4a. Ack | ack p50 | 3.0 ms |  |  |"
    assert table[3] == "|  | ack p99 | 22.0 ms | ≤ 15 ms | MISSED |"
    assert table[4] == "| 4b. Burst | – | skipped: failed: no stack | | |"


def test_write_produces_markdown_and_json_with_the_missed_targets(tmp_path: Path) -> None:
    outcomes = _outcomes()
    doc = document(
        command="make bench", quick=False, started=datetime(2025, 1, 2, 3, 4, tzinfo=UTC),
        duration_s=12.34, machine={"cores": 2}, versions={"temporalio": "1.35.0"},
        settings={"TRADEWIRE_PAPER_RATE_LIMIT_SCALE": "1000"}, notes=["a note"],
        outcomes=outcomes,
    )
    md, js = write(doc, outcomes, tmp_path, stem="2025-01-02")

    assert md.name == "2025-01-02.md" and js.name == "2025-01-02.json"
    text = md.read_text()
    assert "| 4a. Ack | ack p50 | 3.0 ms |  |  |" in text
    assert "TRADEWIRE_PAPER_RATE_LIMIT_SCALE | 1000" in text
    assert "Skipped: failed: no stack" in text
    loaded = json.loads(js.read_text())
    assert loaded["targets_missed"] == ["4a. Ack: ack p99 22.0 ms (target ≤ 15 ms)"]
    assert loaded["results"]["ack"]["details"] == {"ack_ms": {"p99": 22.0}}
    assert loaded["duration_s"] == 12.3
