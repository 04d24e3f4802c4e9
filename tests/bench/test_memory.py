"""The memory report: every Python process held to the target, the private part beside RSS."""

from __future__ import annotations

import os

from bench import memory
from bench.report import Outcome

RATE = {"per_s": 1.5, "by_path_per_s": {"position/get_pending_positions": 0.5}}


def _outcome(idle: dict[str, float]) -> Outcome:
    warm = {"webhook": 110.0, "worker": 100.0}
    loaded = {"webhook": 110.0, "worker": 110.0}
    private = {"idle_warm": {"worker": 60.0}, "loaded": {"worker": 65.0}}
    return memory._outcome(idle, warm, loaded, RATE, RATE, 10, {}, 8.0, 15.0, 10,
                           private=private)


def test_every_python_process_has_an_idle_row_with_a_verdict() -> None:
    idle = {"webhook": 101.0, "worker": 99.0, "paper exchange": 52.0, "dashboard": 120.0,
            "tradewire up": 125.0, "temporal dev server": 300.0}
    rows = {row.metric: row for row in _outcome(idle).rows}
    verdicts = {role: rows[f"{role} RSS idle"].verdict for role in memory.PYTHON_PROCESSES}
    assert verdicts == {"webhook": "MISSED", "worker": "met", "paper exchange": "met",
                        "dashboard": "MISSED", "tradewire up": "MISSED"}
    # Temporal's dev server is a Go program: reported in the details, not held to the target.
    assert "temporal dev server RSS idle" not in rows


def test_a_missing_process_is_reported_not_skipped() -> None:
    rows = {row.metric: row for row in _outcome({"webhook": 90.0}).rows}
    assert rows["dashboard RSS idle"].value == "process not found"


def test_the_per_trade_slopes_rss_and_private() -> None:
    out = _outcome({"webhook": 90.0, "worker": 90.0})
    assert out.details["slope_kib_per_trade"] == {"webhook": 0.0, "worker": 1024.0}
    assert out.details["slope_kib_per_trade_uss"] == {"worker": 512.0}


def test_private_memory_is_part_of_rss() -> None:
    pid = os.getpid()
    private, rss = memory.private_kib(pid), memory.rss_kib(pid)
    assert private is not None and rss is not None
    assert 0 < private <= rss
    assert memory.private_kib(2**22 + 1) is None  # no such process
