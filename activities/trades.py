"""The `trade` row, written by the workflow at each step so reports never need Temporal."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity

from activities.contract import Failure
from activities.contract_tracking import Done, TradeRecord
from activities.errors import refuse
from activities.records import Records


class TradeActivities:
    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self._records = Records(sessionmaker)

    @activity.defn(name="record_trade")
    async def record_trade(self, rec: TradeRecord) -> Done:
        if not await self._records.save_trade(rec):
            raise refuse(Failure.TRADE_ROW_MISSING, f"trade row {rec.trade_id} does not exist")
        return Done()
