"""Where `make bench`'s time goes: each step's wall time, charged to its measurement, in the
report; a drain's stall check (a wait for orders that will not come ends once nothing moved);
and a stack start that lost a port race is recognised (bench/stack.py retries it)."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path

from bench.__main__ import Bench, parse_args
from bench.burst import Stillness
from bench.report import Outcome, Row, document, write
from bench.stack import StackError, port_taken
from devstack.ports import PortClaim, busy_message


def test_a_timed_step_is_recorded_and_charged_to_its_measurement(tmp_path: Path) -> None:
    bench = Bench(parse_args([]), tmp_path)
    with bench.timed("stack: start"):
        time.sleep(0.01)
    for _ in range(2):  # a measurement's phases add up
        with bench.timed("4c. flood", "flood"):
            time.sleep(0.01)
    assert list(bench.steps) == ["stack: start", "4c. flood"]
    assert bench.steps["4c. flood"] >= 0.02
    assert set(bench.wall) == {"flood"}  # the shared stack's start is charged to none
    assert bench.wall["flood"] == bench.steps["4c. flood"]


def test_the_runs_beyond_the_deliverables_are_asked_for_with_all(tmp_path: Path) -> None:
    assert "burst" not in Bench(parse_args([]), tmp_path).wanted
    assert "burst" in Bench(parse_args(["--all"]), tmp_path).wanted
    assert Bench(parse_args(["--only", "burst"]), tmp_path).wanted == {"burst"}
    assert {"candle_close", "cost", "two_workers", "memory", "close_many"} <= Bench(
        parse_args([]), tmp_path).wanted


def test_the_report_says_each_measurements_wall_time_and_where_the_time_went(
        tmp_path: Path) -> None:
    outcomes = [Outcome(name="floor", title="1. Floor", rows=[Row("p50", "1 ms")],
                        wall_s=3.2)]
    doc = document(command="make bench", quick=False,
                   started=datetime(2026, 12, 7, tzinfo=UTC), duration_s=20.0, machine={},
                   versions={}, settings={}, notes=[], outcomes=outcomes,
                   steps={"stack (fast path on): start": 12.04, "1. Floor": 3.2})
    md, js = write(doc, outcomes, tmp_path, stem="t")
    loaded = json.loads(js.read_text())
    assert loaded["results"]["floor"]["wall_s"] == 3.2
    assert loaded["wall_s"] == {"stack (fast path on): start": 12.0, "1. Floor": 3.2}
    text = md.read_text()
    assert "| stack (fast path on): start | 12.0 s | 60 % |" in text
    assert "## 1. Floor\n\nWall time: 3.2 s\n" in text


def test_a_port_taken_before_up_bound_it_is_recognised() -> None:
    busy = busy_message(PortClaim(port=8123, field="webhook_port", owner="the webhook"))
    assert port_taken(StackError(f"`tradewire up` exited with 1; its log:\n{busy}"))
    assert port_taken(StackError("OSError: [Errno 98] error while attempting to bind on "
                                 "address ('127.0.0.1', 8123): address already in use"))
    assert not port_taken(StackError("`tradewire up` was not up within 180 s"))


def test_stillness_counts_from_the_last_change_of_what_is_observed() -> None:
    still = Stillness()
    assert still.still_for((3, "ENTERING"), 100.0) == 0.0
    assert still.still_for((3, "ENTERING"), 130.0) == 30.0
    assert still.still_for((4, "ENTERING"), 131.0) == 0.0  # a place_order came: it moved
    assert still.still_for((4, "ENTERING"), 150.0) == 19.0
    assert still.still_for((4, "REFUSED"), 151.0) == 0.0  # a status changed
