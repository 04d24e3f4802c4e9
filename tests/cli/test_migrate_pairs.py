"""`tradewire migrate` syncs the pairs (a fresh install's first alert must not be refused as an
unknown symbol), as a process of its own as compose runs it, against a real PostgreSQL and the
paper exchange over HTTP; an unreachable exchange fails a fresh install and warns on an upgrade."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import psycopg

from tests.devstack.support import free_ports
from tests.support.paper import PaperExchange

PROJECT = Path(__file__).resolve().parents[2]


async def migrate(tmp: Path, db_url: str, exchange_url: str) -> tuple[int, str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRADEWIRE_")}
    env.update({
        "PYTHONPATH": os.pathsep.join(filter(None, [str(PROJECT), env.get("PYTHONPATH")])),
        "TRADEWIRE_STATE_DIR": str(tmp / "state"),
        "TRADEWIRE_DATABASE_URL": db_url,
        "TRADEWIRE_EXCHANGE": "paper",
        "TRADEWIRE_EXCHANGE_BASE_URL": exchange_url,
    })
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "cli", "migrate", "--skip-temporal", cwd=tmp, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def pair_count(db_url: str) -> int:
    url = db_url.replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT count(*) FROM trading_pair").fetchone()[0]


def unreachable() -> str:
    (port,) = free_ports(1)  # nothing listens there: connection refused
    return f"http://127.0.0.1:{port}"


async def test_migrate_fills_the_pairs_of_a_fresh_install_then_warns_when_the_exchange_is_gone(
    tmp_path: Path, empty_db_url: str, paper_exchange: PaperExchange
) -> None:
    code, out, err = await migrate(tmp_path, empty_db_url, paper_exchange.base_url)
    assert code == 0, out + err
    assert "database: at the newest schema" in out
    assert "pairs synced" in out and "new: BTCUSDT" in out, out
    stored = pair_count(empty_db_url)
    assert stored >= 15

    # An upgrade while the exchange is down: the pairs already stored keep the install trading,
    # and the worker must start (it protects open trades), so migrate succeeds with a warning.
    code, out, err = await migrate(tmp_path, empty_db_url, unreachable())
    assert code == 0, out + err
    assert "WARNING: could not sync" in err and f"keeping the {stored} pairs stored" in err, err
    assert pair_count(empty_db_url) == stored


async def test_migrate_of_a_fresh_install_fails_when_the_exchange_is_unreachable(
    tmp_path: Path, empty_db_url: str
) -> None:
    """With no pair stored the install cannot trade: a clear failure saying what to do, and
    compose starts neither the webhook nor the worker (they wait for migrate to succeed)."""
    url = unreachable()
    code, out, err = await migrate(tmp_path, empty_db_url, url)
    assert code == 1, out + err
    assert "database: at the newest schema" in out  # the schema step is done and kept
    assert f"could not sync the pairs from paper at {url}" in err, err
    assert "every alert would be refused as an unknown symbol" in err, err
    assert "run `tradewire migrate` again" in err, err
    assert "Traceback" not in err, err
    assert pair_count(empty_db_url) == 0
