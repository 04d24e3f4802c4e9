"""Market entries end to end: entry → TP/SL → tracking → closed by TP, SL, exit alert or cancel,
with the trade, order and fill rows recorded."""

from __future__ import annotations

from decimal import Decimal

from tests.workflows.harness import Harness, strategy, until
from trading.types import EntryType, OrderStatus, TradeStatus
from workflows.contract import Sizing
from workflows.messages import CancelRequest, CloseRequest
from workflows.trade import TradeWorkflow

BTC = "BTCUSDT"
QTY = Decimal("0.0100")


async def test_take_profit_closes_the_trade_and_records_its_pnl(harness: Harness) -> None:
    h = harness
    await h.paper.admin.set_price(BTC, "95000")
    handle = await h.trade(sizing=Sizing(size=QTY), tp=Decimal("96000"), sl=Decimal("94000"))
    st = await h.until_state(handle, lambda s: s.status is TradeStatus.TRACKING
                             and s.protection.order_id is not None, "tracking with TP/SL")
    assert st.filled_qty == QTY and st.protection.level == "position"
    assert (st.protection.tp, st.protection.sl) == (Decimal("96000"), Decimal("94000"))
    row = await h.trade_row(handle)
    assert row.status == "TRACKING" and row.filled_qty == QTY and row.opened_at is not None

    await h.paper.admin.set_price(BTC, "96100")
    result = await h.result(handle)
    assert result.status is TradeStatus.CLOSED and result.closed_qty == QTY
    # Bought at the ask (95000.1), closed by the TP at market (the bid after the move).
    assert result.realized_pnl == QTY * (Decimal("96099.9") - Decimal("95000.1"))
    assert result.fees > 0
    row = await h.trade_row(handle)
    assert row.status == "CLOSED" and row.closed_qty == QTY and row.realized_pnl == result.realized_pnl
    assert row.closed_at is not None and row.avg_exit_price == Decimal("96099.9")
    legs = {o.leg: o for o in await h.orders(row.id)}
    assert legs["entry"].status == OrderStatus.FILLED and legs["entry"].filled_qty == QTY
    assert legs["protection"].status == OrderStatus.FILLED
    assert legs["triggered"].filled_qty == QTY
    assert len(await h.fills(row.id)) == 2
    assert await h.position_qty() == 0
    await h.keep_history(handle, "market_take_profit")


async def test_stop_loss_closes_the_trade_at_a_loss(harness: Harness) -> None:
    h = harness
    await h.paper.admin.set_price(BTC, "95000")
    handle = await h.trade(sizing=Sizing(size=QTY), tp_pct=Decimal(2), sl_pct=Decimal(1))
    st = await h.until_state(handle, lambda s: s.protection.order_id is not None, "TP/SL placed")
    # 2 % / 1 % from the entry 95000.1 (96900.102, 94050.099), on the grid: a long's round up.
    assert st.protection.tp == Decimal("96900.2") and st.protection.sl == Decimal("94050.1")
    await h.paper.admin.set_price(BTC, "94000")
    result = await h.result(handle)
    assert result.status is TradeStatus.CLOSED and result.realized_pnl < 0
    row = await h.trade_row(handle)  # the row records the prices the percentages resolved to
    assert (row.tp_price, row.sl_price) == (Decimal("96900.2"), Decimal("94050.1"))


async def test_exit_alert_closes_only_the_trade_quantity(harness: Harness) -> None:
    h = harness
    await h.paper.admin.set_price(BTC, "95000")
    handle = await h.trade(sizing=Sizing(size=QTY), tp=Decimal("99000"))
    await h.until_state(handle, lambda s: s.status is TradeStatus.TRACKING
                        and s.protection.order_id is not None, "tracking")
    query = f'Symbol="{BTC}" AND TradeStatus="TRACKING"'
    await until(lambda: _listed(h, query, handle.id), "found by the visibility query")
    either = 'Strategy="test" AND TradeStatus IN ("ENTERING","TRACKING")'
    assert await _listed(h, either, handle.id)
    await h.paper.admin.set_price(BTC, "95500")
    await handle.signal(TradeWorkflow.close, CloseRequest(reason="exit alert"))
    result = await h.result(handle)
    assert result.status is TradeStatus.CLOSED and result.closed_qty == QTY
    assert result.realized_pnl == QTY * (Decimal("95499.9") - Decimal("95000.1"))
    legs = [o.leg for o in await h.orders(result.trade_id)]
    assert legs.count("exit") == 1
    assert await h.position_qty() == 0
    assert not await h.exchange.pending_tpsl_orders(BTC)
    await h.keep_history(handle, "market_exit_alert")


async def test_cancel_without_flatten_keeps_tracking_and_with_flatten_closes(harness: Harness) -> None:
    h = harness
    await h.paper.admin.set_price(BTC, "95000")
    handle = await h.trade(sizing=Sizing(size=QTY), sl=Decimal("90000"))
    await h.until_state(handle, lambda s: s.status is TradeStatus.TRACKING
                        and s.protection.order_id is not None, "tracking")
    await handle.signal(TradeWorkflow.cancel, CancelRequest(flatten=False))
    st = await h.until_state(handle, lambda s: "cancel without flatten" in s.phase, "cancel seen")
    assert st.status is TradeStatus.TRACKING and st.protection.order_id is not None
    await handle.signal(TradeWorkflow.cancel, CancelRequest(flatten=True))
    result = await h.result(handle)
    assert result.status is TradeStatus.CANCELLED and result.closed_qty == QTY
    assert result.realized_pnl == QTY * (Decimal("94999.9") - Decimal("95000.1"))
    assert await h.position_qty() == 0
    await h.keep_history(handle, "market_cancel_flatten")


async def _listed(h: Harness, query: str, workflow_id: str) -> bool:
    return any([w.id async for w in h.client.list_workflows(query) if w.id == workflow_id])


async def test_chase_exit_rests_post_only_then_fills(harness: Harness) -> None:
    h = harness
    await h.paper.admin.set_price(BTC, "95000")
    strat = strategy(exit_entry_type=EntryType.CHASE)
    handle = await h.trade(sizing=Sizing(size=QTY), sl=Decimal("90000"), strat=strat)
    await h.until_state(handle, lambda s: s.status is TradeStatus.TRACKING
                        and s.protection.order_id is not None, "tracking")
    await handle.signal(TradeWorkflow.close, CloseRequest(reason="exit alert"))
    st = await h.until_state(handle, lambda s: [o.price for o in s.open_orders]
                             == [Decimal("95000.1")], "a post-only sell at the best ask")
    # The trade owns the whole position: its position-level SL stays while the exit rests.
    assert st.status is TradeStatus.CLOSING and st.protection.level == "position"
    assert [t.id for t in await h.exchange.pending_tpsl_orders(BTC)] == [st.protection.order_id]
    await h.paper.admin.set_price(BTC, "95001")  # the resting sell fills as maker
    result = await h.result(handle)
    assert result.status is TradeStatus.CLOSED and result.closed_qty == QTY
    assert result.realized_pnl == 0  # bought at the ask 95000.1, sold there too
    assert await h.position_qty() == 0
