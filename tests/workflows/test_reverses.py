"""A reverse that replaces several opposite trades of its strategy (pyramiding) closes every one
of them and opens its new side only once each is known to own nothing (docs/design.md#reverses,
review finding 11); one that does not close in time refuses the reverse, by name."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.workflows.harness import Harness, strategy
from trading.types import EntryType, Intent, PositionMode, TradeStatus
from workflows import trade
from workflows.contract import Sizing
from workflows.messages import CancelRequest

BTC = "BTCUSDT"
QTY = Decimal("0.0100")


def tracking(s) -> bool:
    return s.status is TradeStatus.TRACKING


async def two_longs(h: Harness):
    """In hedge mode (where a new short could open beside them), an older long whose exit is a
    limit (it rests until the test moves the price) and a newer one that exits at market."""
    await h.exchange.change_position_mode(PositionMode.HEDGE)
    await h.paper.admin.set_price(BTC, "95000")
    older = await h.trade(sizing=Sizing(size=QTY), strat=strategy(exit_entry_type=EntryType.LIMIT))
    await h.until_state(older, tracking, "the older long open")
    newer = await h.trade(sizing=Sizing(size=QTY))
    await h.until_state(newer, tracking, "the newer long open")
    assert await h.position_qty(side="LONG") == 2 * QTY
    return older, newer


async def test_a_reverse_opens_only_after_every_opposite_trade_closed(harness: Harness) -> None:
    h = harness
    older, newer = await two_longs(h)
    new = await h.trade(intent=Intent.REVERSE_TO_SHORT, sizing=Sizing(size=QTY),
                        close_first_workflow_id=newer.id,
                        also_close_first_workflow_ids=(older.id,))
    assert (await h.result(newer)).status is TradeStatus.CLOSED  # at market, at once
    # The newer long told the reverse it closed; the older one's limit exit still rests.
    st = await h.until_state(new, lambda s: s.phase == f"waiting for {older.id} to close first",
                             "the reverse waiting for the older long only")
    assert st.status is TradeStatus.PENDING and st.filled_qty == 0
    assert (await h.state(older)).status is TradeStatus.CLOSING
    assert await h.position_qty(side="SHORT") == 0
    assert await h.position_qty(side="LONG") == QTY

    await h.paper.admin.set_price(BTC, "95001")  # the older long's resting exit fills
    assert (await h.result(older)).status is TradeStatus.CLOSED
    st = await h.until_state(new, tracking, "the short open")
    assert st.filled_qty == QTY
    assert await h.position_qty(side="LONG") == 0
    assert await h.position_qty(side="SHORT") == QTY
    await new.signal(trade.TradeWorkflow.cancel, CancelRequest(flatten=True))
    assert (await h.result(new)).status is TradeStatus.CANCELLED
    await h.keep_history(new, "reverse_two_predecessors")


async def test_a_reverse_refuses_naming_the_opposite_trade_that_did_not_close(
    harness: Harness, monkeypatch: pytest.MonkeyPatch,
) -> None:
    h = harness
    monkeypatch.setattr(trade, "REVERSE_WAIT_S", 5)
    older, newer = await two_longs(h)
    new = await h.trade(intent=Intent.REVERSE_TO_SHORT, sizing=Sizing(size=QTY),
                        close_first_workflow_id=newer.id,
                        also_close_first_workflow_ids=(older.id,))
    result = await h.result(new)
    assert result.status is TradeStatus.REFUSED and result.filled_qty == 0
    assert result.error == (f"the trade being reversed ({older.id}) did not close within 5 s; "
                            "not opening the new side")
    assert not await h.orders(result.trade_id)
    assert (await h.result(newer)).status is TradeStatus.CLOSED
    assert await h.position_qty(side="SHORT") == 0

    # The older long was told to close too: it keeps its exit and closes when it can.
    await h.paper.admin.set_price(BTC, "95001")
    assert (await h.result(older)).status is TradeStatus.CLOSED
    assert await h.position_qty(side="LONG") == 0
    assert await h.position_qty(side="SHORT") == 0
