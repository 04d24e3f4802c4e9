"""The ownership invariant, checked by the account watcher on real parts: the paper exchange over
HTTP, PostgreSQL, trades running in a real worker. Most tests drive the watcher's rounds
themselves (a WatcherActivities of their own, a short settle window) so each round is visible;
one runs the watcher as the worker starts it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from pydantic import SecretStr
from sqlalchemy import select, text

from activities.watcher import AccountView, FillWindow, WatcherActivities
from db.models import Incident, Order, Trade
from tests.workflows.harness import Harness, strategy, until
from trading.ids import client_order_id
from trading.types import EntryType, IncidentPolicy, OrderType, Side, TradeStatus
from webhook.app import create_app
from workflows.contract import Sizing

BTC = "BTCUSDT"
QTY = Decimal("0.0100")
HOUR = strategy(tracking_interval_s=3600)
UNOWNED = "unowned_quantity:BTCUSDT:LONG"
TOKEN = "test-admin-token-incidents-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


class Watch:
    """The account watcher's rounds, one call at a time."""

    def __init__(self, h: Harness, settle_s: str,
                 policy: IncidentPolicy = IncidentPolicy.REPORT, **options: Any) -> None:
        self.h = h
        self.watcher = WatcherActivities(h.exchange, h.sessionmaker, h.client,
                                         settle_s=Decimal(settle_s), policy=policy, **options)
        self.before: AccountView | None = None
        self.window = FillWindow()

    @property
    def pending(self) -> set[str]:
        return self.watcher.audit.settling.pending

    async def round(self) -> None:
        self.before = await self.watcher.round(self.before, self.window)

    async def rounds(self, n: int) -> None:
        for _ in range(n):
            await self.round()
            await asyncio.sleep(0.1)

    async def until(self, check: Any, what: str) -> Any:
        async def probe() -> Any:
            await self.round()
            return await check()

        return await until(probe, what)


async def incidents(h: Harness) -> list[Incident]:
    async with h.sessionmaker() as session:
        return list((await session.scalars(select(Incident).order_by(Incident.id))).all())


@pytest_asyncio.fixture(loop_scope="session")
async def h(harness: Harness) -> Harness:
    """The harness, without the incidents earlier tests left (it empties the trade tables only)."""
    async with harness.sessionmaker() as session, session.begin():
        await session.execute(text("TRUNCATE incident"))
    await harness.paper.admin.set_price(BTC, "95000")
    return harness


async def buy_by_hand(h: Harness, qty: Decimal = QTY, client_id: str = "by-hand-1") -> None:
    """A market buy no trade sent: what an operator, another program or a lost answer leaves."""
    await h.exchange.place_order(symbol=BTC, side=Side.BUY, qty=qty, order_type=OrderType.MARKET,
                                 client_id=client_id)


async def close_by_hand(h: Harness) -> None:
    [position] = [p for p in await h.exchange.pending_positions(BTC) if p.qty > 0]
    await h.exchange.flash_close_position(position.position_id)


def actions(row: Incident) -> list[tuple[str, str]]:
    return [(a["by"], a["action"]) for a in row.actions]


async def test_a_position_no_trade_owns_is_one_incident_until_it_balances_again(
    h: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="activities.incidents")
    watch = Watch(h, settle_s="1")
    await buy_by_hand(h)
    await watch.round()
    assert watch.pending == {UNOWNED} and await incidents(h) == []  # within the settle window

    [row] = await watch.until(lambda: incidents(h), "the unowned position becomes an incident")
    assert (row.kind, row.symbol, row.side, row.status) == ("unowned_quantity", BTC, "LONG", "open")
    assert (row.exchange_qty, row.owned_qty, row.cleared_at) == (QTY, 0, None)
    assert row.first_seen < row.last_seen and actions(row) == [("watcher", "report")]
    await watch.rounds(3)
    [same] = await incidents(h)  # the same mismatch updates its row, never adds one
    assert same.id == row.id and same.last_seen > row.last_seen
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and errors[0].startswith(f"incident #{row.id} unowned_quantity BTCUSDT LONG")

    await close_by_hand(h)
    await watch.round()
    [done] = await incidents(h)
    assert (done.status, done.resolution) == ("resolved", "balanced again")
    assert done.cleared_at is not None and watch.pending == set()
    assert actions(done) == [("watcher", "report"), ("watcher", "resolve")]


