"""Summarising py-spy's collapsed stacks."""

from __future__ import annotations

from pathlib import Path

from bench.profile import REPO, summarize


def test_summary_ranks_own_time_and_names_tradewire_functions(tmp_path: Path) -> None:
    ours = f"place_order ({REPO}/activities/orders.py:80)"
    lib = "execute (/x/.venv/lib/python3.11/site-packages/psycopg/cursor.py:10)"
    main = f"main ({REPO}/cli/__init__.py:3)"
    collapsed = tmp_path / "worker.collapsed"
    collapsed.write_text(
        f"process 1;thread 2;{main};{ours};{lib} 30\n"
        f"process 1;thread 2;{main};{ours} 10\n"
        f"process 1;thread 2;{main};select (/usr/lib/python3.11/selectors.py:469) 60\n"
        "not a sample line\n"
    )

    out = summarize(collapsed)

    assert out["busy_samples"] == 100
    assert out["by_own_time"] == [
        " 60.0%  select (selectors.py)",
        " 30.0%  execute (psycopg/cursor.py)",
        " 10.0%  place_order (activities/orders.py)",
    ]
    assert out["tradewire_code_by_inclusive_time"] == [" 40.0%  place_order (activities/orders.py)"]


def test_a_missing_or_empty_file_has_no_samples(tmp_path: Path) -> None:
    assert summarize(tmp_path / "absent.collapsed") == {"samples": 0}
    (tmp_path / "empty.collapsed").write_text("")
    assert summarize(tmp_path / "empty.collapsed") == {"samples": 0}
