"""Wire payloads built from BitUnix's documented field lists (docs/bitunix.md) → schemas → parse
→ domain."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from exchange import parse
from exchange import schemas as w
from exchange.errors import NotFoundYet, Rejected
from trading.types import (
    Effect,
    MarginMode,
    OrderStatus,
    OrderType,
    PairStatus,
    PositionMode,
    PositionSide,
    Side,
    StopType,
)

FIXTURES = Path(__file__).parent / "fixtures"


def data(name: str) -> Any:
    envelope = w.Envelope.model_validate(w.loads((FIXTURES / name).read_bytes()))
    assert envelope.code == 0
    return envelope.data


def test_json_numbers_never_become_floats() -> None:
    assert w.loads('{"a": 0.1, "b": 3}') == {"a": Decimal("0.1"), "b": 3}
    assert (
        w.Ticker.model_validate({"symbol": "X", "markPrice": Decimal("0.10")}).markPrice == "0.10"
    )
    with pytest.raises(ValidationError):
        w.Ticker.model_validate({"symbol": "X", "markPrice": 0.1})


def test_trading_pairs_to_pair_rules() -> None:
    pairs = [w.TradingPair.model_validate(x) for x in w.as_list(data("trading_pairs.json"))]
    btc, doge, preview = (parse.pair_rules(p) for p in pairs)
    assert btc.symbol == "BTCUSDT" and (btc.base, btc.quote) == ("BTC", "USDT")
    assert btc.qty_step == Decimal("0.0001") and btc.price_tick == Decimal("0.1")
    assert btc.min_qty == Decimal("0.0001")
    assert (btc.max_limit_qty, btc.max_market_qty) == (Decimal(100000), Decimal(50000))
    assert (btc.min_leverage, btc.default_leverage, btc.max_leverage) == (1, 20, 125)
    assert btc.min_buy_price_offset == Decimal("-0.95")
    assert btc.max_sell_price_offset == Decimal(100)
    assert btc.price_protect_scope == Decimal("0.02")
    assert btc.status is PairStatus.OPEN and btc.api_supported is True
    assert doge.qty_step == Decimal(1) and doge.min_qty == Decimal(53)
    assert doge.price_tick == Decimal("0.0000001")
    assert doge.status is PairStatus.CANCEL_ONLY
    assert preview.status is PairStatus.PREVIEW
    assert preview.min_buy_price_offset is None and preview.price_protect_scope is None
    assert preview.api_supported is True  # absent on older payloads
    # The raw model keeps fields we do not model, for the pair sync's audit copy.
    assert pairs[1].model_dump()["someNewField"] == "kept by the raw model"
    assert pairs[0].defaultMarginMode == "1"


def test_unknown_pair_status_is_an_error_naming_the_field() -> None:
    raw = w.as_list(data("trading_pairs.json"))[0] | {"symbolStatus": "DELISTING"}
    with pytest.raises(ValueError, match="symbolStatus"):
        parse.pair_rules(w.TradingPair.model_validate(raw))


def test_tickers() -> None:
    btc, doge = (parse.ticker(w.Ticker.model_validate(x)) for x in data("tickers.json"))
    assert btc.mark_price == Decimal("65000.10") and btc.last_price == Decimal("65000.2")
    assert doge.mark_price == Decimal("0.1234567")


def test_depth_is_sorted_best_first() -> None:
    book = parse.book("BTCUSDT", w.Depth.model_validate(data("depth.json")))
    assert book.best_bid == Decimal("65000.1") and book.best_ask == Decimal("65000.2")
    assert book.bids[0] == (Decimal("65000.1"), Decimal("0.0100"))
    assert [p for p, _ in book.asks] == [Decimal("65000.2"), Decimal("65000.3"), Decimal(65001)]
    empty = parse.book("X", w.Depth.model_validate({}))
    assert empty.best_bid is None and empty.best_ask is None


@pytest.mark.parametrize("name", ["account_list.json", "account_object.json"])
def test_account_as_list_or_object(name: str) -> None:
    raw = w.as_object(data(name), key="marginCoin", value="USDT")
    account = parse.account(w.Account.model_validate(raw))
    assert account.margin_coin == "USDT"
    if name == "account_list.json":
        assert account.available == Decimal("99990.123456789")
        assert account.frozen == Decimal("10.5")
        assert account.position_mode is PositionMode.HEDGE
        assert account.cross_unrealized_pnl == Decimal("-12.3")
    else:
        assert account.available == Decimal(100000)
        assert account.position_mode is PositionMode.ONE_WAY


def test_leverage_margin_mode_and_echo() -> None:
    lm = parse.leverage_margin_mode(
        w.LeverageMarginMode.model_validate(data("leverage_margin_mode.json"))
    )
    assert (lm.symbol, lm.leverage, lm.margin_mode) == ("BTCUSDT", 12, MarginMode.ISOLATION)
    echo = w.as_object(data("change_leverage.json"))
    assert echo["leverage"] == 12


def test_place_order_answer() -> None:
    placed = parse.placed_order(w.OrderIds.model_validate(data("place_order.json")))
    assert (placed.order_id, placed.client_id) == ("11111", "tw1a2b3c4d000001")
    # order ids sent as JSON numbers still become strings
    assert w.OrderIds.model_validate({"orderId": 42}).orderId == "42"


def test_cancel_result_maps_each_failure() -> None:
    result = parse.cancel_result(w.CancelOrdersResult.model_validate(data("cancel_orders.json")))
    assert result.succeeded == ("11111",)
    status_error, not_found = result.failed
    assert status_error.order_id == "22222" and status_error.client_id == "tw1a2b3c4d000002"
    assert type(status_error.error) is Rejected  # 10013 is outside the table
    assert status_error.error.code == 10013 and "Order status error" in str(status_error.error)
    assert type(not_found.error) is NotFoundYet and not_found.error.code == 20007


def test_order_detail() -> None:
    order = parse.order(w.Order.model_validate(data("order_detail.json")))
    assert order.order_id == "11111" and order.client_id == "tw1a2b3c4d000001"
    assert order.side is Side.BUY and order.order_type is OrderType.LIMIT
    assert order.effect is Effect.POST_ONLY and order.status is OrderStatus.PART_FILLED
    assert order.qty == Decimal("0.0100") and order.filled_qty == Decimal("0.0040")
    assert order.remaining_qty == Decimal("0.0060")
    assert order.price == Decimal("64000.5") and order.avg_price == Decimal("64000.5")
    assert order.fee == Decimal("0.0512004") and order.reduce_only is False
    assert (order.ctime_ms, order.mtime_ms) == (1732000000123, 1732000001456)


def test_pending_orders_tolerate_type_and_broken_effect() -> None:
    first, second = (
        parse.order(w.Order.model_validate(o))
        for o in w.as_page(data("pending_orders.json"), "orderList")
    )
    assert first.status is OrderStatus.NEW and first.filled_qty == 0
    assert second.order_type is OrderType.LIMIT  # from `type`
    assert second.effect is None  # "LONG" is not a time in force
    assert second.reduce_only is True and second.client_id is None


def test_history_market_order_has_no_price() -> None:
    (order,) = [
        parse.order(w.Order.model_validate(o)) for o in data("history_orders.json")["orderList"]
    ]
    assert order.price is None and order.avg_price == Decimal("65010.3")
    assert order.status is OrderStatus.FILLED and order.status.is_terminal


def test_history_trades() -> None:
    (fill,) = [
        parse.fill(w.Trade.model_validate(t))
        for t in w.as_page(data("history_trades.json"), "tradeList")
    ]
    assert fill.trade_id == "t-1" and fill.order_id == "99" and fill.client_id == "tw9"
    assert fill.side is Side.SELL and fill.qty == Decimal("0.0100")
    assert fill.price == Decimal("65010.3") and fill.fee == Decimal("0.39006180")
    assert fill.realized_pnl == Decimal("10.25") and fill.role == "TAKER"


def test_pending_positions() -> None:
    long, short = (
        parse.position(w.PendingPosition.model_validate(p))
        for p in w.as_page(data("pending_positions.json"), "positionList")
    )
    assert long.position_id == "555" and long.side is PositionSide.LONG
    assert long.qty == Decimal("0.0300") and long.avg_open_price == Decimal("65000.1")
    assert long.margin_mode is MarginMode.ISOLATION and long.position_mode is PositionMode.HEDGE
    assert long.leverage == 10 and long.liq_price == Decimal("58900.1")
    assert long.funding == Decimal("-0.02") and long.unrealized_pnl == Decimal("3.3")
    # no avgOpenPrice: derived from entryValue / qty; empty liqPrice is absent
    assert short.avg_open_price == Decimal(65000) and short.liq_price is None


def test_history_positions() -> None:
    (closed,) = [
        parse.closed_position(w.HistoryPosition.model_validate(p))
        for p in w.as_page(data("history_positions.json"), "positionList")
    ]
    assert closed.position_id == "554" and closed.side is PositionSide.LONG
    assert closed.entry_price == Decimal(64000) and closed.close_price == Decimal("65000.5")
    assert closed.realized_pnl == Decimal("46.125") and closed.max_qty == Decimal("0.05")


def test_tpsl_orders() -> None:
    assert w.TpslOrderId.model_validate(data("tpsl_order_id.json")).orderId == "777"
    both, sl_only = (
        parse.tpsl_order(w.TpslOrder.model_validate(t))
        for t in w.as_page(data("tpsl_pending.json"), "orderList")
    )
    assert both.id == "777" and both.position_id == "555"
    assert both.tp_price == Decimal(70000) and both.tp_stop_type is StopType.MARK_PRICE
    assert both.tp_order_type is OrderType.LIMIT and both.tp_order_price == Decimal(69990)
    assert both.sl_stop_type is StopType.LAST_PRICE  # the doc examples' short form
    assert both.sl_order_price is None and both.tp_qty == Decimal("0.0100")
    assert sl_only.tp_price is None and sl_only.tp_stop_type is None and sl_only.tp_qty is None
    assert sl_only.sl_price == Decimal(61000) and sl_only.sl_qty == Decimal("0.02")


def test_flash_close_and_void_answers() -> None:
    assert w.PositionIdResult.model_validate(data("flash_close.json")).positionId == "555"
    assert data("void.json") is None  # "" means no data
    assert w.as_object(data("void.json")) == {}


def test_error_envelope() -> None:
    envelope = w.Envelope.model_validate(w.loads((FIXTURES / "error_duplicate.json").read_bytes()))
    assert (envelope.code, envelope.msg) == (30042, "Client ID duplicate")


def test_requests_serialize_once_compact_without_absent_fields() -> None:
    body = w.PlaceOrderRequest(
        symbol="BTCUSDT",
        side="BUY",
        qty="0.01",
        orderType="LIMIT",
        price="64000.5",
        effect="POST_ONLY",
        reduceOnly=False,
        clientId="tw1",
    )
    assert w.dumps(body.wire()) == (
        '{"symbol":"BTCUSDT","side":"BUY","qty":"0.01","orderType":"LIMIT","price":"64000.5",'
        '"effect":"POST_ONLY","reduceOnly":false,"clientId":"tw1"}'
    )
    with pytest.raises(ValidationError):
        w.PlaceOrderRequest(symbol="X", side="BUY", qty="1", orderType="MARKET", bogus=1)


@pytest.mark.parametrize(
    ("stamp", "expected"),
    [
        (1732000000123, 1732000000123),
        ("1732000000123", 1732000000123),
        ("2024-11-19T07:06:40.123Z", 1732000000123),
        ("2024-11-19T07:06:40.123+00:00", 1732000000123),
        ("2024-11-19T08:06:40.123+01:00", 1732000000123),
        (None, None),
    ],
)
def test_timestamps(stamp: Any, expected: int | None) -> None:
    assert parse.ms(stamp, "ctime") == expected
