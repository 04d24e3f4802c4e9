"""A TP/SL the workflow cannot compute, or cannot resolve, never fails a workflow task (review
findings 5 and 6):

- a short's TP at or below zero (`tp_pct` 150, as an alert accepted before the webhook checked
  it) or one that rounds to zero on a low-priced pair's tick is a refused TP/SL: the trade
  flattens, or tracks unprotected with a warning, as its strategy says;
- an order detail without `avgPrice` (BitUnix's documented answer) still gives the trade its
  entry price, from the fills, so `tp_pct`/`sl_pct` resolve and the PnL is right."""

from __future__ import annotations

from decimal import Decimal

from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHandle

from tests.workflows.harness import Harness, strategy
from trading.types import Intent, OnProtectionRefused, TradeStatus
from workflows.contract import Sizing
from workflows.messages import CancelRequest
from workflows.trade import TradeWorkflow

BTC, SHIB = "BTCUSDT", "SHIBUSDT"
QTY = Decimal("0.0100")


async def task_failures(handle: WorkflowHandle) -> list[str]:
    """The failure messages of every failed workflow task in the history."""
    history = await handle.fetch_history()
    return [
        e.workflow_task_failed_event_attributes.failure.message
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED
    ]


async def test_a_short_tp_at_or_below_zero_flattens_the_trade(harness: Harness) -> None:
    h = harness
    await h.paper.admin.set_price(BTC, "95000")
    handle = await h.trade(intent=Intent.OPEN_SHORT, sizing=Sizing(size=QTY),
                           tp_pct=Decimal(150), sl_pct=Decimal(2))
    result = await h.result(handle)
    assert await task_failures(handle) == []
    assert result.status is TradeStatus.CLOSED and result.closed_qty == QTY
    row = await h.trade_row(handle)
    assert "TP/SL refused" in (row.warning or "") and "closing" in (row.warning or "")
    assert [o.leg for o in await h.orders(row.id)] == ["entry", "flatten"]
    assert await h.position_qty(BTC, "SHORT") == 0


async def test_a_tp_rounding_to_zero_with_warn_tracks_unprotected_and_visibly(
    harness: Harness,
) -> None:
    h = harness
    strat = strategy(on_protection_refused=OnProtectionRefused.WARN)
    # A short on SHIB (tick 1E-8, price about 1.2E-5): 99.95 % below the entry is under a tick.
    handle = await h.trade(intent=Intent.OPEN_SHORT, symbol=SHIB, strat=strat,
                           sizing=Sizing(size=Decimal(1_000_000)), tp_pct=Decimal("99.95"),
                           sl_pct=Decimal(5))
    st = await h.until_state(handle, lambda s: s.warnings, "a visible warning")
    assert "WITHOUT protection" in st.warnings[0] and "rounds to zero" in st.warnings[0]
    assert st.status is TradeStatus.TRACKING and st.protection.order_id is None
    assert st.filled_qty == Decimal(1_000_000)
    await handle.signal(TradeWorkflow.cancel, CancelRequest(flatten=True))
    assert (await h.result(handle)).status is TradeStatus.CANCELLED
    assert await task_failures(handle) == []
    assert await h.position_qty(SHIB, "SHORT") == 0


async def test_pct_tp_sl_resolve_when_the_order_detail_has_no_avg_price(harness: Harness) -> None:
    h = harness
    await h.paper.admin.set_price(BTC, "95000")
    await h.paper.admin.faults(omit_avg_price=True)
    handle = await h.trade(sizing=Sizing(size=QTY), tp_pct=Decimal(2), sl_pct=Decimal(1))
    st = await h.until_state(handle, lambda s: s.protection.order_id is not None or s.warnings,
                             "TP/SL placed (or a warning)")
    assert st.warnings == [] and st.avg_entry_price == Decimal("95000.1")
    # 2 % / 1 % from the entry 95000.1, on the grid, as with avgPrice (test_market.py).
    assert st.protection.tp == Decimal("96900.2") and st.protection.sl == Decimal("94050.1")
    [tpsl] = await h.exchange.pending_tpsl_orders(BTC)
    assert (tpsl.tp_price, tpsl.sl_price) == (Decimal("96900.2"), Decimal("94050.1"))
    await h.paper.admin.set_price(BTC, "94000")
    result = await h.result(handle)
    row = await h.trade_row(handle)
    assert result.status is TradeStatus.CLOSED and row.avg_exit_price is not None
    assert result.realized_pnl == QTY * (row.avg_exit_price - Decimal("95000.1"))
    assert await task_failures(handle) == []


def test_a_percentage_without_an_entry_price_is_named_as_unresolved() -> None:
    from datetime import UTC, datetime

    from workflows.contract import TradeInput
    from workflows.protection import unresolved

    inp = TradeInput(trade_id=1, strategy=strategy(), symbol=BTC, intent=Intent.OPEN_LONG,
                     received_at=datetime.now(UTC), tp_pct=Decimal(2), sl=Decimal(90000))
    assert unresolved(inp, None) == ["tp_pct"]  # the absolute SL needs no entry price
    assert unresolved(inp, Decimal("95000.1")) == []
    both = inp.model_copy(update={"sl": None, "sl_pct": Decimal(1)})
    assert unresolved(both, None) == ["tp_pct", "sl_pct"]
