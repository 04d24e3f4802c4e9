"""The sub-second chase: the same rounds as the durable chase (workflows/chase.py), with
`asyncio.sleep` instead of durable timers, inside one heartbeating activity.

The heartbeat carries how many of the reserved client ids are used. A retried attempt (the
worker died) first confirms each of those orders terminal (cancelling one still working), then
chases on with the next id, so no order is placed twice and the remainder is always the target
minus every fill. When the workflow cancels the activity (a `cancel` signal), the working order
is cancelled and confirmed before the cancellation completes.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal

from temporalio import activity

from activities.contract import OrderRef, OrderRequest, OrderSnapshot
from activities.contract_tracking import (
    CollectRequest,
    CollectResult,
    FastChaseRequest,
    FastChaseResult,
)
from activities.errors import translated
from activities.orders import OrderActivities
from exchange.client import BitunixClient
from trading.chase import (
    FILLED,
    MAX_CHASES,
    SLIPPAGE,
    beyond_slippage,
    passive_price,
    remainder,
)
from trading.ids import client_order_id
from trading.types import Effect, OrderType


def reserved_ids(req: FastChaseRequest) -> list[str]:
    return [
        client_order_id(req.workflow_id, req.leg.letter, req.first_seq + i,
                        namespace=req.client_id_namespace)
        for i in range(req.max_chases + 1)
    ]


class FastChaseActivities:
    def __init__(self, client: BitunixClient, orders: OrderActivities) -> None:
        self._client = client
        self._orders = orders

    @activity.defn(name="chase_fast")
    async def chase_fast(self, req: FastChaseRequest) -> FastChaseResult:
        with translated():
            ids = reserved_ids(req)
            details = activity.info().heartbeat_details
            used = int(details[0]) if details else 0
            snaps: dict[str, OrderSnapshot] = {}
            for snap in (await self._collect(req.trade_id, req.symbol, ids[:used])):
                snaps[snap.client_id] = snap
            order: OrderSnapshot | None = None
            try:
                reason = await self._rounds(req, ids, used, snaps)
            except asyncio.CancelledError:
                working = [s for s in snaps.values() if not s.is_terminal]
                for snap in working:
                    await self._orders.cancel_order(self._ref(req, snap))
                raise
            working = [s for s in snaps.values() if not s.is_terminal]
            for order in working:
                snaps[order.client_id] = await self._orders.cancel_order(self._ref(req, order))
            placed = sum(1 for cid in ids if cid in snaps)
            return FastChaseResult(orders=list(snaps.values()), chases=max(placed - 1, 0),
                                   stop_reason=reason)

    async def _rounds(self, req: FastChaseRequest, ids: list[str], used: int,
                      snaps: dict[str, OrderSnapshot]) -> str:
        interval = float(req.interval_s)  # float-ok: time or rate, not money
        order = snaps.get(ids[used - 1]) if used else None
        while True:
            filled = req.already_filled + sum((s.filled_qty for s in snaps.values()), Decimal(0))
            left = remainder(req.target_qty, filled, step=req.qty_step, min_qty=req.min_qty,
                             opening=req.opening)
            if left == 0:
                return FILLED
            if order is None or order.is_terminal:
                if used >= len(ids):
                    return MAX_CHASES
                price = await self._price(req)
                if price is None:
                    await asyncio.sleep(interval)
                    continue
                if beyond_slippage(price, req.anchor_price, req.max_slippage_bps, req.fill_side):
                    return SLIPPAGE
                cid = ids[used]
                used += 1
                activity.heartbeat(used)  # before the send: a retry must know this id is taken
                order = await self._orders.place_order(self._limit(req, cid, left, price))
                snaps[cid] = order
                continue
            await asyncio.sleep(interval)
            activity.heartbeat(used)
            order = await self._orders.sync_order(self._ref(req, order))
            snaps[order.client_id] = order
            if order.is_terminal:
                continue
            price = await self._price(req)
            if price is None or price == order.price:
                continue
            order = await self._orders.cancel_order(self._ref(req, order))
            snaps[order.client_id] = order

    async def _price(self, req: FastChaseRequest) -> Decimal | None:
        book = await self._client.depth(req.symbol, 1)
        return passive_price(book.best_bid, book.best_ask, req.fill_side, req.price_tick)

    @staticmethod
    def _ref(req: FastChaseRequest, snap: OrderSnapshot) -> OrderRef:
        return OrderRef(trade_id=req.trade_id, client_id=snap.client_id, symbol=req.symbol,
                        order_id=snap.order_id)

    @staticmethod
    def _limit(req: FastChaseRequest, cid: str, qty: Decimal, price: Decimal) -> OrderRequest:
        return OrderRequest(
            trade_id=req.trade_id, client_id=cid, leg=req.leg, symbol=req.symbol, side=req.side,
            fill_side=req.fill_side, trade_side=req.trade_side, reduce_only=req.reduce_only,
            position_id=req.position_id, order_type=OrderType.LIMIT, effect=Effect.POST_ONLY,
            qty=qty, price=price, send_deadline=req.send_deadline,
            # The risk gate measures an entry's first claim by its whole target, leverage and
            # the margin last read, as a chase order sent by the workflow.
            **({"target_qty": req.target_qty, "leverage": req.leverage,
                "available_margin": req.available_margin} if req.opening else {}),
        )

    async def _collect(self, trade_id: int, symbol: str, client_ids: list[str]) -> list[OrderSnapshot]:
        out = []
        for cid in client_ids:
            row = await self._orders.records.order_row(cid)
            if row is None:
                continue  # reserved, never claimed
            out.append(await self._orders.cancel_order(
                OrderRef(trade_id=trade_id, client_id=cid, symbol=symbol,
                         order_id=row.exchange_order_id)
            ))
        return out

    @activity.defn(name="collect_orders")
    async def collect_orders(self, req: CollectRequest) -> CollectResult:
        with translated():
            return CollectResult(orders=await self._collect(req.trade_id, req.symbol, req.client_ids))