async def test_a_trade_raises_nothing_even_while_its_fill_is_in_flight(h: Harness) -> None:
    """The order is hidden from the trade for 3 s after it filled (BitUnix's visibility lag):
    the exchange shows the position, the trade's row not yet. That settles in the window."""
    watch = Watch(h, settle_s="10")
    await h.paper.admin.faults(visibility_delay_ms=3000)
    trade = await h.trade(sizing=Sizing(size=QTY), strat=HOUR)
    in_flight = False

    async def tracked_and_balanced() -> bool:
        nonlocal in_flight
        in_flight |= UNOWNED in watch.pending
        st = await h.state(trade)
        return st.status is TradeStatus.TRACKING and st.filled_qty == QTY and not watch.pending

    await watch.until(tracked_and_balanced, "the trade tracks its fill and the account balances")
    assert in_flight  # the window was needed: the position showed before the trade's fill
    await watch.rounds(3)
    assert await incidents(h) == [] and watch.pending == set()


async def test_working_tradewire_orders_of_no_live_trade_are_orphans(h: Harness) -> None:
    watch = Watch(h, settle_s="1")
    live = await h.trade(entry_type=EntryType.LIMIT, reference_price=Decimal("90000"),
                         sizing=Sizing(size=QTY), strat=HOUR)
    await h.until_state(live, lambda s: bool(s.open_orders), "the live trade's limit entry rests")
    stray_id = client_order_id("trade-nobody-knows", "E", 1)
    stray = await h.exchange.place_order(symbol=BTC, side=Side.BUY, qty=QTY,
                                         order_type=OrderType.LIMIT, price=Decimal("89000"),
                                         client_id=stray_id)
    ended_id = client_order_id("trade-that-ended", "E", 1)
    async with h.sessionmaker() as session, session.begin():
        row = Trade(workflow_id="trade-that-ended", symbol=BTC, side="LONG", intent="OPEN_LONG",
                    entry_type="limit", status=TradeStatus.CLOSED.value)
        session.add(row)
        await session.flush()
        ended_trade = row.id
        session.add(Order(trade_id=ended_trade, client_order_id=ended_id, symbol=BTC, leg="entry",
                          side="BUY", order_type="LIMIT", qty=QTY, price=Decimal("88000"),
                          status="NEW"))
    ended = await h.exchange.place_order(symbol=BTC, side=Side.BUY, qty=QTY,
                                         order_type=OrderType.LIMIT, price=Decimal("88000"),
                                         client_id=ended_id)

    async def two() -> list[Incident] | None:
        rows = await incidents(h)
        return rows if len(rows) == 2 else None

    rows = await watch.until(two, "both orphans become incidents")
    by_order = {r.order_id: r for r in rows}
    assert set(by_order) == {stray.order_id, ended.order_id}  # not the live trade's entry
    assert all((r.kind, r.side, r.exchange_qty, r.owned_qty) == ("orphan_order", None, QTY, 0)
               for r in rows)
    assert by_order[stray.order_id].client_order_id == stray_id
    assert "no trade's order row has this client id" in by_order[stray.order_id].detail
    assert f"its trade #{ended_trade} has ended (CLOSED)" in by_order[ended.order_id].detail

    await h.exchange.cancel_orders(BTC, order_ids=[stray.order_id])
    await watch.round()
    by_order = {r.order_id: r for r in await incidents(h)}
    gone = by_order[stray.order_id]
    assert (gone.status, gone.resolution) == ("resolved", "the order is no longer working")
    assert by_order[ended.order_id].status == "open"


async def test_quantity_the_trades_count_but_the_exchange_lacks_is_missing(h: Harness) -> None:
    """An open trade whose order rows say it filled, with nothing at the exchange."""
    watch = Watch(h, settle_s="1")
    async with h.sessionmaker() as session, session.begin():
        row = Trade(workflow_id="trade-rows-only", symbol=BTC, side="LONG", intent="OPEN_LONG",
                    entry_type="market", status=TradeStatus.CLOSING.value)
        session.add(row)
        await session.flush()
        trade_id = row.id
        session.add(Order(trade_id=trade_id, client_order_id=client_order_id("trade-rows-only", "E", 1),
                          symbol=BTC, leg="entry", side="BUY", order_type="MARKET", qty=QTY,
                          filled_qty=QTY, status="FILLED"))
    async def both() -> list[Incident]:
        rows = await incidents(h)
        return rows if len(rows) == 2 else []

    rows = await watch.until(both, "the missing quantity becomes an incident")
    # This trade exists only as rows: no workflow runs for it either (untracked).
    assert sorted(r.kind for r in rows) == ["missing_quantity", "untracked_trade"]
    [row] = [r for r in rows if r.kind == "missing_quantity"]
    assert (row.exchange_qty, row.owned_qty) == (0, QTY)
    async with h.sessionmaker() as session, session.begin():
        await session.execute(text("UPDATE trade SET status = 'CLOSED' WHERE id = :id"),
                              {"id": trade_id})
    await watch.round()
    done = await incidents(h)
    assert {(d.kind, d.status) for d in done} == {("missing_quantity", "resolved"),
                                                  ("untracked_trade", "resolved")}
    [missing] = [d for d in done if d.kind == "missing_quantity"]
    assert missing.resolution == "balanced again"


