"""Tracking: the account watcher wakes a trade whose own re-check is an hour away; a liquidation
ends the trade; continue-as-new keeps ids and protection; a reverse closes its predecessor first."""

from __future__ import annotations

from decimal import Decimal

from temporalio.api.enums.v1 import EventType

from tests.workflows.harness import Harness, strategy
from trading.types import Intent, TradeStatus
from workflows.contract import Sizing
from workflows.messages import CancelRequest
from workflows.trade import TradeWorkflow

BTC = "BTCUSDT"
QTY = Decimal("0.0100")


def protected(s) -> bool:
    return s.status is TradeStatus.TRACKING and s.protection.order_id is not None


async def test_watcher_signal_ends_a_trade_long_before_its_own_recheck(
    harness: Harness, watcher: str
) -> None:
    h = harness
    await h.paper.admin.set_price(BTC, "95000")
    handle = await h.trade(sizing=Sizing(size=QTY), tp=Decimal("96000"),
                           strat=strategy(tracking_interval_s=3600))
    await h.until_state(handle, protected, "protected")
    await h.paper.admin.set_price(BTC, "96100")
    result = await h.result(handle)  # the trade's own timer would wait an hour
    assert result.status is TradeStatus.CLOSED and result.closed_qty == QTY


async def test_liquidation_ends_the_trade_with_its_loss(harness: Harness) -> None:
    h = harness
    await h.paper.admin.set_price(BTC, "95000")
    handle = await h.trade(sizing=Sizing(size=QTY), sl=Decimal("80000"))
    await h.until_state(handle, protected, "protected")
    await h.paper.admin.liquidate(BTC, "LONG")
    result = await h.result(handle)
    assert result.status is TradeStatus.CLOSED and result.closed_qty == QTY
    row = await h.trade_row(handle)
    assert "closed outside this trade" in (row.warning or "")
    assert [o.leg for o in await h.orders(row.id)][-1] == "external"


async def test_continue_as_new_carries_ids_quantity_and_protection(harness: Harness) -> None:
    h = harness
    await h.paper.admin.set_price(BTC, "95000")
    handle = await h.trade(sizing=Sizing(size=QTY), tp=Decimal("96000"), sl=Decimal("94000"),
                           strat=strategy(tracking_interval_s=1), continue_as_new_after=60)
    before = await h.until_state(handle, protected, "protected")
    first_run = (await handle.describe()).run_id
    await h.until_state(handle, lambda s: True, "queryable")

    async def moved_on() -> bool:
        return (await handle.describe()).run_id != first_run

    from tests.workflows.harness import until
    await until(moved_on, "continued as new")
    history = await h.client.get_workflow_handle(handle.id, run_id=first_run).fetch_history()
    assert history.events[-1].event_type is EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW
    after = await h.state(handle)
    assert after.protection.order_id == before.protection.order_id
    assert after.filled_qty == QTY and after.status is TradeStatus.TRACKING
    await handle.signal(TradeWorkflow.cancel, CancelRequest(flatten=True))
    result = await h.result(handle)
    assert result.status is TradeStatus.CANCELLED and result.closed_qty == QTY
    client_ids = [o.client_order_id for o in await h.orders(result.trade_id)]
    assert len(client_ids) == len(set(client_ids)) == 3  # entry, protection, flatten
    assert await h.position_qty() == 0
    await h.keep_history(h.client.get_workflow_handle(handle.id, run_id=first_run),
                         "continue_as_new_first_run")
    await h.keep_history(handle, "continue_as_new_last_run")


async def test_reverse_closes_its_predecessor_then_enters(harness: Harness) -> None:
    h = harness
    await h.paper.admin.set_price(BTC, "95000")
    old = await h.trade(sizing=Sizing(size=QTY), sl=Decimal("90000"))
    await h.until_state(old, protected, "the long is open")
    new = await h.trade(intent=Intent.REVERSE_TO_SHORT, sizing=Sizing(size=2 * QTY),
                        close_first_workflow_id=old.id, sl=Decimal("99000"))
    closed = await h.result(old)
    assert closed.status is TradeStatus.CLOSED and closed.closed_qty == QTY
    st = await h.until_state(new, protected, "the short is open")
    assert st.filled_qty == 2 * QTY
    assert await h.position_qty(side="LONG") == 0
    assert await h.position_qty(side="SHORT") == 2 * QTY
    await h.keep_history(old, "reverse_predecessor")
