"""`tradewire incidents` against a webhook served over real HTTP, on incidents the watcher's own
code wrote into its database."""

from __future__ import annotations

import asyncio
import getpass
import json
from collections.abc import Iterator

import pytest

from db.session import make_engine, make_sessionmaker
from tests.webhook.test_incidents_api import Rows, raise_incidents

from .conftest import Live
from .test_cli import run


@pytest.fixture
def env(live_webhook: Live, monkeypatch: pytest.MonkeyPatch) -> Iterator[Live]:
    for key, value in live_webhook.env().items():
        monkeypatch.setenv(key, value)
    live_webhook.sql("DELETE FROM incident RETURNING id")
    yield live_webhook
    live_webhook.sql("DELETE FROM incident RETURNING id")  # the database is shared: /healthz tests expect none


def raised(live: Live) -> Rows:
    async def write() -> Rows:
        engine = make_engine(live.db_url, pool_size=1)
        try:
            return await raise_incidents(make_sessionmaker(engine))
        finally:
            await engine.dispose()

    return asyncio.run(write())


def test_incidents_lists_shows_and_dismisses(env: Live, capsys: pytest.CaptureFixture[str]) -> None:
    rows = raised(env)
    code, out, _ = run(capsys, "incidents")
    assert code == 0
    assert f"#{rows.unowned}" in out and f"#{rows.orphan}" in out and f"#{rows.resolved} " not in out
    assert "unowned_quantity" in out and "0.02 is owned by no trade" in out
    code, out, _ = run(capsys, "incidents", "--all")
    assert code == 0 and f"#{rows.resolved} " in out and "balanced again" in out
    assert out.rstrip().endswith("2 open")
    code, out, _ = run(capsys, "incidents", "ls", "--status", "resolved", "--json")
    assert code == 0 and [i["id"] for i in json.loads(out)] == [rows.resolved]
    code, out, _ = run(capsys, "incidents", "show", str(rows.orphan))
    assert code == 0 and json.loads(out)["order_id"] == "778899"

    code, out, _ = run(capsys, "incidents", "dismiss", str(rows.unowned), "--note", "known hedge")
    user = getpass.getuser()
    assert code == 0, out
    assert out == f"incident #{rows.unowned} dismissed: dismissed by {user}: known hedge\n"
    [(status, actions)] = env.sql("SELECT status, actions FROM incident WHERE id = %s", rows.unowned)
    assert status == "dismissed"
    assert {k: actions[-1][k] for k in ("by", "action", "note")} == {
        "by": user, "action": "dismiss", "note": "known hedge"}
    code, out, _ = run(capsys, "incidents", "dismiss", str(rows.orphan), "--note", "mine",
                       "--by", "operator")
    assert code == 0 and "dismissed by operator: mine" in out
    code, out, _ = run(capsys, "incidents")
    assert code == 0 and out == "no open incidents\n"

    code, _, err = run(capsys, "incidents", "dismiss", str(rows.unowned), "--note", "again")
    assert code == 1 and "409" in err and "not open" in err
    code, _, err = run(capsys, "incidents", "show", "987654321")
    assert code == 1 and "404: no incident #987654321" in err


def test_incidents_adopt_and_flatten_answer_unowned_quantity_only(
    env: Live, capsys: pytest.CaptureFixture[str]
) -> None:
    """The CLI's adopt writes the adopting trade and its action (no worker polls this webhook's
    task queue, so the trade stays PENDING here; tests/workflows/test_incident_policies.py runs
    adoptions to the end). An orphan order has nothing to adopt or flatten."""
    rows = raised(env)
    try:
        code, _, err = run(capsys, "incidents", "flatten", str(rows.orphan))
        assert code == 1 and "409" in err and "only unowned quantity" in err
        code, _, err = run(capsys, "incidents", "adopt", str(rows.unowned), "--stop-pct", "abc")
        assert code == 1 and "422" in err
        code, out, err = run(capsys, "incidents", "adopt", str(rows.unowned), "--stop-pct", "3",
                             "--note", "mine", "--by", "bob")
        assert code == 0, err
        # This incident's adoption (the database is the session's: other tests adopt too).
        [(wid,)] = env.sql("SELECT workflow_id FROM trade WHERE workflow_id LIKE %s",
                           f"adopt-{rows.unowned}-%")
        assert wid.startswith(f"adopt-{rows.unowned}-1-")
        assert out.startswith(f"incident #{rows.unowned}: trade #") and wid in out
        assert "0.02 BTCUSDT LONG and protects it with a stop 3 % from the mark: mine" in out
        [(status, target)] = env.sql(
            "SELECT status, target_qty FROM trade WHERE workflow_id = %s", wid)
        assert (status, str(target)) == ("PENDING", "0.02")
        [(actions,)] = env.sql("SELECT actions FROM incident WHERE id = %s", rows.unowned)
        assert [(a["by"], a["action"]) for a in actions] == [("watcher", "report"), ("bob", "adopt")]
        code, _, err = run(capsys, "incidents", "flatten", str(rows.unowned))
        assert code == 1 and "409" in err and "is being answered by trade" in err
    finally:
        env.sql("DELETE FROM trade WHERE workflow_id LIKE 'adopt-%%' RETURNING id")