@pytest_asyncio.fixture(loop_scope="session")
async def api(h: Harness, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    """The webhook app on the harness's database, called in-process; the account's policy is
    `report`, so the incidents stay for these tests to answer (tests/workflows/
    test_incident_policies.py covers protect and flatten)."""
    settings = h.settings.model_copy(update={"admin_token": SecretStr(TOKEN), "fast_path": False,
                                             "state_dir": tmp_path,
                                             "incident_policy": IncidentPolicy.REPORT})
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://tw") as http:
            yield http


async def test_healthz_the_api_and_a_dismissal_follow_the_watcher(
    h: Harness, api: httpx.AsyncClient
) -> None:
    watch = Watch(h, settle_s="1")
    health = await api.get("/healthz", headers=AUTH)
    assert (health.status_code, health.json()["status"], health.json()["incidents"]) == (200, "ok", 0)
    await buy_by_hand(h)
    [row] = await watch.until(lambda: incidents(h), "an incident")

    health = await api.get("/healthz", headers=AUTH)
    assert health.status_code == 200  # degraded, not down: alerts must still come in
    assert (health.json()["status"], health.json()["incidents"]) == ("degraded", 1)
    assert (await api.get("/healthz", params={"strict": "true"})).json() == {"status": "down"}
    assert (await api.get("/healthz", params={"strict": "true"})).status_code == 503
    details = (await api.get("/healthz", headers=AUTH)).json()["details"]["incidents"]["detail"]
    assert details == f"1 open (oldest first): #{row.id} unowned_quantity BTCUSDT LONG"
    listed = (await api.get("/incidents", headers=AUTH)).json()
    assert [i["id"] for i in listed["incidents"]] == [row.id] and listed["open"] == 1
    assert Decimal(listed["incidents"][0]["exchange_qty"]) == QTY  # exact text, never a float

    answer = await api.post(f"/incidents/{row.id}/dismiss", headers=AUTH,
                            json={"note": "my own hedge, leave it", "by": "alice"})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["status"], body["resolution"]) == ("dismissed", "dismissed by alice: my own hedge, leave it")
    assert [(a["by"], a["action"], a["note"]) for a in body["actions"]][-1] == (
        "alice", "dismiss", "my own hedge, leave it")
    health = await api.get("/healthz", headers=AUTH)
    assert (health.status_code, health.json()["status"], health.json()["incidents"]) == (200, "ok", 0)
    again = await api.post(f"/incidents/{row.id}/dismiss", headers=AUTH, json={"note": "twice"})
    assert again.status_code == 409

    await watch.rounds(3)  # the same gap: it stays dismissed, nothing new is raised
    [same] = await incidents(h)
    assert (same.id, same.status, same.cleared_at) == (row.id, "dismissed", None)

    await buy_by_hand(h, client_id="by-hand-2")  # the gap grows: raised again

    async def two() -> list[Incident] | None:
        rows = await incidents(h)
        return rows if len(rows) == 2 else None

    old, new = await watch.until(two, "a new incident for the larger gap")
    assert (old.status, old.cleared_at is not None) == ("dismissed", True)
    assert old.actions[-1]["note"] == "the gap moved from 0.01 to 0.02: raised again"
    assert (new.status, new.exchange_qty, new.owned_qty) == ("open", 2 * QTY, 0)
    listed = (await api.get("/incidents", params={"status": "all"}, headers=AUTH)).json()
    assert [i["id"] for i in listed["incidents"]] == [new.id, old.id]
    assert (await api.get("/healthz", headers=AUTH)).json()["incidents"] == 1


