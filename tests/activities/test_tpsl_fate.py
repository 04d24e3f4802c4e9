"""What became of a TP/SL gone from the pending list (activities/tracking.py), the parts the
workflow tests do not reach: the trigger price an estimate takes, and an estimate withdrawn
when the TP/SL's history turns out to say it was cancelled (issue 19, gap A). Against the
paper exchange over HTTP and a real PostgreSQL."""

from __future__ import annotations

import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import text
from temporalio.testing import ActivityEnvironment

from activities.contract import OrderSnapshot
from activities.contract_tracking import ExternalCloseRequest
from activities.orders import OrderActivities
from activities.records import Records
from activities.tracking import ESTIMATED, TrackingActivities, trigger_price
from db.models import Trade
from trading.types import Leg, OrderStatus, OrderType, PositionMode, PositionSide, Side

BTC = "BTCUSDT"
QTY = Decimal("0.0100")
TP, SL = Decimal("96000"), Decimal("94000")
LONG, SHORT = PositionSide.LONG, PositionSide.SHORT


@pytest.mark.parametrize(("side", "tp", "sl", "mark", "expected"), [
    (LONG, TP, None, Decimal("1"), TP),  # one leg: that one
    (LONG, None, SL, None, SL),
    (LONG, TP, SL, Decimal("96100"), TP),  # the mark passed the TP
    (LONG, TP, SL, Decimal("93900"), SL),  # ... the SL
    (LONG, TP, SL, Decimal("95600"), TP),  # between: the nearer
    (LONG, TP, SL, Decimal("95000"), SL),  # as near: the stop
    (SHORT, SL, TP, Decimal("93900"), SL),  # a short's TP is below
    (SHORT, SL, TP, Decimal("96100"), TP),
    (LONG, TP, SL, None, SL),  # no mark: the stop
])
def test_an_estimate_takes_the_trigger_the_mark_points_to(side, tp, sl, mark, expected) -> None:
    assert trigger_price(side, tp, sl, mark) == expected


@pytest.fixture
async def trade_id(sessionmaker, paper) -> int:
    async with sessionmaker() as session, session.begin():
        await session.execute(text('TRUNCATE trade, "order", fill CASCADE'))
        row = Trade(workflow_id=f"t-{uuid.uuid4().hex}", symbol=BTC, side="LONG",
                    intent="OPEN_LONG", entry_type="market", status="TRACKING")
        session.add(row)
        await session.flush()
        return row.id


async def test_an_estimate_is_withdrawn_when_the_history_says_the_tpsl_was_cancelled(
    paper, paper_client, sessionmaker, trade_id
) -> None:
    """Taken as fired past the bound, the TP/SL then shows in its history as CANCELED: the
    estimate's row fills nothing any more (the quantity is the trade's again)."""
    await paper.admin.set_price(BTC, "95000")
    await paper_client.place_order(symbol=BTC, side=Side.BUY, qty=2 * QTY,
                                   order_type=OrderType.MARKET)
    [pos] = await paper_client.pending_positions(BTC)
    tpsl = await paper_client.place_tpsl_order(symbol=BTC, position_id=pos.position_id,
                                               tp_price=TP, tp_qty=QTY)
    await paper_client.cancel_tpsl_order(BTC, tpsl)
    records = Records(sessionmaker)
    estimate = OrderSnapshot(
        client_id=f"TWEST{uuid.uuid4().hex[:12].upper()}", order_id=tpsl, leg=Leg.TRIGGERED,
        fill_side=Side.SELL, order_type=OrderType.MARKET, qty=QTY, price=None,
        status=OrderStatus.FILLED, filled_qty=QTY, avg_price=TP, error=ESTIMATED,
    )
    await records.save_order(trade_id, BTC, estimate)
    orders = OrderActivities(paper_client, sessionmaker, visibility_window=timedelta(seconds=1))
    acts = TrackingActivities(paper_client, sessionmaker, orders, fill_tries=1)
    refine = ExternalCloseRequest(
        trade_id=trade_id, client_id=estimate.client_id, leg=Leg.TRIGGERED, symbol=BTC,
        side=LONG, position_mode=PositionMode.ONE_WAY, position_id=pos.position_id, qty=QTY,
        since_ms=0, require_fills=True, protection_order_id=tpsl, tp=TP, refine=True,
    )
    res = await ActivityEnvironment().run(acts.record_external_close, refine)
    assert res.snapshot is not None and res.snapshot.client_id == estimate.client_id
    assert (res.snapshot.filled_qty, res.snapshot.status) == (0, OrderStatus.CANCELED)
    row = await records.order_row(estimate.client_id)
    assert row is not None and (row.filled_qty, row.status) == (0, "CANCELED")
    assert "withdrawn" in (row.error or "")
