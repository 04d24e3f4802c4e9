"""`tradewire exchange check` as an operator runs it (its own process, its exit code) against the
paper exchange over HTTP and a real database: all ok, then each failing line says what to fix."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx

import cli
from db.migrate import upgrade
from tests.support.paper import PaperExchange

REPO = Path(__file__).resolve().parents[2]


def check(paper: PaperExchange, db_url: str, tmp_path: Path, **env: str) -> tuple[int, str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("TRADEWIRE_")}
    environ.update({
        "TRADEWIRE_EXCHANGE_BASE_URL": paper.base_url,
        "TRADEWIRE_DATABASE_URL": db_url,
        "TRADEWIRE_STATE_DIR": str(tmp_path),
        "PYTHONPATH": str(REPO),
        **env,
    })
    done = subprocess.run([sys.executable, "-m", "cli", "exchange", "check"], cwd=tmp_path,
                          env=environ, capture_output=True, text=True, timeout=60)
    return done.returncode, done.stdout


def line(out: str, name: str) -> str:
    found = [x.strip() for x in out.splitlines() if f"  {name}:" in x]
    assert len(found) == 1, out
    return found[0]


def set_skew(paper: PaperExchange, ms: int) -> None:
    httpx.post(paper.base_url + "/__admin/faults", json={"clock_skew_ms": ms}).raise_for_status()


def test_bare_exchange_still_serves_the_paper_exchange() -> None:
    parser = cli.build_parser(operator_commands=False)
    assert parser.parse_args(["exchange"]).action == "serve"
    assert parser.parse_args(["exchange", "check"]).action == "check"


def test_all_ok_exits_0(paper_exchange: PaperExchange, db_url: str, synced_pairs: list[str],
                        tmp_path: Path) -> None:
    code, out = check(paper_exchange, db_url, tmp_path)
    assert code == 0, out
    for name in ("keys and signature", "IP allow-list", "account", "clock", "pairs",
                 "request budget"):
        assert line(out, name).startswith("ok "), out
    assert "position mode ONE_WAY" in line(out, "account")
    assert f"{len(synced_pairs)} pairs" in line(out, "pairs")
    assert "all ok" in out


def test_a_wrong_secret_fails_the_signature_line(paper_exchange: PaperExchange, db_url: str,
                                                 synced_pairs: list[str], tmp_path: Path) -> None:
    code, out = check(paper_exchange, db_url, tmp_path, TRADEWIRE_PAPER_API_SECRET="wrong")
    assert code == 1
    keys = line(out, "keys and signature")
    assert keys.startswith("FIX") and "TRADEWIRE_PAPER_API_SECRET" in keys and "10007" in keys
    assert line(out, "pairs").startswith("ok ")  # the other lines still run


def test_a_skewed_clock_fails_the_clock_line(paper_exchange: PaperExchange, db_url: str,
                                             synced_pairs: list[str], tmp_path: Path) -> None:
    set_skew(paper_exchange, -9000)
    try:
        code, out = check(paper_exchange, db_url, tmp_path)
    finally:
        set_skew(paper_exchange, 0)
    assert code == 1
    clock = line(out, "clock")
    assert clock.startswith("FIX") and "ahead of BitUnix's clock" in clock
    assert "TRADEWIRE_CLOCK_SKEW_MAX_MS" in clock and "NTP" in clock
    assert line(out, "keys and signature").startswith("ok ")


def test_no_pairs_synced_fails_the_pairs_line(paper_exchange: PaperExchange, empty_db_url: str,
                                              tmp_path: Path) -> None:
    upgrade(empty_db_url)
    code, out = check(paper_exchange, empty_db_url, tmp_path)
    assert code == 1
    pairs = line(out, "pairs")
    assert pairs.startswith("FIX") and "tradewire pairs sync" in pairs


def test_no_database_configured_is_a_line_too(paper_exchange: PaperExchange,
                                              tmp_path: Path) -> None:
    code, out = check(paper_exchange, "", tmp_path)
    assert code == 1 and "TRADEWIRE_DATABASE_URL" in line(out, "pairs")


def test_live_settings_without_keys_are_a_fix_line_not_a_traceback(
    paper_exchange: PaperExchange, db_url: str, synced_pairs: list[str], tmp_path: Path
) -> None:
    code, out = check(paper_exchange, db_url, tmp_path, TRADEWIRE_EXCHANGE="bitunix",
                      TRADEWIRE_BITUNIX_API_KEY="", TRADEWIRE_BITUNIX_API_SECRET="")
    assert code == 1, out
    keys = line(out, "keys and signature")
    assert keys.startswith("FIX") and "TRADEWIRE_BITUNIX_API_KEY" in keys
    assert line(out, "pairs").startswith("ok ")
