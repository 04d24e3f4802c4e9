"""`tradewire risk` against a webhook served over real HTTP: show, halt, reduce-only, resume,
each change recorded as `cli:<user>`; a halt outlives the webhook that recorded it."""

from __future__ import annotations

import getpass
import json
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest

from tests.webhook.conftest import Webhook
from tests.webhook.live import run_webhook
from webhook.schemas import render_alert

from .conftest import Live
from .test_cli import run


@pytest.fixture
def env(live_webhook: Live, monkeypatch: pytest.MonkeyPatch) -> Iterator[Live]:
    for key, value in live_webhook.env().items():
        monkeypatch.setenv(key, value)
    live_webhook.sql("DELETE FROM risk_state RETURNING scope")
    yield live_webhook
    live_webhook.sql("DELETE FROM risk_state RETURNING scope")  # the database is shared


def test_risk_shows_changes_and_resumes(env: Live, capsys: pytest.CaptureFixture[str]) -> None:
    strat = env.add_strategy()
    env.sql("UPDATE strategy SET max_open_trades = 2 WHERE id = %s RETURNING id", strat.id)
    user = getpass.getuser()
    code, out, err = run(capsys, "risk")
    assert code == 0, err
    assert out.startswith("account: ACTIVE  (-)\naccount limits: none\ntoday (")
    assert "exposure (open trades, at their entry price):" in out
    [line] = [ln for ln in out.splitlines() if ln.strip().startswith(strat.name)]
    assert line.split()[1:3] == ["ACTIVE", "ACTIVE"] and "max_open_trades=2" in line

    code, out, err = run(capsys, "risk", "reduce-only", "--strategy", strat.name,
                         "--reason", "earnings")
    assert code == 0, err
    assert out.splitlines()[0] == (f"strategy {strat.name!r}: ACTIVE -> REDUCE_ONLY "
                                   f"(by cli:{user}: earnings)")
    code, out, err = run(capsys, "risk", "halt", "--flatten", "--reason", "leaving")
    assert code == 0, err
    assert out.splitlines()[0] == f"account: ACTIVE -> HALTED (flatten) (by cli:{user}: leaving)"
    assert out.splitlines()[1].startswith("  trades signalled: ")

    code, out, err = run(capsys, "risk")
    assert code == 0, err
    assert out.splitlines()[0].startswith(f"account: HALTED (flatten)  (cli:{user} at ")
    assert out.splitlines()[0].endswith(": leaving)")
    [line] = [ln for ln in out.splitlines() if ln.strip().startswith(strat.name)]
    assert line.split()[1:4] == ["REDUCE_ONLY", "HALTED", "(account)"]
    assert f"cli:{user}" in line and "earnings" in line
    changes = out[out.index("recent changes:"):].splitlines()
    assert "ACTIVE -> HALTED flatten" in changes[2] and "leaving" in changes[2]

    code, out, err = run(capsys, "risk", "--json")
    assert code == 0, err
    body = json.loads(out)
    assert (body["account"]["state"], body["account"]["changed_by"]) == ("HALTED", f"cli:{user}")
    assert [(e["actor"], e["reason"]) for e in body["events"][:2]] == [
        (f"cli:{user}", "leaving"), (f"cli:{user}", "earnings")]

    code, out, err = run(capsys, "risk", "resume")
    assert code == 0, err
    assert out.splitlines()[0] == f"account: HALTED -> ACTIVE (by cli:{user}: no reason given)"
    code, out, err = run(capsys, "risk", "resume", "--strategy", strat.name, "--json")
    assert code == 0, err
    assert json.loads(out)["state"]["state"] == "ACTIVE"
    assert env.sql("SELECT state FROM risk_state ORDER BY scope") == [("ACTIVE",), ("ACTIVE",)]


def test_risk_says_what_went_wrong(env: Live, capsys: pytest.CaptureFixture[str],
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    code, _, err = run(capsys, "risk", "halt", "--strategy", "no-such-strategy")
    assert code == 1 and "404: no strategy 'no-such-strategy'" in err
    monkeypatch.setenv("TRADEWIRE_ADMIN_TOKEN", "a-wrong-token-0123456789abcdef")
    code, _, err = run(capsys, "risk")
    assert code == 1 and "401: admin token required" in err
    assert env.sql("SELECT scope FROM risk_state") == []


def test_a_halt_from_the_cli_outlives_the_webhook(env: Live,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """Halted through one webhook; another one started on the same database afterwards (a
    restart) shows the halt and refuses an alert by it."""
    strat = env.add_strategy()
    code, _, err = run(capsys, "risk", "halt", "--reason", "before the restart")
    assert code == 0, err
    with run_webhook(env.settings, env.db_url) as url:
        code, out, err = run(capsys, "risk", "--url", url)
        assert code == 0, err
        assert out.startswith("account: HALTED  (cli:") and "before the restart" in out
        alert = render_alert(Webhook.alert(strat)).encode()
        r = httpx.post(f"{url}/webhook/tradingview", content=alert,
                       headers={"Content-Type": "application/json"})
    assert r.status_code == 422 and r.json()["outcome"] == "REFUSED"
    assert "the account is HALTED" in r.json()["reason"]
    [(outcome, reason)] = env.sql("SELECT outcome, reason FROM signal WHERE id = %s",
                                  r.json()["signal_id"])
    assert outcome == "REFUSED" and reason == r.json()["reason"]


def test_risk_shows_how_close_each_scope_is_to_its_daily_loss_limit(
        env: Live, capsys: pytest.CaptureFixture[str]) -> None:
    """The latch's figure (realized and unrealized at mark) next to the scope's daily loss
    limit; a scope the latch keeps no figure for shows its realized PnL only and says so."""
    strat = env.add_strategy()
    env.sql("UPDATE strategy SET daily_loss_usdt = 50 WHERE id = %s RETURNING id", strat.id)
    env.sql("DELETE FROM risk_pnl RETURNING scope")
    env.sql("INSERT INTO risk_pnl (scope, day, realized, unrealized) VALUES (%s, %s, -40, "
            "-12.31) RETURNING scope", f"strategy:{strat.name}", datetime.now(UTC).date())
    try:
        code, out, err = run(capsys, "risk")
    finally:
        env.sql("DELETE FROM risk_pnl RETURNING scope")
    assert code == 0, err
    lines = out.splitlines()
    assert (f"  strategy {strat.name!r}: -52.31 USDT (realized -40.00, unrealized -12.31) "
            "of daily_loss_usdt 50") in lines
    [account] = [ln for ln in lines if ln.startswith("account today: ")]
    assert account.endswith("USDT realized only (the latch keeps no figure of it today: "
                            "no daily loss limit, or no watcher round yet); no daily loss limit")
    [line] = [ln for ln in lines if ln.strip().startswith(strat.name)]
    assert "-52.31" in line
