"""devstack/prepare.py: the database steps `tradewire up` runs in a child, on a real empty
database and the paper exchange over HTTP, run as `up` runs them (`python -m devstack.prepare`)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from sqlalchemy import create_engine, text

REPO = Path(__file__).resolve().parents[2]


def _prepare(step: str, database_url: str, state_dir: Path, exchange_url: str
             ) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRADEWIRE_")}
    env |= {"TRADEWIRE_DATABASE_URL": database_url, "TRADEWIRE_STATE_DIR": str(state_dir),
            "TRADEWIRE_EXCHANGE_BASE_URL": exchange_url}
    return subprocess.run([sys.executable, "-m", "devstack.prepare", step], cwd=state_dir,
                          env=env, capture_output=True, text=True, timeout=120, check=False)


def _count(database_url: str, sql: str) -> int:
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(text(sql)).scalar_one())
    finally:
        engine.dispose()


def test_schema_then_trading_prepare_an_empty_database(empty_db_url: str, paper_exchange,
                                                       tmp_path: Path) -> None:
    schema = _prepare("schema", empty_db_url, tmp_path, paper_exchange.base_url)
    assert schema.returncode == 0, schema.stderr
    assert schema.stdout == ""

    first = _prepare("trading", empty_db_url, tmp_path, paper_exchange.base_url)
    assert first.returncode == 0, first.stderr
    lines = first.stdout.splitlines()
    assert lines[0].startswith("ready: pairs ") and " synced (" in lines[0], lines
    assert lines[1].startswith("demo strategy created: name 'demo', webhook secret "), lines
    assert _count(empty_db_url, "SELECT count(*) FROM trading_pair") > 0
    assert _count(empty_db_url, "SELECT count(*) FROM strategy WHERE name = 'demo'") == 1

    again = _prepare("trading", empty_db_url, tmp_path, paper_exchange.base_url)
    assert again.returncode == 0, again.stderr
    assert [line for line in again.stdout.splitlines() if "demo" in line] == []  # shown once


def test_a_failed_step_exits_non_zero_with_its_error(tmp_path: Path) -> None:
    unreachable = "postgresql+psycopg://nobody@127.0.0.1:1/none"
    failed = _prepare("schema", unreachable, tmp_path, "http://127.0.0.1:1")
    assert failed.returncode != 0
    assert "OperationalError" in failed.stderr
    unknown = _prepare("everything", unreachable, tmp_path, "http://127.0.0.1:1")
    assert unknown.returncode == 2 and "usage" in unknown.stderr
