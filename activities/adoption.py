"""Adopting quantity no trade owns (docs/design.md#incident-policies): the one activity that
books an incident's unowned quantity into the trade that will protect, track and close it.

The trade's workflow (workflows/adoption.py) calls it once; the row it writes is the trade's
whole entry, so the ownership audit counts the quantity as owned from that commit on.
"""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity

from activities.contract import AdoptRequest, AdoptResult, Failure
from activities.errors import refuse, translated, try_again
from activities.records import NotOwner, OrdersInFlight, Records
from exchange.client import BitunixClient
from exchange.models import Position


class AdoptionActivities:
    def __init__(self, client: BitunixClient,
                 sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self._client = client
        self._records = Records(sessionmaker)

    @activity.defn(name="adopt_quantity")
    async def adopt_quantity(self, req: AdoptRequest) -> AdoptResult:
        async def position() -> tuple[Position, Decimal] | None:
            held = [p for p in await self._client.pending_positions(symbol=req.symbol)
                    if p.symbol == req.symbol and p.side is req.side and p.qty > 0]
            if not held:
                return None
            pos = held[0]
            if pos.avg_open_price is not None:
                return pos, pos.avg_open_price
            tickers = await self._client.tickers([req.symbol])
            mark = next((t.mark_price for t in tickers if t.symbol == req.symbol), None)
            if mark is None:
                raise try_again(Failure.PRICE_UNKNOWN,
                                f"no price to book {req.symbol} at yet: reading again")
            return pos, mark

        async def filled_now(client_ids: list[str]) -> dict[str, Decimal]:
            return {cid: (await self._client.order_detail(client_id=cid)).filled_qty
                    for cid in client_ids}

        with translated():
            try:
                return await self._records.adopt(req, activity.info().workflow_id,
                                                 req.side.entry_side, position, filled_now)
            except OrdersInFlight as exc:
                raise try_again(Failure.ORDERS_IN_FLIGHT, str(exc)) from exc
            except NotOwner as exc:
                raise refuse(Failure.FOREIGN_START, str(exc)) from exc
