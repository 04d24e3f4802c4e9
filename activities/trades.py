"""The `trade` row, written by the workflow at each step so reports never need Temporal, and
read back for a reverse whose predecessor is no longer running."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity

from activities.contract import Failure, StartCheck
from activities.contract_tracking import Done, TradeOutcome, TradeOutcomeQuery, TradeRecord
from activities.errors import refuse
from activities.ownership import refusal
from activities.records import Records


class TradeActivities:
    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self._records = Records(sessionmaker)

    @activity.defn(name="record_trade")
    async def record_trade(self, rec: TradeRecord) -> Done:
        """Only the calling workflow's own row is written (its id from Temporal, never from
        the record): a run that names another trade's id changes nothing of it."""
        workflow_id = activity.info().workflow_id
        if not await self._records.save_trade(rec, workflow_id):
            origin = await self._records.trade_origin(rec.trade_id)
            if origin is None:
                raise refuse(Failure.TRADE_ROW_MISSING, f"trade row {rec.trade_id} does not exist")
            raise refuse(Failure.FOREIGN_START, f"trade #{rec.trade_id} belongs to workflow "
                         f"{origin.workflow_id}, not {workflow_id}: not recorded")
        return Done()

    @activity.defn(name="check_trade_start")
    async def check_trade_start(self, req: StartCheck) -> Done:
        """Whether this run may act for the trade (activities/ownership.py): for the runs
        that would act before their first venue read (a reverse closes the trades it
        replaces; a continued run tracks), ForeignStart when not."""
        refused = refusal(await self._records.trade_origin(req.trade_id), trade_id=req.trade_id,
                          workflow_id=activity.info().workflow_id, symbol=req.symbol,
                          side=req.side)
        if refused is not None:
            raise refuse(Failure.FOREIGN_START, refused)
        return Done()

    @activity.defn(name="read_trade_outcome")
    async def read_trade_outcome(self, query: TradeOutcomeQuery) -> TradeOutcome:
        return await self._records.trade_outcome(query.workflow_id)
