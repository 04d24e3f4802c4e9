"""TP/SL orders of a trade: place (or adopt), move/resize, cancel (docs/design.md#protection).

BitUnix gives TP/SL orders no client id, so the `order` row (keyed by our deterministic client
id) is committed before the first send, placements on one position run one at a time (a
PostgreSQL advisory lock on the position id), and every send is preceded by a look at the
position's pending TP/SL orders: a matching one that no row records yet is adopted. That covers
a retry of a placement whose answer was lost, and as well a later placement under a new client
id after the retries of such a placement ran out (review finding 8).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity

from activities.contract import (
    Failure,
    OrderRequest,
    OrderSnapshot,
    ProtectionLevel,
    ProtectionRef,
    ProtectionRequest,
    ProtectionSnapshot,
)
from activities.contract_tracking import Done
from activities.errors import protection_refused, translated, try_again
from activities.records import Records
from exchange.client import BitunixClient
from exchange.errors import NotFoundYet, OutcomeUnknown, Rejected
from exchange.models import TpslOrder
from trading.types import Leg, OrderStatus, OrderType

log = logging.getLogger("activities.protection")


class ProtectionActivities:
    def __init__(
        self,
        client: BitunixClient,
        sessionmaker: async_sessionmaker[AsyncSession],
        *,
        adopt_tries: int = 4,
        adopt_pause_s: float = 0.25,  # float-ok: time or rate, not money
    ) -> None:
        self._client = client
        self._sessionmaker = sessionmaker
        self._records = Records(sessionmaker)
        self._adopt_tries = adopt_tries
        self._adopt_pause_s = adopt_pause_s

    @contextlib.asynccontextmanager
    async def _one_at_a_time(self, position_id: str) -> AsyncIterator[None]:
        """TP/SL placements on one position never overlap, so an adoption can tell ours apart."""
        async with self._sessionmaker() as session:
            key = {"k": f"tpsl:{position_id}"}
            await session.execute(text("SELECT pg_advisory_lock(hashtext(:k))"), key)
            try:
                yield
            finally:
                await session.execute(text("SELECT pg_advisory_unlock(hashtext(:k))"), key)
                await session.commit()

    @activity.defn(name="place_protection")
    async def place_protection(self, req: ProtectionRequest) -> ProtectionSnapshot:
        with translated():
            async with self._one_at_a_time(req.position_id):
                if req.order_id is not None:
                    return await self._modify(req)
                claim = await self._records.claim_order(_row_request(req))
                # Look before every send: an earlier attempt, or an earlier placement of this
                # trade whose answer never came, may have created it. A re-send looks as long
                # as a lost answer does, as the lists may show a new TP/SL late.
                resend = not claim.created or activity.info().attempt > 1
                adopted = await self._adopt(req, tries=self._adopt_tries if resend else 1)
                if adopted is not None:
                    return adopted
                try:
                    order_id = await self._send(req)
                except OutcomeUnknown:
                    adopted = await self._adopt(req, tries=self._adopt_tries)
                    if adopted is None:
                        raise  # retryable: the next attempt lists and adopts before re-sending
                    return adopted
                except Rejected as exc:
                    await self._save(req, None, OrderStatus.REJECTED, error=str(exc))
                    raise protection_refused(exc) from exc
                return await self._save(req, order_id, OrderStatus.NEW)

    async def _send(self, req: ProtectionRequest) -> str:
        if req.level is ProtectionLevel.POSITION:
            return await self._client.place_position_tpsl(
                symbol=req.symbol, position_id=req.position_id,
                tp_price=req.tp, tp_stop_type=req.stop_type if req.tp else None,
                sl_price=req.sl, sl_stop_type=req.stop_type if req.sl else None,
            )
        return await self._client.place_tpsl_order(
            symbol=req.symbol, position_id=req.position_id,
            tp_price=req.tp, tp_stop_type=req.stop_type if req.tp else None,
            tp_order_type=OrderType.MARKET if req.tp else None, tp_qty=req.qty if req.tp else None,
            sl_price=req.sl, sl_stop_type=req.stop_type if req.sl else None,
            sl_order_type=OrderType.MARKET if req.sl else None, sl_qty=req.qty if req.sl else None,
        )

    async def _modify(self, req: ProtectionRequest) -> ProtectionSnapshot:
        assert req.order_id is not None
        try:
            if req.level is ProtectionLevel.POSITION:
                await self._client.modify_position_tpsl(
                    symbol=req.symbol, position_id=req.position_id,
                    tp_price=req.tp, tp_stop_type=req.stop_type if req.tp else None,
                    sl_price=req.sl, sl_stop_type=req.stop_type if req.sl else None,
                )
            else:
                await self._client.modify_tpsl_order(
                    order_id=req.order_id,
                    tp_price=req.tp, tp_stop_type=req.stop_type if req.tp else None,
                    tp_order_type=OrderType.MARKET if req.tp else None,
                    tp_qty=req.qty if req.tp else None,
                    sl_price=req.sl, sl_stop_type=req.stop_type if req.sl else None,
                    sl_order_type=OrderType.MARKET if req.sl else None,
                    sl_qty=req.qty if req.sl else None,
                )
        except (Rejected, NotFoundYet) as exc:
            raise protection_refused(exc) from exc  # type: ignore[arg-type]
        return await self._save(req, req.order_id, OrderStatus.NEW)

    async def _adopt(self, req: ProtectionRequest, *, tries: int) -> ProtectionSnapshot | None:
        """A pending TP/SL on the position that matches `req` and no row records yet."""
        for attempt in range(tries):
            recorded = await self._records.recorded_exchange_ids(req.symbol, Leg.PROTECTION)
            pending = await self._client.all_pending_tpsl_orders(req.symbol, req.position_id)
            for order in pending:
                if order.id not in recorded and _matches(order, req):
                    log.info("TP/SL %s found at the exchange: adopted, not re-sent", order.id)
                    return await self._save(req, order.id, OrderStatus.NEW, adopted=True)
            if attempt + 1 < tries:
                await asyncio.sleep(self._adopt_pause_s)
        return None

    async def _save(
        self, req: ProtectionRequest, order_id: str | None, status: OrderStatus, *,
        adopted: bool = False, error: str | None = None,
    ) -> ProtectionSnapshot:
        row = OrderSnapshot(
            client_id=req.client_id, order_id=order_id, leg=Leg.PROTECTION,
            fill_side=req.position_side.exit_side, order_type=OrderType.MARKET, qty=req.qty,
            price=None, status=status, adopted=adopted, error=error,
        )
        await self._records.save_order(req.trade_id, req.symbol, row, reduce_only=True)
        return ProtectionSnapshot(
            client_id=req.client_id, order_id=order_id or "", level=req.level, qty=req.qty,
            tp=req.tp, sl=req.sl, adopted=adopted,
        )

    @activity.defn(name="cancel_protection")
    async def cancel_protection(self, ref: ProtectionRef) -> Done:
        """Cancel a TP/SL order; one that is already gone (fired, cancelled with its position)
        counts as cancelled."""
        with translated():
            try:
                await self._client.cancel_tpsl_order(ref.symbol, ref.order_id)
            except (Rejected, NotFoundYet) as exc:
                # Every page: one beyond the first is as live as any (review finding 7).
                pending = await self._client.all_pending_tpsl_orders(ref.symbol)
                if any(o.id == ref.order_id for o in pending):
                    raise try_again(
                        Failure.CANCEL_NOT_CONFIRMED,
                        f"TP/SL {ref.order_id} is still pending after a refused cancel: {exc}",
                    ) from exc
            row = await self._records.order_row(ref.client_id)
            if row is not None and row.status == OrderStatus.NEW.value:
                await self._records.set_order_status(ref.client_id, OrderStatus.CANCELED)
            return Done()


def _row_request(req: ProtectionRequest) -> OrderRequest:
    exit_side = req.position_side.exit_side
    return OrderRequest(
        trade_id=req.trade_id, client_id=req.client_id, leg=Leg.PROTECTION, symbol=req.symbol,
        side=exit_side, fill_side=exit_side, reduce_only=True, order_type=OrderType.MARKET,
        qty=req.qty,
    )


def _matches(order: TpslOrder, req: ProtectionRequest) -> bool:
    if order.tp_price != req.tp or order.sl_price != req.sl:
        return False
    if req.level is ProtectionLevel.POSITION:
        return order.tp_qty is None and order.sl_qty is None
    return (req.tp is None or order.tp_qty == req.qty) and (req.sl is None or order.sl_qty == req.qty)
