"""The cost measurement's own pieces: reading CPU ticks from /proc, summing a process tree
(exited children included), ticks → ms per trade, and counting a workflow's history (the
measurement itself runs in `make bench`)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from bench.cost import (
    TARGET_MS,
    TICKS_PER_S,
    _all_stats,
    background_ms_per_trade,
    history_counts,
    outcome,
    per_trade_ms,
    postmaster_pid,
    stat_ticks,
    tree_ticks,
)


def test_a_stat_line_gives_the_parent_and_the_own_and_waited_for_ticks() -> None:
    # proc(5): pid (comm) state ppid … utime(14) stime(15) cutime(16) cstime(17) …; the
    # command may hold spaces and parentheses.
    line = "4242 (postgres: a (b) c) S 17 4242 4242 0 -1 4194560 100 0 0 0 30 12 7 5 20 0 1"
    assert stat_ticks(line) == (17, 42, 12)


def test_a_tree_counts_every_descendant_and_nothing_beside_it() -> None:
    stats = {
        1: (0, 1000, 0),  # not below the root
        10: (1, 5, 40),  # the root: its own and its exited children's
        11: (10, 7, 0),
        12: (11, 3, 1),  # a grandchild
        20: (1, 999, 0),  # a sibling of the root
    }
    assert tree_ticks(stats, 10) == 5 + 40 + 7 + 3 + 1
    assert tree_ticks(stats, 99) == 0  # gone: nothing


def test_a_child_that_exits_still_counts_through_its_parent() -> None:
    """A PostgreSQL backend that exits during the window must not take its CPU with it: the
    parent's cutime has it once the child was waited for."""
    before = tree_ticks(_all_stats(), os.getpid())
    subprocess.run([sys.executable, "-c", "x = 0\nfor i in range(3_000_000): x += i"],
                   check=True)
    after = tree_ticks(_all_stats(), os.getpid())
    assert after - before >= TICKS_PER_S // 20  # the child's CPU (well over 50 ms) is there


def test_ticks_become_ms_per_trade_with_a_total() -> None:
    before = {"webhook": 100, "postgres": 50}
    after = {"webhook": 100 + TICKS_PER_S, "postgres": 50 + TICKS_PER_S // 2}
    out = per_trade_ms(before, after, trades=10)
    assert out == {"webhook": 100.0, "postgres": 50.0, "total": 150.0}


def test_the_postmaster_is_found_from_its_pid_file(tmp_path: Path) -> None:
    (tmp_path / "pg" / "data").mkdir(parents=True)
    (tmp_path / "pg" / "data" / "postmaster.pid").write_text("31337\n/some/dir\n")
    assert postmaster_pid(tmp_path) == 31337
    assert postmaster_pid(tmp_path / "pg" / "nothing") is None


def test_a_history_counts_workflow_tasks_activities_and_events() -> None:
    types = ["WORKFLOW_EXECUTION_STARTED", "WORKFLOW_TASK_SCHEDULED", "WORKFLOW_TASK_STARTED",
             "WORKFLOW_TASK_COMPLETED", "MARKER_RECORDED", "ACTIVITY_TASK_SCHEDULED",
             "ACTIVITY_TASK_STARTED", "ACTIVITY_TASK_COMPLETED", "WORKFLOW_TASK_SCHEDULED",
             "WORKFLOW_TASK_STARTED", "WORKFLOW_TASK_COMPLETED", "TIMER_STARTED"]
    assert history_counts(types) == {"events": 12, "workflow_tasks": 2, "activities": 1,
                                     "local_activity_markers": 1, "timers": 1}


def test_the_verdict_is_on_the_total_against_the_target() -> None:
    def verdict(total: float) -> str:  # float-ok: milliseconds
        out = outcome({"webhook": total, "total": total}, {}, window_s=1.0, trades=1,
                      statuses={"TRACKING": 1}, histories={}, requests={}, closed={},
                      profiles={})
        assert out.details["cpu_ms_per_trade"] == total
        assert out.details["per_process_ms"] == {"webhook": total}
        return out.rows[0].verdict

    assert verdict(TARGET_MS) == "met"
    assert verdict(TARGET_MS + 0.1) == "MISSED"


def test_the_idle_background_scales_with_the_window() -> None:
    assert background_ms_per_trade({"worker": 20.0, "temporal": 30.0}, 4.0, trades=10) == 20.0
