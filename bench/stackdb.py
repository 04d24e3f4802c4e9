"""Read-only look into a benchmark stack's database and Temporal, to check the burst: every
alert became exactly one workflow, one trade row and one order at the exchange."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from typing import Any

from sqlalchemy import text

from bench.alerts import BenchFailure
from bench.stack import Stack
from db.session import make_engine


def database_url(stack: Stack) -> str:
    if not stack.database_url:
        raise BenchFailure("cannot find the stack's database URL (set TRADEWIRE_DATABASE_URL)")
    return stack.database_url


async def fetch(stack: Stack, sql: str, params: dict[str, Any]) -> list[Any]:
    """The rows of one read-only query on the stack's database, on a connection of its own."""
    engine = make_engine(database_url(stack), pool_size=1)
    try:
        async with engine.connect() as conn:
            return list(await conn.execute(text(sql), params))
    finally:
        await engine.dispose()


async def orders_by_workflow(stack: Stack, workflow_ids: list[str]) -> dict[str, dict[str, Any]]:
    """workflow id → {"trades": n, "status": …, "client_ids": [every order row's client id]}."""
    found: dict[str, dict[str, Any]] = defaultdict(lambda: {"trades": 0, "client_ids": []})
    rows = await fetch(stack, (
        'SELECT t.workflow_id, t.id, t.status, o.client_order_id FROM trade t '
        'LEFT JOIN "order" o ON o.trade_id = t.id WHERE t.workflow_id = ANY(:ids)'
    ), {"ids": workflow_ids})
    seen_trades: set[int] = set()
    for workflow_id, trade_id, status, client_id in rows:
        entry = found[workflow_id]
        if trade_id not in seen_trades:
            seen_trades.add(trade_id)
            entry["trades"] += 1
            entry["status"] = status
        if client_id is not None:
            entry["client_ids"].append(client_id)
    return dict(found)


async def trade_statuses(stack: Stack, strategy_names: list[str]) -> dict[str, int]:
    rows = await fetch(stack, (
        "SELECT t.status, count(*) FROM trade t JOIN strategy s ON s.id = t.strategy_id "
        "WHERE s.name = ANY(:names) GROUP BY t.status"
    ), {"names": strategy_names})
    return {status: int(n) for status, n in rows}


async def workflows_exist(stack: Stack, workflow_ids: list[str], *, concurrency: int = 16
                          ) -> dict[str, bool]:
    """Ask Temporal for each workflow (describe, not the lagging visibility search)."""
    from temporalio.service import RPCError

    from workflows.converter import connect

    namespace = stack.env.get("TRADEWIRE_TEMPORAL_NAMESPACE", "default")
    client = await connect(stack.temporal_target, namespace)
    gate = asyncio.Semaphore(concurrency)
    result: dict[str, bool] = {}

    async def one(workflow_id: str) -> None:
        async with gate:
            try:
                await client.get_workflow_handle(workflow_id).describe()
                result[workflow_id] = True
            except RPCError:
                result[workflow_id] = False

    await asyncio.gather(*(one(w) for w in workflow_ids))
    return result


async def refusal_reasons(stack: Stack, strategy_names: list[str], top: int = 5
                          ) -> dict[str, int]:
    """Why trades of these strategies ended REFUSED or FAILED (their error, first 160 chars)."""
    rows = await fetch(stack, (
        "SELECT t.status || ': ' || left(coalesce(t.error, '(no error text)'), 160) AS r, "
        "count(*) FROM trade t JOIN strategy s ON s.id = t.strategy_id "
        "WHERE s.name = ANY(:names) AND t.status IN ('REFUSED', 'FAILED') "
        "GROUP BY r ORDER BY count(*) DESC LIMIT :top"
    ), {"names": strategy_names, "top": top})
    return {reason: int(n) for reason, n in rows}


async def trade_of_client_ids(stack: Stack, client_ids: list[str]) -> dict[str, int]:
    """client order id → the id of the trade that sent it."""
    rows = await fetch(stack, (
        'SELECT client_order_id, trade_id FROM "order" WHERE client_order_id = ANY(:ids)'
    ), {"ids": client_ids})
    return {client_id: int(trade_id) for client_id, trade_id in rows}


class TradeWatch:
    """Polls one trade's status over a connection kept for a whole series."""

    UNSETTLED = ("PENDING", "ENTERING")

    def __init__(self, stack: Stack, *, poll_s: float = 0.01) -> None:  # float-ok: seconds
        self._engine = make_engine(database_url(stack), pool_size=1)
        self._poll_s = poll_s

    async def aclose(self) -> None:
        await self._engine.dispose()

    async def until_settled(self, trade_id: int, timeout_s: float) -> str:  # float-ok: seconds
        """The trade's status once it is past its entry (TRACKING or ended), or the status it
        still had when `timeout_s` ran out."""
        deadline = asyncio.get_running_loop().time() + timeout_s
        async with self._engine.connect() as conn:
            while True:
                status = (await conn.execute(
                    text("SELECT status FROM trade WHERE id = :id"), {"id": trade_id}
                )).scalar_one_or_none()
                await conn.rollback()  # a fresh snapshot for the next poll
                if status is not None and status not in self.UNSETTLED:
                    return str(status)
                if asyncio.get_running_loop().time() > deadline:
                    return str(status)
                await asyncio.sleep(self._poll_s)
