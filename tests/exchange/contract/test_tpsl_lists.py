"""Listing TP/SL orders whole: every page of the pending list, and one order's own history."""

from __future__ import annotations

from decimal import Decimal

from exchange.client import BitunixClient
from tests.exchange.contract.conftest import SYMBOL
from tests.exchange.contract.test_positions_tpsl import open_long
from trading.types import StopType


async def test_all_pending_tpsl_orders_reads_every_page(paper, client: BitunixClient) -> None:
    position = await open_long(paper, client)
    ids = [
        await client.place_tpsl_order(
            symbol=SYMBOL, position_id=position.position_id, tp_price=Decimal(100000 + i),
            tp_stop_type=StopType.MARK_PRICE, tp_qty=Decimal("0.0001"),
        )
        for i in range(105)
    ]
    assert len(await client.pending_tpsl_orders(SYMBOL, limit=100)) == 100  # one page
    every = await client.all_pending_tpsl_orders(SYMBOL)
    assert sorted(t.id for t in every) == sorted(ids)
    assert len(await client.all_pending_tpsl_orders(SYMBOL, position.position_id)) == 105


async def test_a_tpsl_history_says_whether_it_fired(paper, client: BitunixClient) -> None:
    position = await open_long(paper, client)
    fires = await client.place_tpsl_order(
        symbol=SYMBOL, position_id=position.position_id, tp_price=Decimal("96000"),
        tp_stop_type=StopType.MARK_PRICE, tp_qty=Decimal("0.01"),
    )
    cancelled = await client.place_tpsl_order(
        symbol=SYMBOL, position_id=position.position_id, sl_price=Decimal("90000"),
        sl_stop_type=StopType.MARK_PRICE, sl_qty=Decimal("0.01"),
    )
    assert await client.find_tpsl_history_order(SYMBOL, fires) is None  # still pending
    await client.cancel_tpsl_order(SYMBOL, cancelled)
    await paper.admin.set_price(SYMBOL, "96000")
    fired = await client.find_tpsl_history_order(SYMBOL, fires, position.position_id)
    assert fired is not None and fired.status == "FILLED" and fired.trigger_time_ms
    gone = await client.find_tpsl_history_order(SYMBOL, cancelled)
    assert gone is not None and gone.status == "CANCELED" and gone.trigger_time_ms is None
