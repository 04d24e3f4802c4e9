"""Both position modes: hedge keeps a long and a short apart (each closes its own side with
BUY+CLOSE / SELL+CLOSE); one-way refuses an entry opposite to an open trade."""

from __future__ import annotations

from decimal import Decimal

from tests.workflows.harness import Harness, strategy
from trading.types import EntryType, Intent, PositionMode, TradeStatus
from workflows.contract import Sizing
from workflows.messages import CancelRequest, CloseRequest
from workflows.trade import TradeWorkflow

BTC = "BTCUSDT"
QTY = Decimal("0.0100")


def tracking(s) -> bool:
    return s.status is TradeStatus.TRACKING and s.protection.order_id is not None


async def test_hedge_mode_long_and_short_each_close_their_own_side(harness: Harness) -> None:
    h = harness
    await h.exchange.change_position_mode(PositionMode.HEDGE)
    await h.paper.admin.set_price(BTC, "95000")
    long = await h.trade(sizing=Sizing(size=QTY), tp=Decimal("99000"), sl=Decimal("90000"))
    short = await h.trade(intent=Intent.OPEN_SHORT, sizing=Sizing(size=2 * QTY),
                          tp=Decimal("90000"), sl=Decimal("99000"))
    st_long = await h.until_state(long, tracking, "long tracking")
    st_short = await h.until_state(short, tracking, "short tracking")
    assert st_long.position_mode is PositionMode.HEDGE
    assert st_long.protection.level == st_short.protection.level == "position"
    assert await h.position_qty(side="LONG") == QTY
    assert await h.position_qty(side="SHORT") == 2 * QTY

    await long.signal(TradeWorkflow.close, CloseRequest())
    assert (await h.result(long)).status is TradeStatus.CLOSED
    assert await h.position_qty(side="LONG") == 0
    assert await h.position_qty(side="SHORT") == 2 * QTY
    await short.signal(TradeWorkflow.cancel, CancelRequest(flatten=True))
    result = await h.result(short)
    assert result.status is TradeStatus.CANCELLED and result.closed_qty == 2 * QTY
    assert await h.position_qty(side="SHORT") == 0

    # In hedge mode `side` names the position: the long closed with BUY, the short with SELL.
    sent = {o["clientId"]: o["side"] for o in (await h.paper.admin.state())["orders"]}
    long_exit = [o for o in await h.orders(st_long.trade_id) if o.leg == "exit"]
    short_exit = [o for o in await h.orders(st_short.trade_id) if o.leg == "flatten"]
    assert [sent[o.client_order_id] for o in long_exit] == ["BUY"]
    assert [o.side for o in long_exit] == ["SELL"]  # the row records the fill direction
    assert [sent[o.client_order_id] for o in short_exit] == ["SELL"]
    await h.keep_history(long, "hedge_long_exit")


async def test_one_way_refuses_an_entry_opposite_to_an_open_trade(harness: Harness) -> None:
    h = harness
    await h.paper.admin.set_price(BTC, "95000")
    long = await h.trade(sizing=Sizing(size=QTY), sl=Decimal("90000"))
    await h.until_state(long, tracking, "long tracking")
    short = await h.trade(intent=Intent.OPEN_SHORT, sizing=Sizing(size=QTY))
    result = await h.result(short)
    assert result.status is TradeStatus.REFUSED and "ONE_WAY" in (result.error or "")
    assert await h.position_qty(side="LONG") == QTY
    assert (await h.trade_row(short)).error == result.error


async def test_one_way_refuses_an_opposite_entry_while_the_first_is_still_entering(
    harness: Harness,
) -> None:
    """A chasing entry is a trade in the making: an opposite entry on the same symbol, accepted
    meanwhile, would net against it in one-way mode (review finding 4)."""
    h = harness
    await h.paper.admin.set_price(BTC, "95000")
    long = await h.trade(entry_type=EntryType.CHASE, sizing=Sizing(size=QTY), sl=Decimal("85000"),
                         strat=strategy(chase_interval_s=Decimal(30), max_chases=1))
    await h.until_state(long, lambda s: len(s.open_orders) == 1, "the long's chase rests")
    short = await h.trade(intent=Intent.OPEN_SHORT, sizing=Sizing(size=QTY))
    result = await h.result(short)
    assert result.status is TradeStatus.REFUSED and "ONE_WAY" in (result.error or "")
    assert await h.orders(result.trade_id) == []  # nothing of the short was sent
    assert await h.position_qty(side="SHORT") == 0 and await h.position_qty(side="LONG") == 0
    await long.signal(TradeWorkflow.cancel, CancelRequest())
    assert (await h.result(long)).status is TradeStatus.CANCELLED
