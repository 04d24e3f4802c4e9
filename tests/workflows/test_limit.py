"""Limit entries: a resting trade found through the Temporal visibility query and cancelled by
the `cancel` signal; partial fills with TP/SL sized and resized to the trade's own quantity,
beside another trade on the same symbol that keeps its own."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal

import pytest_asyncio
from temporalio.client import Client

from tests.support.paper import PaperExchange, run_paper_exchange
from tests.workflows.conftest import RATE_SCALE, running_harness
from tests.workflows.harness import Harness, cli, until
from trading.types import EntryType, OrderStatus, TradeStatus
from workflows.contract import Sizing
from workflows.messages import CancelRequest, CloseRequest
from workflows.trade import TradeWorkflow

BTC = "BTCUSDT"
QTY = Decimal("0.0100")


async def _listed(client: Client, query: str, workflow_id: str) -> bool:
    return any([w.id async for w in client.list_workflows(query) if w.id == workflow_id])


async def test_resting_limit_is_listed_and_cancel_ends_it_cancelled(harness: Harness) -> None:
    h = harness
    await h.paper.admin.set_price(BTC, "95000")
    handle = await h.trade(entry_type=EntryType.LIMIT, sizing=Sizing(size=QTY),
                           reference_price=Decimal("94000"))
    st = await h.until_state(handle, lambda s: s.open_orders, "the limit order rests")
    assert st.status is TradeStatus.ENTERING and st.open_orders[0].price == Decimal("94000")
    query = f'Symbol="{BTC}" AND TradeStatus="ENTERING" AND Strategy="test"'
    await until(lambda: _listed(h.client, query, handle.id), "listed by the visibility query")

    # What an operator types (README): the CLI's JSON input reaches the pydantic converter.
    target = h.client.service_client.config.target_host
    listed = await cli("workflow", "list", "--address", target, "--query", query, "-o", "json")
    assert handle.id in listed
    await cli("workflow", "signal", "--address", target, "--workflow-id", handle.id,
               "--name", "cancel", "--input", '{"flatten": true}')
    result = await h.result(handle)
    assert result.status is TradeStatus.CANCELLED and result.filled_qty == 0
    [order] = await h.orders(result.trade_id)
    assert order.status == OrderStatus.CANCELED
    assert not await h.exchange.pending_orders(BTC)
    assert (await h.trade_row(handle)).status == "CANCELLED"
    await until(lambda: _listed(h.client, 'TradeStatus="CANCELLED"', handle.id), "listed CANCELLED")
    await h.keep_history(handle, "limit_cancelled")


@pytest_asyncio.fixture(loop_scope="session")
async def partial_paper() -> AsyncIterator[PaperExchange]:
    async with run_paper_exchange(paper_partial_fills=True,
                                  paper_rate_limit_scale=RATE_SCALE) as exchange:
        yield exchange


async def test_partial_fills_resize_protection_and_two_trades_close_only_their_own(
    temporal_client: Client, partial_paper: PaperExchange, wf_db, task_queue: str
) -> None:
    async with running_harness(temporal_client, partial_paper, wf_db, task_queue) as h:
        await h.paper.admin.set_price(BTC, "95000")
        first = await h.trade(sizing=Sizing(size=QTY), tp=Decimal("99000"), sl=Decimal("90000"))
        await h.until_state(first, lambda s: s.status is TradeStatus.TRACKING
                            and s.protection.level == "position", "A owns the whole position")

        second = await h.trade(entry_type=EntryType.LIMIT, sizing=Sizing(size=QTY),
                               reference_price=Decimal("94000"), tp=Decimal("98000"),
                               sl=Decimal("91000"))
        await h.until_state(second, lambda s: s.open_orders, "B's limit rests")
        await h.paper.admin.set_price(BTC, "94000")  # half of B's limit fills
        half = QTY / 2
        st = await h.until_state(second, lambda s: s.filled_qty == half
                                 and s.protection.qty == half, "B protected for its half")
        assert st.status is TradeStatus.ENTERING and st.protection.level == "order"
        await h.until_state(first, lambda s: s.protection.level == "order"
                            and s.protection.qty == QTY, "A moved to an order-level TP/SL")

        await h.paper.admin.set_price(BTC, "93990")  # the rest of B's limit fills
        st = await h.until_state(second, lambda s: s.status is TradeStatus.TRACKING
                                 and s.protection.qty == QTY, "B resized to its whole quantity")
        assert await h.position_qty() == 2 * QTY
        tpsl = await h.exchange.pending_tpsl_orders(BTC)
        assert sorted(t.tp_qty for t in tpsl) == [QTY, QTY]

        await first.signal(TradeWorkflow.close, CloseRequest())
        closed = await h.result(first)
        assert closed.status is TradeStatus.CLOSED and closed.closed_qty == QTY
        assert await h.position_qty() == QTY  # B's quantity is untouched
        st = await h.until_state(second, lambda s: s.protection.level == "position",
                                 "B now owns the whole position")
        assert st.status is TradeStatus.TRACKING and st.filled_qty == QTY
        await second.signal(TradeWorkflow.cancel, CancelRequest(flatten=True))
        assert (await h.result(second)).status is TradeStatus.CANCELLED
        assert await h.position_qty() == 0
        await h.keep_history(first, "two_trades_first")
        await h.keep_history(second, "two_trades_partial_second")
