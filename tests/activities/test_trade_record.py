"""The trade row as the workflow records it (activities/records.py `save_trade`), on the real
PostgreSQL: a record that comes late never takes an ended trade back."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from activities.contract_tracking import TradeRecord
from activities.records import Records
from db.models import Signal, Trade
from trading.types import SignalOutcome, TradeStatus

QTY = Decimal("0.010")


async def _trade(db: async_sessionmaker[AsyncSession], workflow_id: str) -> int:
    async with db() as session, session.begin():
        alert = Signal(strategy_name="s", outcome=SignalOutcome.ACCEPTED.value,
                       symbol="BTCUSDT", intent="OPEN_LONG", workflow_id=workflow_id)
        session.add(alert)
        await session.flush()
        row = Trade(workflow_id=workflow_id, signal_id=alert.id, symbol="BTCUSDT", side="LONG",
                    intent="OPEN_LONG", entry_type="market", status=TradeStatus.TRACKING.value)
        session.add(row)
        await session.flush()
        return row.id


async def test_a_record_of_an_earlier_step_run_again_late_leaves_the_ended_trade_ended(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    """A call may run twice (an activity's attempt after its timeout; an exit's local
    activities run again when their workflow task was lost): the CLOSING record of the exit's
    start, run again after the CLOSED one, must not take the row back to CLOSING."""
    records = Records(sessionmaker)
    trade_id = await _trade(sessionmaker, "trade-record-late")
    closing = TradeRecord(trade_id=trade_id, status=TradeStatus.CLOSING, filled_qty=QTY)
    closed = TradeRecord(trade_id=trade_id, status=TradeStatus.CLOSED, filled_qty=QTY,
                         closed_qty=QTY, realized_pnl=Decimal("1.5"))
    assert await records.save_trade(closing, "trade-record-late")
    assert await records.save_trade(closed, "trade-record-late")
    assert await records.save_trade(closing, "trade-record-late")  # late
    async with sessionmaker() as session:
        row = await session.get(Trade, trade_id)
    assert row is not None
    assert (row.status, row.closed_qty, row.realized_pnl) == ("CLOSED", QTY, Decimal("1.5"))
    assert row.closed_at is not None


async def test_a_tracking_trade_still_moves_from_closing_back_to_tracking(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    """A failed exit attempt hands the trade back to tracking: only an ended row is kept."""
    records = Records(sessionmaker)
    trade_id = await _trade(sessionmaker, "trade-record-retry")
    for status in (TradeStatus.CLOSING, TradeStatus.TRACKING):
        assert await records.save_trade(TradeRecord(trade_id=trade_id, status=status,
                                                    filled_qty=QTY), "trade-record-retry")
    async with sessionmaker() as session:
        row = await session.get(Trade, trade_id)
    assert row is not None and row.status == "TRACKING"
