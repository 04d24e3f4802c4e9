"""The `trade` row, written by the workflow at each step so reports never need Temporal, and
read back for a reverse whose predecessor is no longer running."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity

from activities.contract import Failure
from activities.contract_tracking import Done, TradeOutcome, TradeOutcomeQuery, TradeRecord
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

    @activity.defn(name="read_trade_outcome")
    async def read_trade_outcome(self, query: TradeOutcomeQuery) -> TradeOutcome:
        return await self._records.trade_outcome(query.workflow_id)