async def test_the_watcher_the_worker_starts_raises_and_resolves_incidents(
    h: Harness, watcher: str
) -> None:
    """As deployed: AccountWatcherWorkflow, the worker's settle window (the default, 10 s)."""
    await buy_by_hand(h, client_id=client_order_id("trade-lost-answer", "E", 1))

    async def raised() -> list[Incident]:
        return await incidents(h)

    [row] = await until(raised, "the watcher raises an incident", timeout_s=60)
    assert (row.kind, row.exchange_qty, row.status) == ("unowned_quantity", QTY, "open")
    await close_by_hand(h)

    async def resolved() -> bool:
        [done] = await incidents(h)
        return done.status == "resolved"

    await until(resolved, "the watcher resolves it")


async def test_an_open_trade_whose_workflow_no_longer_runs_is_untracked(h: Harness) -> None:
    """The books can balance while nobody watches: a trade whose workflow ended (terminated,
    or a bug that completed it) while its row still says TRACKING holds a position nothing
    tracks, protects or closes. The watcher's first round, as a worker starts it, finds it."""
    handle = await h.trade(sizing=Sizing(size=QTY), sl=Decimal("90000"), strat=HOUR)
    st = await h.until_state(handle, lambda s: s.status is TradeStatus.TRACKING
                             and s.protection.order_id is not None, "tracking")
    await handle.terminate("a workflow gone while its trade is open")
    watch = Watch(h, settle_s="1")  # a worker starting: its first round signals every trade
    [row] = await watch.until(
        lambda: incidents(h), "the untracked trade becomes an incident")
    assert (row.kind, row.symbol, row.side, row.status) == ("untracked_trade", BTC, "LONG", "open")
    assert f"trade #{st.trade_id}" in row.detail and "no longer runs" in row.detail
    # The books themselves balance: nothing else was raised.
    assert [r.kind for r in await incidents(h)] == ["untracked_trade"]
    # An operator closes the position and the trade's row: the incident resolves.
    await close_by_hand(h)
    async with h.sessionmaker() as session, session.begin():
        await session.execute(text("UPDATE trade SET status = 'CLOSED' WHERE id = :id"),
                              {"id": st.trade_id})
    await watch.rounds(2)
    [done] = await incidents(h)
    assert done.status == "resolved"


async def test_tradewire_reconcile_raises_what_it_finds_at_once_and_says_so(
    h: Harness, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The operator's reconciliation: one watcher round without the settle window; the exit
    status says whether the books balance."""
    import argparse

    from cli import reconcile

    monkeypatch.setattr(reconcile, "load_settings", lambda: h.settings)
    assert await asyncio.to_thread(reconcile.cmd_reconcile, argparse.Namespace()) == 0
    assert "balanced" in capsys.readouterr().out
    await buy_by_hand(h)
    try:
        assert await asyncio.to_thread(reconcile.cmd_reconcile, argparse.Namespace()) == 1
        out = capsys.readouterr().out
        assert "1 open incident(s)" in out and "unowned_quantity BTCUSDT LONG" in out
        [row] = await incidents(h)
        assert (row.kind, row.status) == ("unowned_quantity", "open")
    finally:
        await close_by_hand(h)


async def test_a_trade_a_signal_reaches_is_not_untracked_nor_one_still_starting(h: Harness) -> None:
    """Only a trade past its first claim whose signal finds no workflow is untracked: one still
    PENDING may be starting, and one a later signal reaches is running."""
    from workflows.messages import CancelRequest
    from workflows.trade import TradeWorkflow

    handle = await h.trade(sizing=Sizing(size=QTY), sl=Decimal("90000"), strat=HOUR)
    await h.until_state(handle, lambda s: s.status is TradeStatus.TRACKING
                        and s.protection.order_id is not None, "tracking")
    async with h.sessionmaker() as session, session.begin():
        session.add(Trade(workflow_id="trade-starting-1", symbol=BTC, side="LONG",
                          intent="OPEN_LONG", entry_type="market",
                          status=TradeStatus.PENDING.value))
    watch = Watch(h, settle_s="0.2")
    watch.watcher._not_running.add(handle.id)  # as if an earlier signal had found nothing
    await watch.rounds(4)  # the first round signals every open trade, both of these
    assert [r.kind for r in await incidents(h)] == []
    await handle.signal(TradeWorkflow.cancel, CancelRequest(flatten=True))
    assert (await h.result(handle)).status is TradeStatus.CANCELLED
    async with h.sessionmaker() as session, session.begin():
        await session.execute(text("DELETE FROM trade WHERE workflow_id = 'trade-starting-1'"))
