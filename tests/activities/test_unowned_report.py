"""A trade's check reports quantity no open trade owns (activities/tracking.py `_unowned`) only
when it is there: a position read that started before another trade's close was recorded
still holds that close's quantity, and set against the records read after it, it looked like
quantity nobody owns (seen in the bench's bulk closes: a false "holds more than the open
trades own" on trades that were fine). Against the paper exchange over HTTP and a real
PostgreSQL."""

from __future__ import annotations

import time
import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
from temporalio.testing import ActivityEnvironment

from activities.contract_tracking import RefreshRequest
from activities.orders import OrderActivities
from activities.tracking import TrackingActivities
from db.models import Order, Trade
from trading.types import Leg, OrderType, PositionSide, Side

BTC, ETH = "BTCUSDT", "ETHUSDT"  # one symbol per test: the module shares its database
QTY = Decimal("0.0100")
SHARED_READ_MS = 60_000  # a check on the trade's own timer: a read this old will do


@pytest.fixture
def acts(paper_client, sessionmaker) -> TrackingActivities:
    orders = OrderActivities(paper_client, sessionmaker, lookup_pause_s=0.1,
                             visibility_window=timedelta(0))
    return TrackingActivities(paper_client, sessionmaker, orders, fill_tries=1)


async def _trade_with_entry(sessionmaker, qty: Decimal, symbol: str = BTC) -> int:
    async with sessionmaker() as session, session.begin():
        trade = Trade(workflow_id=f"t-{uuid.uuid4().hex}", symbol=symbol, side="LONG",
                      intent="OPEN_LONG", entry_type="market", status="TRACKING")
        session.add(trade)
        await session.flush()
        session.add(_row(trade.id, Leg.ENTRY, Side.BUY, qty, symbol))
        return trade.id


def _row(trade_id: int, leg: Leg, side: Side, qty: Decimal, symbol: str = BTC) -> Order:
    return Order(trade_id=trade_id, client_order_id=f"TWTEST{uuid.uuid4().hex[:16].upper()}",
                 symbol=symbol, leg=leg.value, side=side.value, order_type=OrderType.MARKET.value,
                 qty=qty, filled_qty=qty, status="FILLED")


def _check(trade_id: int, symbol: str = BTC) -> RefreshRequest:
    return RefreshRequest(trade_id=trade_id, symbol=symbol, side=PositionSide.LONG,
                          max_age_ms=SHARED_READ_MS)


async def test_a_close_recorded_after_the_position_read_is_no_unowned_quantity(
    acts, paper, paper_client, sessionmaker
) -> None:
    await paper.admin.set_price(BTC, "95000")
    a = await _trade_with_entry(sessionmaker, QTY)
    b = await _trade_with_entry(sessionmaker, QTY)
    await paper_client.place_order(symbol=BTC, side=Side.BUY, qty=2 * QTY,
                                   order_type=OrderType.MARKET)
    env = ActivityEnvironment()
    first = await env.run(acts.refresh_trade, _check(a))  # the account's read: 0.02, both own it
    assert first.position is not None and first.position.qty == 2 * QTY
    assert first.unowned_qty is None

    # B closes its own 0.01 at the exchange and records it.
    await paper_client.place_order(symbol=BTC, side=Side.SELL, qty=QTY,
                                   order_type=OrderType.MARKET, reduce_only=True)
    async with sessionmaker() as session, session.begin():
        session.add(_row(b, Leg.EXIT, Side.SELL, QTY))

    # A's next check shares the read of a moment ago (0.02) against the records now (0.01).
    second = await env.run(acts.refresh_trade, _check(a))
    assert second.unowned_qty is None, second
    assert second.owned_qty == QTY


async def test_quantity_nobody_owns_is_still_reported(
    acts, paper, paper_client, sessionmaker
) -> None:
    await paper.admin.set_price(ETH, "3500")
    a = await _trade_with_entry(sessionmaker, QTY, ETH)
    await paper_client.place_order(symbol=ETH, side=Side.BUY, qty=QTY + QTY / 2,  # 0.005 manual
                                   order_type=OrderType.MARKET)
    result = await ActivityEnvironment().run(acts.refresh_trade, _check(a, ETH))
    assert result.unowned_qty == QTY / 2
    assert result.owned_qty == QTY


async def test_a_lasting_gap_costs_one_confirming_read_not_one_per_check(
    acts, paper, paper_client, sessionmaker
) -> None:
    """Every trade of the side checks on its own timer; while quantity nobody owns stays, their
    checks report it from the read that confirmed it (GAP_CONFIRMED_S), not each with a read."""
    sol = "SOLUSDT"
    await paper.admin.set_price(sol, "150")
    trades = [await _trade_with_entry(sessionmaker, Decimal("1"), sol) for _ in range(3)]
    await paper_client.place_order(symbol=sol, side=Side.BUY, qty=Decimal("4"),  # 1 manual
                                   order_type=OrderType.MARKET)
    since = time.time_ns()
    env = ActivityEnvironment()
    for trade in trades:
        result = await env.run(acts.refresh_trade, _check(trade, sol))
        assert result.unowned_qty == Decimal("1")
    reads = [r for r in await paper.admin.requests(since)
             if r["path"].endswith("position/get_pending_positions")]
    assert len(reads) == 2, reads  # the checks' shared read, and the one that confirmed the gap


async def test_records_that_moved_between_two_reads_are_told_apart_even_when_they_net_out(
    sessionmaker,
) -> None:
    """A close of one trade and an entry of another recorded between the two records reads of a
    confirmation leave the quantity owned as it was; the read between them may hold either.
    The reads' versions differ, so nothing is confirmed from them."""
    from activities.records import Records

    records = Records(sessionmaker)
    a = await _trade_with_entry(sessionmaker, QTY, "XRPUSDT")
    before = await records.owned("XRPUSDT", PositionSide.LONG)
    b = await _trade_with_entry(sessionmaker, QTY, "XRPUSDT")  # B's entry recorded
    async with sessionmaker() as session, session.begin():
        session.add(_row(a, Leg.EXIT, Side.SELL, QTY, "XRPUSDT"))  # A's close recorded
    after = await records.owned("XRPUSDT", PositionSide.LONG)
    assert after.qty == before.qty == QTY and b != a
    assert after.version != before.version
    assert (await records.owned("XRPUSDT", PositionSide.LONG)).version == after.version  # a read alone
