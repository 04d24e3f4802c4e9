from __future__ import annotations

from decimal import Decimal

import pytest

from exchange.client import BitunixClient
from exchange.errors import DuplicateClientId, InsufficientFunds, Rejected, RuleRejected
from tests.exchange.contract.conftest import SYMBOL
from trading.types import Effect, OrderStatus, OrderType, PositionMode, Side, TradeSide

PRICE = Decimal("95000")


async def rest_buy(client: BitunixClient, client_id: str, price: Decimal = Decimal("90000.5")):
    return await client.place_order(
        symbol=SYMBOL,
        side=Side.BUY,
        qty=Decimal("0.0100"),
        order_type=OrderType.LIMIT,
        price=price,
        effect=Effect.GTC,
        client_id=client_id,
    )


async def test_limit_order_lifecycle(paper, client: BitunixClient) -> None:
    await paper.admin.set_price(SYMBOL, PRICE)
    placed = await rest_buy(client, "ctLimit1")
    assert placed.order_id and placed.client_id == "ctLimit1"

    by_id = await client.order_detail(order_id=placed.order_id)
    by_client = await client.order_detail(client_id="ctLimit1")
    assert by_id == by_client
    assert by_id.status is OrderStatus.NEW and by_id.side is Side.BUY
    assert by_id.order_type is OrderType.LIMIT and by_id.effect is Effect.GTC
    assert by_id.qty == Decimal("0.01") and by_id.filled_qty == 0
    assert by_id.price == Decimal("90000.5") and not by_id.reduce_only

    pending = await client.pending_orders(SYMBOL)
    assert [o.order_id for o in pending] == [placed.order_id]
    assert await client.pending_orders(SYMBOL, client_id="ctLimit1") == pending

    modified = await client.modify_order(
        symbol=SYMBOL, order_id=placed.order_id, qty=Decimal("0.02"), price=Decimal("90001")
    )
    assert modified.order_id == placed.order_id
    after = await client.order_detail(order_id=placed.order_id)
    assert (after.qty, after.price) == (Decimal("0.02"), Decimal("90001"))

    result = await client.cancel_orders(SYMBOL, order_ids=[placed.order_id])
    assert result.succeeded == (placed.order_id,) and result.failed == ()
    assert (await client.order_detail(order_id=placed.order_id)).status is OrderStatus.CANCELED
    assert await client.pending_orders(SYMBOL) == []
    canceled = await client.history_orders(SYMBOL, query_canceled=True)
    assert [(o.order_id, o.status) for o in canceled] == [(placed.order_id, OrderStatus.CANCELED)]


async def test_cancel_by_client_id_and_cancel_all(paper, client: BitunixClient) -> None:
    await paper.admin.set_price(SYMBOL, PRICE)
    a = await rest_buy(client, "ctAll1")
    b = await rest_buy(client, "ctAll2", Decimal("90100"))
    c = await rest_buy(client, "ctAll3", Decimal("90200"))
    by_client = await client.cancel_orders(SYMBOL, client_ids=["ctAll1"])
    assert by_client.succeeded in ((a.order_id,), ("ctAll1",)) and by_client.failed == ()
    everything = await client.cancel_all_orders(SYMBOL)
    assert set(everything.succeeded) == {b.order_id, c.order_id}
    assert await client.pending_orders() == []


async def test_cancel_of_a_finished_order_comes_back_in_failure_list(
    paper, client: BitunixClient
) -> None:
    placed = await rest_buy(client, "ctDone1")
    await client.cancel_orders(SYMBOL, order_ids=[placed.order_id])
    again = await client.cancel_orders(SYMBOL, order_ids=[placed.order_id])
    assert again.succeeded == ()
    (failure,) = again.failed
    assert failure.order_id == placed.order_id
    assert isinstance(failure.error, Rejected) and failure.error.code is not None


