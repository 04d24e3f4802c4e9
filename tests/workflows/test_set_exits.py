"""Update `set_exits` (docs/design.md#exits) on real parts: its validator refuses a move before
it is accepted (the trade's history has no accepted update after a refusal, and nothing at the
exchange changed); an accepted move replaces the plan field by field and moves the stop."""

from __future__ import annotations

from decimal import Decimal

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError

from tests.workflows.harness import Harness
from trading.exits import ExitPlan, SlAfterTp, TakeProfit, Trailing
from trading.types import StopType, TradeStatus
from workflows.contract import Sizing
from workflows.exits_update import ExitsAnswer
from workflows.messages import CancelRequest, ExitsUpdate, TradeMessages
from workflows.trade import TradeWorkflow

BTC = "BTCUSDT"
QTY = Decimal("0.0100")
UPDATE_EVENTS = (EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED,
                 EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED)


def protected(s) -> bool:
    return s.status is TradeStatus.TRACKING and s.protection.order_id is not None


async def update_events(handle: WorkflowHandle) -> list[EventType]:
    return [e.event_type async for e in handle.fetch_history_events()
            if e.event_type in UPDATE_EVENTS]


async def refused(handle: WorkflowHandle, upd: ExitsUpdate) -> str:
    with pytest.raises(WorkflowUpdateFailedError) as err:
        await handle.execute_update(TradeWorkflow.set_exits, upd)
    return str(err.value.cause)


async def test_set_exits_refuses_before_acceptance_and_moves_a_valid_plan(h: Harness) -> None:
    await h.paper.admin.set_price(BTC, "95000")
    handle = await h.trade(sizing=Sizing(size=QTY), tp=Decimal("99000"), sl=Decimal("90000"))
    await h.until_state(handle, protected, "protected")

    assert "below the current price" in await refused(handle, ExitsUpdate(sl=Decimal("96000")))
    said = await refused(handle, ExitsUpdate(tps=(TakeProfit(price=Decimal("94000")),)))
    assert "take-profit level 1" in said and "above the current price" in said
    said = await refused(handle, ExitsUpdate(tps=(TakeProfit(pct=Decimal(1), qty_pct=Decimal(60)),
                                                  TakeProfit(pct=Decimal(2), qty_pct=Decimal(50)))))
    assert "more than 100 %" in said
    assert "needs a take-profit ladder" in await refused(
        handle, ExitsUpdate(sl_after_tp=SlAfterTp.BREAKEVEN))
    assert "give trail_pct" in await refused(
        handle, ExitsUpdate(trail_activation_pct=Decimal(1)))
    assert "give at least one" in await refused(handle, ExitsUpdate())
    # Nothing was accepted: no update event in the history, the plan and the TP/SL unchanged.
    assert await update_events(handle) == []
    before = await handle.query(TradeMessages.EXITS, result_type=ExitsAnswer)
    assert before.plan is None and before.protection.sl == Decimal("90000")
    [tpsl] = await h.exchange.pending_tpsl_orders(BTC)
    assert (tpsl.tp_price, tpsl.sl_price) == (Decimal("99000"), Decimal("90000"))

    # Accepted: the trail, then the stop (the trail is kept: what an update omits stays).
    moved = await handle.execute_update(
        TradeWorkflow.set_exits,
        ExitsUpdate(trail_pct=Decimal("1.5"), trail_activation_pct=Decimal(1),
                    trail_price=StopType.LAST_PRICE))
    trail = Trailing(pct=Decimal("1.5"), activation_pct=Decimal(1),
                     price_type=StopType.LAST_PRICE)
    assert moved.plan == ExitPlan(trail=trail)
    moved = await handle.execute_update(TradeWorkflow.set_exits,
                                        ExitsUpdate(sl=Decimal("92000.05")))
    assert moved.plan == ExitPlan(trail=trail)
    assert (moved.protection.tp, moved.protection.sl) == (Decimal("99000"), Decimal("92000.1"))
    [tpsl] = await h.exchange.pending_tpsl_orders(BTC)
    assert (tpsl.tp_price, tpsl.sl_price) == (Decimal("99000"), Decimal("92000.1"))
    row = await h.trade_row(handle)
    assert row.sl_price == Decimal("92000.1")  # on the tick
    # The trail's activation moved alone, then the trail removed.
    moved = await handle.execute_update(TradeWorkflow.set_exits,
                                        ExitsUpdate(trail_activation_price=Decimal("97000")))
    assert moved.plan == ExitPlan(trail=Trailing(pct=Decimal("1.5"),
                                                 activation_price=Decimal("97000"),
                                                 price_type=StopType.LAST_PRICE))
    moved = await handle.execute_update(TradeWorkflow.set_exits, ExitsUpdate(remove=("trail",)))
    assert moved.plan is None
    assert await update_events(handle) == list(UPDATE_EVENTS) * 4
    await handle.signal(TradeWorkflow.cancel, CancelRequest(flatten=True))
    assert (await h.result(handle)).status is TradeStatus.CANCELLED
    assert await h.position_qty() == 0


async def test_a_ladder_replaces_the_single_tp_and_keeps_the_stop(h: Harness) -> None:
    """With a ladder, the TP/SL order carries the stop only (the levels are orders of their
    own, placed by the ladder's part of `protection.ensure`); `sl_after_tp` follows the levels."""
    await h.paper.admin.set_price(BTC, "95000")
    handle = await h.trade(sizing=Sizing(size=QTY), tp=Decimal("99000"), sl=Decimal("90000"))
    await h.until_state(handle, protected, "protected")
    levels = (TakeProfit(pct=Decimal(1), qty_pct=Decimal(50)), TakeProfit(price=Decimal("98000")))
    moved = await handle.execute_update(TradeWorkflow.set_exits, ExitsUpdate(
        tps=levels, sl_after_tp=(SlAfterTp.BREAKEVEN, SlAfterTp.PREVIOUS_TP)))
    assert [t.sl_after for t in moved.plan.tps] == [SlAfterTp.BREAKEVEN, SlAfterTp.PREVIOUS_TP]
    assert (moved.protection.tp, moved.protection.sl) == (None, Decimal("90000"))
    # A new ladder without sl_after_tp keeps each rung's.
    moved = await handle.execute_update(TradeWorkflow.set_exits, ExitsUpdate(
        tps=(TakeProfit(pct=Decimal(2)),)))
    assert moved.plan.tps == (TakeProfit(pct=Decimal(2), sl_after=SlAfterTp.BREAKEVEN),)
    # One TP again: the ladder goes.
    moved = await handle.execute_update(TradeWorkflow.set_exits, ExitsUpdate(tp=Decimal("98500")))
    assert moved.plan is None
    assert (moved.protection.tp, moved.protection.sl) == (Decimal("98500"), Decimal("90000"))
    [tpsl] = await h.exchange.pending_tpsl_orders(BTC)
    assert (tpsl.tp_price, tpsl.sl_price) == (Decimal("98500"), Decimal("90000"))
    await handle.signal(TradeWorkflow.cancel, CancelRequest(flatten=True))
    assert (await h.result(handle)).status is TradeStatus.CANCELLED


@pytest.fixture
def h(harness: Harness) -> Harness:
    return harness
