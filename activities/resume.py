"""Reading back a trade whose workflow is gone (docs/design.md#resuming-a-trade): its books from
its rows, and the TP/SL that protects it at the exchange, for the run that resumes it.

The rows are the trade's truth: every order was written before it was sent and after each
answer. Only the TP/SL's level and size are not in its row; the exchange's pending list has
them (a TP/SL no longer pending is left for the resumed run's reconciliation to explain)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity

from activities.contract import (
    BooksRequest,
    OrderSnapshot,
    ProtectionLevel,
    ProtectionSnapshot,
    TradeBooks,
)
from activities.errors import translated
from db.models import Order as OrderRow
from db.models import Trade
from exchange.client import BitunixClient
from trading.ids import sequence_of
from trading.types import Leg, OrderStatus, OrderType, Side


class ResumeActivities:
    def __init__(self, client: BitunixClient,
                 sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self._client = client
        self._sessionmaker = sessionmaker

    @activity.defn(name="read_books")
    async def read_books(self, req: BooksRequest) -> TradeBooks:
        async with self._sessionmaker() as session:
            trade = await session.get(Trade, req.trade_id)
            rows = list((await session.scalars(
                select(OrderRow).where(OrderRow.trade_id == req.trade_id).order_by(OrderRow.id)
            )).all())
        if trade is None:
            return TradeBooks(found=False)
        seq = max((sequence_of(r.client_order_id) for r in rows), default=0)
        orders = [_snapshot(r) for r in rows if r.leg != Leg.PROTECTION.value]
        live = [r for r in rows if r.leg == Leg.PROTECTION.value and r.exchange_order_id
                and r.status == OrderStatus.NEW.value]
        protection = None
        if live:
            row = live[-1]
            with translated():
                pending = await self._client.all_pending_tpsl_orders(req.symbol)
            found = next((o for o in pending if o.id == row.exchange_order_id), None)
            if found is not None:
                sized = found.sl_qty if found.sl_qty is not None else found.tp_qty
                protection = ProtectionSnapshot(
                    client_id=row.client_order_id, order_id=found.id,
                    level=ProtectionLevel.POSITION if sized is None else ProtectionLevel.ORDER,
                    qty=sized if sized is not None else row.qty,
                    tp=found.tp_price, sl=found.sl_price, adopted=True,
                )
        return TradeBooks(
            found=True, status=trade.status, orders=orders, protection=protection, seq=seq,
            tp=trade.tp_price if trade.tp_price is not None else (
                protection.tp if protection else None),
            sl=trade.sl_price if trade.sl_price is not None else (
                protection.sl if protection else None),
            target_qty=trade.target_qty, leverage=trade.leverage,
            position_id=trade.position_id,
            last_seen_ms=int(trade.updated_at.timestamp() * 1000),  # float-ok: ms of a time
            wanted_protection=any(r.leg == Leg.PROTECTION.value for r in rows),
        )


def _snapshot(row: OrderRow) -> OrderSnapshot:
    return OrderSnapshot(
        client_id=row.client_order_id, order_id=row.exchange_order_id, leg=Leg(row.leg),
        fill_side=Side(row.side), order_type=OrderType(row.order_type), qty=row.qty,
        price=row.price, status=OrderStatus(row.status), filled_qty=row.filled_qty,
        avg_price=row.avg_price, fee=row.fee, adopted=True, error=row.error,
    )
