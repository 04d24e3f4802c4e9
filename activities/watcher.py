"""The account watcher: one poll loop per account, whatever the number of open trades.

Each round reads the account's pending positions and open orders (a fixed number of requests:
one for positions, one per hundred open orders), compares them with the previous round, and
signals `exchange_changed` to the trade workflows whose orders or position changed. The first
round signals every open trade (changes may have happened while nobody watched). It runs as
one long heartbeating activity; when its worker dies, Temporal starts it again elsewhere.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.client import Client
from temporalio.service import RPCError

from activities.contract_tracking import Done, WatcherInput
from activities.records import OpenTrade, Records
from exchange.client import BitunixClient
from exchange.errors import ExchangeError
from trading.types import PositionSide
from workflows.contract import ExchangeChanged

log = logging.getLogger("activities.watcher")
PAGE = 100
RUN_FOR_S = 50 * 60  # then the workflow continues as new (its history stays small)


@dataclass(frozen=True)
class AccountView:
    orders: dict[str, tuple[str, Decimal]]  # order id → (status, filled qty)
    positions: dict[tuple[str, PositionSide], tuple[str, Decimal]]  # → (position id, qty)


def changes(before: AccountView, now: AccountView) -> tuple[set[str], set[tuple[str, PositionSide]]]:
    """Order ids and (symbol, side) positions that differ between two rounds."""
    orders = {oid for oid in before.orders.keys() | now.orders.keys()
              if before.orders.get(oid) != now.orders.get(oid)}
    positions = {key for key in before.positions.keys() | now.positions.keys()
                 if before.positions.get(key) != now.positions.get(key)}
    return orders, positions


def targets(
    orders: set[str],
    positions: set[tuple[str, PositionSide]],
    order_owner: dict[str, str],
    open_trades: Iterable[OpenTrade],
) -> set[str]:
    """The workflow ids to signal: owners of changed orders, open trades on changed positions."""
    out = {order_owner[oid] for oid in orders if oid in order_owner}
    out |= {t.workflow_id for t in open_trades if (t.symbol, t.side) in positions}
    return out


def orphans(view: AccountView, open_trades: Iterable[OpenTrade]) -> set[str]:
    """Trades that hold quantity by their own record while the exchange shows no position on
    their side: a position can open and close between two rounds, leaving no difference."""
    return {
        t.workflow_id for t in open_trades
        if t.holds and (t.symbol, t.side) not in view.positions
    }


class WatcherActivities:
    def __init__(
        self,
        client: BitunixClient,
        sessionmaker: async_sessionmaker[AsyncSession],
        temporal: Client,
    ) -> None:
        self._client = client
        self._records = Records(sessionmaker)
        self._temporal = temporal

    async def _view(self) -> AccountView:
        positions = await self._client.pending_positions()
        orders: dict[str, tuple[str, Decimal]] = {}
        skip = 0
        while True:
            page = await self._client.pending_orders(skip=skip, limit=PAGE)
            orders.update({o.order_id: (o.status.value, o.filled_qty) for o in page})
            if len(page) < PAGE:
                break
            skip += PAGE
        return AccountView(
            orders=orders,
            positions={(p.symbol, p.side): (p.position_id, p.qty) for p in positions if p.qty > 0},
        )

    async def _signal(self, workflow_ids: Iterable[str], reason: str) -> None:
        for wid in sorted(workflow_ids):
            try:
                await self._temporal.get_workflow_handle(wid).signal(
                    "exchange_changed", ExchangeChanged(reason=reason)
                )
            except RPCError as exc:  # finished meanwhile, or never started
                log.debug("could not signal %s: %s", wid, exc)

    @activity.defn(name="watch_account")
    async def watch_account(self, inp: WatcherInput) -> Done:
        interval = float(inp.interval_s)  # float-ok: time or rate, not money
        ends = time.monotonic() + RUN_FOR_S
        before: AccountView | None = None
        while time.monotonic() < ends:
            activity.heartbeat()
            try:
                now = await self._view()
            except ExchangeError as exc:
                log.warning("account watcher: %s", exc)
                await asyncio.sleep(interval)
                continue
            open_trades = await self._records.open_trades()
            if before is None:
                wanted = {t.workflow_id for t in open_trades}
                reason = "watcher started"
            else:
                orders, positions = changes(before, now)
                wanted = orphans(now, open_trades)
                if orders or positions:
                    owners = await self._records.order_ids_of_trades()
                    wanted |= targets(orders, positions, owners, open_trades)
                reason = "orders or position changed"
            if wanted:
                log.info("account watcher: %s; signalling %d trade(s)", reason, len(wanted))
                await self._signal(wanted, reason)
            before = now
            await asyncio.sleep(interval)
        return Done()
