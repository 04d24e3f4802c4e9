from __future__ import annotations

from decimal import Decimal

import pytest

from exchange.client import BitunixClient
from exchange.errors import Rejected
from tests.exchange.contract.conftest import SYMBOL
from trading.types import OrderType, PositionMode, PositionSide, Side, StopType

PRICE = Decimal("95000")


async def open_long(paper, client: BitunixClient, qty: str = "0.05"):
    await paper.admin.set_price(SYMBOL, PRICE)
    await client.place_order(
        symbol=SYMBOL, side=Side.BUY, qty=Decimal(qty), order_type=OrderType.MARKET
    )
    (position,) = await client.pending_positions(SYMBOL)
    return position


async def test_pending_positions(paper, client: BitunixClient) -> None:
    assert await client.pending_positions() == []
    position = await open_long(paper, client)
    assert position.symbol == SYMBOL and position.side is PositionSide.LONG
    assert position.qty == Decimal("0.05") and position.position_id
    assert position.avg_open_price is not None and position.avg_open_price > 0
    assert position.position_mode is PositionMode.ONE_WAY and position.leverage >= 1
    assert await client.pending_positions(position_id=position.position_id) == [position]


async def test_order_level_tpsl_lifecycle(paper, client: BitunixClient) -> None:
    position = await open_long(paper, client)
    tpsl_id = await client.place_tpsl_order(
        symbol=SYMBOL,
        position_id=position.position_id,
        tp_price=Decimal("100000"),
        tp_stop_type=StopType.MARK_PRICE,
        tp_order_type=OrderType.MARKET,
        tp_qty=Decimal("0.02"),
        sl_price=Decimal("90000"),
        sl_stop_type=StopType.LAST_PRICE,
        sl_order_type=OrderType.MARKET,
        sl_qty=Decimal("0.02"),
    )
    (pending,) = await client.pending_tpsl_orders(SYMBOL, position.position_id)
    assert pending.id == tpsl_id and pending.position_id == position.position_id
    assert pending.tp_price == Decimal(100000) and pending.sl_price == Decimal(90000)
    assert pending.tp_qty == Decimal("0.02") and pending.sl_qty == Decimal("0.02")
    assert pending.tp_stop_type is StopType.MARK_PRICE
    assert pending.sl_stop_type is StopType.LAST_PRICE

    modified = await client.modify_tpsl_order(
        order_id=tpsl_id,
        tp_price=Decimal("101000"),
        tp_stop_type=StopType.MARK_PRICE,
        tp_qty=Decimal("0.03"),
        sl_price=Decimal("89000"),
        sl_stop_type=StopType.MARK_PRICE,
        sl_qty=Decimal("0.03"),
    )
    assert modified == tpsl_id
    (after,) = await client.pending_tpsl_orders(SYMBOL)
    assert (after.tp_price, after.tp_qty) == (Decimal(101000), Decimal("0.03"))
    assert after.sl_price == Decimal(89000)

    assert await client.cancel_tpsl_order(SYMBOL, tpsl_id) == tpsl_id
    assert await client.pending_tpsl_orders(SYMBOL) == []


async def test_tpsl_trigger_closes_its_quantity(paper, client: BitunixClient) -> None:
    position = await open_long(paper, client)
    await client.place_tpsl_order(
        symbol=SYMBOL,
        position_id=position.position_id,
        sl_price=Decimal("94000"),
        sl_stop_type=StopType.MARK_PRICE,
        sl_qty=Decimal("0.02"),
    )
    await paper.admin.set_price(SYMBOL, Decimal("93000"))
    (left,) = await client.pending_positions(SYMBOL)
    assert left.qty == Decimal("0.03")


async def test_position_level_tpsl(paper, client: BitunixClient) -> None:
    position = await open_long(paper, client)
    tpsl_id = await client.place_position_tpsl(
        symbol=SYMBOL,
        position_id=position.position_id,
        tp_price=Decimal("99000"),
        tp_stop_type=StopType.MARK_PRICE,
        sl_price=Decimal("91000"),
        sl_stop_type=StopType.MARK_PRICE,
    )
    assert tpsl_id
    modified = await client.modify_position_tpsl(
        symbol=SYMBOL,
        position_id=position.position_id,
        tp_price=Decimal("99500"),
        tp_stop_type=StopType.MARK_PRICE,
        sl_price=Decimal("91500"),
        sl_stop_type=StopType.MARK_PRICE,
    )
    assert modified
    pending = await client.pending_tpsl_orders(SYMBOL, position.position_id)
    assert [(p.tp_price, p.sl_price) for p in pending] == [(Decimal(99500), Decimal(91500))]
    await paper.admin.set_price(SYMBOL, Decimal("99600"))
    assert await client.pending_positions(SYMBOL) == []


async def test_tpsl_on_a_missing_position_is_rejected(paper, client: BitunixClient) -> None:
    with pytest.raises(Rejected) as info:
        await client.place_tpsl_order(
            symbol=SYMBOL, position_id="no-such-position", tp_price=Decimal("100000")
        )
    assert info.value.code == 30004


async def test_flash_close_and_history(paper, client: BitunixClient) -> None:
    position = await open_long(paper, client)
    assert await client.flash_close_position(position.position_id) == position.position_id
    assert await client.pending_positions(SYMBOL) == []
    history = await client.history_positions(SYMBOL)
    closed = next(h for h in history if h.position_id == position.position_id)
    assert closed.side is PositionSide.LONG and closed.max_qty == Decimal("0.05")
    assert closed.entry_price == position.avg_open_price and closed.close_price is not None
    assert closed.fee > 0
    assert await client.history_positions(SYMBOL, position_id=position.position_id) == [closed]
