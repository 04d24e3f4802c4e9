"""A trade workflow under test: a real worker on a uuid task queue, real activities talking to
the paper exchange over HTTP and to the real PostgreSQL, and helpers to start and watch trades."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client, WorkflowHandle
from temporalio.common import SearchAttributePair, TypedSearchAttributes

from db.models import Fill as FillRow
from db.models import Order as OrderRow
from db.models import Signal, Trade
from exchange.client import BitunixClient
from settings import Settings
from tests.support.paper import PaperExchange
from tests.support.temporal import temporal_cli
from tests.support.waiting import NotYet
from tests.support.waiting import eventually as until  # every 0.1 s for up to 60 s (WAIT_S)
from trading.ids import HASH_CHARS, PREFIX, client_order_id
from trading.types import EntryType, Intent, PositionSide, SignalOutcome, TradeStatus
from workflows import search_attributes as sa
from workflows.contract import StrategySnapshot, TradeInput
from workflows.state import TradeState
from workflows.summary import static_summary
from workflows.trade import TradeWorkflow

WAIT_S = 60.0
HISTORIES = Path(__file__).resolve().parents[1] / "histories"
SAVE_HISTORIES = "TRADEWIRE_SAVE_HISTORIES"


async def cli(*args: str) -> str:
    """Run the `temporal` CLI, as an operator would; its output, or a failure with it."""
    proc = await asyncio.create_subprocess_exec(
        temporal_cli(), *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    out, _ = await proc.communicate()
    assert proc.returncode == 0, out.decode()
    return out.decode()


def strategy(name: str = "test", **overrides: Any) -> StrategySnapshot:
    base: dict[str, Any] = {
        "name": name,
        "chase_interval_s": Decimal(1),
        "max_chases": 5,
        "tracking_interval_s": 2,
        "max_alert_age_s": 60,
    }
    return StrategySnapshot(**(base | overrides))


@dataclass
class Harness:
    client: Client
    task_queue: str
    paper: PaperExchange
    exchange: BitunixClient
    sessionmaker: async_sessionmaker[AsyncSession]
    settings: Settings
    started: list[WorkflowHandle] = field(default_factory=list)

    async def trade(
        self,
        *,
        intent: Intent = Intent.OPEN_LONG,
        symbol: str = "BTCUSDT",
        entry_type: EntryType = EntryType.MARKET,
        strat: StrategySnapshot | None = None,
        workflow_id: str | None = None,
        start: dict[str, Any] | None = None,
        strategy_id: int | None = None,
        **fields: Any,
    ) -> WorkflowHandle:
        """Record the alert's ACCEPTED signal and the trade row (as the webhook does) and start
        TradeWorkflow (which checks them before anything is sent: activities/ownership.py)."""
        strat = strat or strategy()
        wid = workflow_id or f"trade-{strat.name}-{uuid.uuid4().hex[:12]}"
        side = PositionSide.LONG if intent in (Intent.OPEN_LONG, Intent.REVERSE_TO_LONG) else PositionSide.SHORT
        async with self.sessionmaker() as session, session.begin():
            alert = Signal(strategy_id=strategy_id, strategy_name=strat.name,
                           outcome=SignalOutcome.ACCEPTED.value, symbol=symbol,
                           intent=intent.value, workflow_id=wid)
            session.add(alert)
            await session.flush()
            row = Trade(workflow_id=wid, signal_id=alert.id, strategy_id=strategy_id,
                        symbol=symbol, side=side.value, intent=intent.value,
                        entry_type=entry_type.value, status=TradeStatus.PENDING.value)
            session.add(row)
            await session.flush()
            trade_id = row.id
        inp = TradeInput(trade_id=trade_id, strategy=strat, symbol=symbol, intent=intent,
                         entry_type=entry_type, received_at=datetime.now(UTC), **fields)
        options = {"task_queue": self.task_queue, **(start or {})}  # start may name another
        handle = await self.client.start_workflow(
            TradeWorkflow.run, inp, id=wid,
            search_attributes=TypedSearchAttributes([
                SearchAttributePair(sa.SYMBOL, symbol),
                SearchAttributePair(sa.SIDE, side.value),
                SearchAttributePair(sa.STRATEGY, strat.name),
                SearchAttributePair(sa.TRADE_STATUS, TradeStatus.PENDING.value),
            ]),
            static_summary=static_summary(inp),
            **options,
        )
        self.started.append(handle)
        return handle

    async def result(self, handle: WorkflowHandle, timeout_s: float = WAIT_S):
        """The workflow's result, or a failure naming the trade's last state."""
        try:
            return await asyncio.wait_for(handle.result(), timeout_s)
        except TimeoutError:
            raise NotYet(f"{handle.id} did not end; last state: {await self.state(handle)}") from None

    async def keep_history(self, handle: WorkflowHandle, name: str) -> None:
        """With TRADEWIRE_SAVE_HISTORIES=1, save the finished workflow's history for the replay
        test (tests/histories/README.md says when to refresh them)."""
        if os.environ.get(SAVE_HISTORIES) != "1":
            return
        history = await handle.fetch_history()
        (HISTORIES / f"{name}.json").write_text(history.to_json())

    async def state(self, handle: WorkflowHandle) -> TradeState:
        return await handle.query(TradeWorkflow.state)

    async def until_state(self, handle: WorkflowHandle, check: Callable[[TradeState], bool],
                          what: str, timeout_s: float = WAIT_S) -> TradeState:
        async def probe() -> TradeState | None:
            st = await self.state(handle)
            return st if check(st) else None
        return await until(probe, what, timeout_s)

    async def trade_row(self, handle_or_id: WorkflowHandle | int) -> Trade:
        async with self.sessionmaker() as session:
            if isinstance(handle_or_id, int):
                row = await session.get(Trade, handle_or_id)
            else:
                row = await session.scalar(select(Trade).where(Trade.workflow_id == handle_or_id.id))
            assert row is not None
            return row

    async def orders(self, trade_id: int) -> list[OrderRow]:
        async with self.sessionmaker() as session:
            rows = await session.scalars(
                select(OrderRow).where(OrderRow.trade_id == trade_id).order_by(OrderRow.id)
            )
            return list(rows.all())

    async def fills(self, trade_id: int) -> list[FillRow]:
        async with self.sessionmaker() as session:
            rows = await session.scalars(
                select(FillRow).join(OrderRow, OrderRow.id == FillRow.order_id)
                .where(OrderRow.trade_id == trade_id).order_by(FillRow.id)
            )
            return list(rows.all())

    async def position_qty(self, symbol: str = "BTCUSDT", side: str = "LONG") -> Decimal:
        positions = await self.exchange.pending_positions(symbol)
        return sum((p.qty for p in positions if p.side.value == side), Decimal(0))

    async def place_requests(self, since_ns: int = 0, path: str = "trade/place_order") -> list[dict]:
        return [r for r in await self.paper.admin.requests(since_ns) if r["path"].endswith(path)]

    async def placed_by(self, *handles: WorkflowHandle) -> list[dict]:
        """The place_order requests of these trades (told apart by their workflow's hash in
        the client id): a trade of an earlier test still winding down on the shared paper
        exchange may place its own meanwhile."""
        hashes = {client_order_id(x.id, "E", 1)[:len(PREFIX) + HASH_CHARS] for x in handles}
        return [r for r in await self.place_requests()
                if (r["client_id"] or "")[:len(PREFIX) + HASH_CHARS] in hashes]