async def test_market_order_fills_and_shows_in_trades(paper, client: BitunixClient) -> None:
    await paper.admin.set_price(SYMBOL, PRICE)
    placed = await client.place_order(
        symbol=SYMBOL,
        side=Side.BUY,
        qty=Decimal("0.0100"),
        order_type=OrderType.MARKET,
        client_id="ctMkt1",
    )
    order = await client.order_detail(order_id=placed.order_id)
    assert order.status is OrderStatus.FILLED and order.filled_qty == Decimal("0.01")
    assert order.avg_price is not None and order.avg_price >= PRICE * Decimal("0.99")
    assert order.fee > 0
    (fill,) = await client.history_trades(SYMBOL, order_id=placed.order_id)
    assert fill.order_id == placed.order_id and fill.client_id == "ctMkt1"
    assert fill.side is Side.BUY and fill.qty == Decimal("0.01") and fill.role == "TAKER"
    assert fill.price == order.avg_price and fill.fee == order.fee

    close = await client.place_order(
        symbol=SYMBOL,
        side=Side.SELL,
        qty=Decimal("0.01"),
        order_type=OrderType.MARKET,
        reduce_only=True,
        client_id="ctMkt2",
    )
    closed = await client.order_detail(order_id=close.order_id)
    assert closed.reduce_only and closed.status is OrderStatus.FILLED
    assert await client.pending_positions(SYMBOL) == []
    filled = await client.history_orders(SYMBOL, status=OrderStatus.FILLED)
    assert {o.order_id for o in filled} == {placed.order_id, close.order_id}
    market = await client.history_orders(SYMBOL, order_type=OrderType.MARKET, limit=1)
    assert len(market) == 1 and market[0].order_type is OrderType.MARKET


async def test_hedge_mode_close_long_is_buy_plus_close(paper, client: BitunixClient) -> None:
    await client.change_position_mode(PositionMode.HEDGE)
    await client.place_order(
        symbol=SYMBOL,
        side=Side.BUY,
        qty=Decimal("0.02"),
        order_type=OrderType.MARKET,
        trade_side=TradeSide.OPEN,
        client_id="ctHedge1",
    )
    (position,) = await client.pending_positions(SYMBOL)
    await client.place_order(
        symbol=SYMBOL,
        side=Side.BUY,
        qty=Decimal("0.02"),
        order_type=OrderType.MARKET,
        trade_side=TradeSide.CLOSE,
        position_id=position.position_id,
        client_id="ctHedge2",
    )
    assert await client.pending_positions(SYMBOL) == []


async def test_duplicate_client_id(paper, client: BitunixClient) -> None:
    await rest_buy(client, "ctDup1")
    with pytest.raises(DuplicateClientId) as info:
        await rest_buy(client, "ctDup1")
    assert info.value.code == 30042 and info.value.endpoint == "trade/place_order"
    assert len(await client.pending_orders(SYMBOL)) == 1


async def test_rule_rejections(paper, client: BitunixClient) -> None:
    with pytest.raises(RuleRejected) as too_small:
        await client.place_order(
            symbol=SYMBOL, side=Side.BUY, qty=Decimal("0.00001"), order_type=OrderType.MARKET
        )
    assert too_small.value.code in (10002, 30016, 30017)
    with pytest.raises(RuleRejected) as too_big:
        await client.place_order(
            symbol=SYMBOL, side=Side.BUY, qty=Decimal(60000), order_type=OrderType.MARKET
        )
    assert too_big.value.code in (30013, 30039)


async def test_halted_symbol_is_a_rule_rejection(paper, client: BitunixClient) -> None:
    await paper.admin.symbol_status(SYMBOL, "STOP")
    with pytest.raises(RuleRejected) as info:
        await client.place_order(
            symbol=SYMBOL, side=Side.BUY, qty=Decimal("0.01"), order_type=OrderType.MARKET
        )
    assert info.value.code == 20012
    (rules,) = await client.trading_pairs([SYMBOL])
    assert rules.status.value == "STOP"  # the one refresh the caller makes shows why


async def test_insufficient_margin(paper, client: BitunixClient) -> None:
    await paper.admin.set_price(SYMBOL, PRICE)
    with pytest.raises(InsufficientFunds) as info:
        await client.place_order(
            symbol=SYMBOL, side=Side.BUY, qty=Decimal(30), order_type=OrderType.MARKET
        )
    assert info.value.code in (20003, 20008) and not info.value.retryable
