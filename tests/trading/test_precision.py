from __future__ import annotations

from decimal import Decimal

import pytest

from tests.trading.factories import btc, doge
from trading.errors import InvalidOrderRequest, RuleViolation
from trading.precision import (
    PriceKind,
    conform_order,
    conform_trigger,
    price_bounds,
    round_price,
    round_qty_down,
    snap,
    split_qty,
)
from trading.types import OrderType, PairStatus, PositionSide, Side

D = Decimal
BUY, SELL = Side.BUY, Side.SELL
LIMIT, MARKET = OrderType.LIMIT, OrderType.MARKET
MARK = D("100000")


def limit(rules=None, **kw):  # type: ignore[no-untyped-def]
    args = dict(
        fill_side=BUY, qty=D("0.001"), order_type=LIMIT, price=MARK, mark_price=MARK, reducing=False
    )
    args.update(kw)
    return conform_order(rules or btc(), **args)


def violation(rule: str, rules=None, **kw) -> RuleViolation:  # type: ignore[no-untyped-def]
    with pytest.raises(RuleViolation) as caught:
        limit(rules, **kw)
    assert caught.value.rule == rule
    assert str(caught.value).startswith(f"{rule}: ")
    return caught.value


def test_the_issue_example_message() -> None:
    error = violation("min_qty", qty=D("0.00004"))
    assert str(error) == "min_qty: 0.00004 BTC is below the pair's minimum 0.0001 for an opening"
    assert (error.value, error.limit) == (D("0.00004"), D("0.0001"))


@pytest.mark.parametrize(
    ("qty", "reducing", "expected"),
    [
        (D("0.0001"), False, "0.0001"),
        (D("0.00019999"), False, "0.0001"),
        (D("0.00015"), True, "0.0001"),
        (D("1.23456789"), False, "1.2345"),
        (D("50000"), False, "50000.0000"),
        (D("100000.00009"), False, "100000.0000"),
        (D("3"), False, "3.0000"),
    ],
)
def test_quantity_rounds_down_to_the_step(qty: Decimal, reducing: bool, expected: str) -> None:
    order = limit(qty=qty, reducing=reducing, fill_side=SELL)
    assert format(order.qty, "f") == expected


def test_close_below_the_minimum_is_allowed_but_never_zero() -> None:
    assert (
        limit(doge(), qty=D("10.7"), reducing=True, price=D("0.1"), mark_price=D("0.1")).qty == 10
    )
    violation("min_qty", doge(), qty=D("52.99"), price=D("0.1"), mark_price=D("0.1"))
    assert limit(doge(), qty=D("53.99"), price=D("0.1"), mark_price=D("0.1")).qty == 53
    error = violation("qty_step", qty=D("0.00004"), reducing=True)
    assert "0.00004 BTC is below one step 0.0001" in str(error)


@pytest.mark.parametrize(
    ("order_type", "qty", "rule"),
    [
        (LIMIT, D("100000.0001"), "max_limit_qty"),
        (MARKET, D("50000.0001"), "max_market_qty"),
    ],
)
def test_above_the_maximum_is_refused(order_type: OrderType, qty: Decimal, rule: str) -> None:
    price = MARK if order_type is LIMIT else None
    with pytest.raises(RuleViolation) as caught:
        conform_order(
            btc(),
            fill_side=BUY,
            qty=qty,
            order_type=order_type,
            price=price,
            mark_price=MARK,
            reducing=True,
        )
    assert caught.value.rule == rule and "split" in str(caught.value)


def test_at_the_maximum_is_accepted() -> None:
    order = conform_order(
        btc(),
        fill_side=SELL,
        qty=D("50000"),
        order_type=MARKET,
        price=None,
        mark_price=None,
        reducing=False,
    )
    assert order == type(order)(qty=D("50000"), price=None)


@pytest.mark.parametrize(
    ("quote_precision", "price", "side", "expected"),
    [
        (1, D("100000.05"), BUY, "100000.0"),
        (1, D("100000.05"), SELL, "100000.1"),
        (1, D("123456.78"), BUY, "123456.7"),
        (1, D("123456.78"), SELL, "123456.8"),
        (10, D("0.0000012345678"), BUY, "0.0000012345"),
        (10, D("0.0000012345678"), SELL, "0.0000012346"),
        (7, D("0.000009"), BUY, "0.0000090"),
        (0, D("7.5"), SELL, "8"),
    ],
)
def test_limit_price_rounds_to_the_passive_side(
    quote_precision: int, price: Decimal, side: Side, expected: str
) -> None:
    rules = btc(
        quote_precision=quote_precision,
        price_protect_scope=None,
        min_buy_price_offset=None,
        max_sell_price_offset=None,
    )
    order = limit(rules, price=price, fill_side=side, mark_price=price)
    assert format(order.price, "f") == expected  # type: ignore[arg-type]


def test_steps_of_one_and_of_1e_8() -> None:
    assert format(round_qty_down(btc(base_precision=8), D("0.123456789")), "f") == "0.12345678"
    assert format(round_qty_down(btc(base_precision=8), D("0.00000001")), "f") == "0.00000001"
    assert format(round_qty_down(doge(), D("53.999999")), "f") == "53"


def test_exact_far_beyond_the_default_context() -> None:
    huge = D("123456789012345678901234567.123456789")
    assert format(round_qty_down(btc(base_precision=8), huge), "f") == (
        "123456789012345678901234567.12345678"
    )
    # 10^41 = 3q + 1, so the next multiple of 0.3 is (10^41 + 2) / 10
    assert format(snap(D("1E+40"), D("0.3"), "ROUND_CEILING"), "f") == "1" + "0" * 40 + ".2"


def test_a_price_that_rounds_to_zero_is_refused() -> None:
    error = violation("price_tick", price=D("0.04"), mark_price=None)
    assert "rounds to zero" in str(error)


@pytest.mark.parametrize(
    ("side", "price", "rule"),
    [
        (BUY, D("102000.1"), "price_protect_scope"),  # above mark*(1+0.02)
        (BUY, D("4999.9"), "min_buy_price_offset"),  # below mark*(1-0.95)
        (SELL, D("97999.9"), "price_protect_scope"),  # below mark*(1-0.02)
        (SELL, D("10100000.1"), "max_sell_price_offset"),  # above mark*(1+100)
    ],
)
def test_price_band_around_the_mark(side: Side, price: Decimal, rule: str) -> None:
    rules = btc(max_limit_qty=D("100000"))
    if rule == "max_sell_price_offset":
        rules = btc(price_protect_scope=None)
    error = violation(rule, rules, fill_side=side, price=price)
    assert format(error.value, "f") == format(price, "f")


@pytest.mark.parametrize(
    ("side", "price"),
    [
        (BUY, D("102000")),
        (BUY, D("102000.09")),
        (BUY, D("5000")),
        (SELL, D("98000")),
        (SELL, D("97999.91")),
    ],
)
def test_prices_at_the_band_edge_pass(side: Side, price: Decimal) -> None:
    order = limit(fill_side=side, price=price)
    low, high = price_bounds(btc(), side, MARK)
    assert order.price is not None
    assert (low is None or order.price >= low) and (high is None or order.price <= high)


def test_band_checks_are_skipped_without_a_mark_price_and_without_band_fields() -> None:
    assert limit(price=D("200000"), mark_price=None).price == D("200000")
    preview_like = btc(
        price_protect_scope=None, min_buy_price_offset=None, max_sell_price_offset=None
    )
    assert limit(preview_like, price=D("1"), mark_price=MARK).price == D("1")


@pytest.mark.parametrize(
    ("status", "api", "reducing", "rule"),
    [
        (PairStatus.CANCEL_ONLY, True, False, "status"),
        (PairStatus.STOP, True, True, "status"),
        (PairStatus.STOP, True, False, "status"),
        (PairStatus.PREVIEW, True, True, "status"),
        (PairStatus.OPEN, False, True, "api_supported"),
    ],
)
def test_status_and_api_support(status: PairStatus, api: bool, reducing: bool, rule: str) -> None:
    violation(rule, btc(status=status, api_supported=api), reducing=reducing)


def test_cancel_only_allows_reduce_only_closes() -> None:
    rules = btc(status=PairStatus.CANCEL_ONLY)
    assert limit(rules, reducing=True, fill_side=SELL).qty == D("0.001")


def test_strategy_notional_floor() -> None:
    error = violation("notional_floor", qty=D("0.0009"), notional_floor=D("100"))
    assert "notional 90.00000 USDT (0.0009 BTC at 100000.0) is below the strategy's floor" in str(
        error
    )
    assert limit(qty=D("0.001"), notional_floor=D("100")).qty == D("0.001")
    assert limit(qty=D("0.0001"), notional_floor=D("100"), reducing=True).qty == D("0.0001")
    market = dict(
        fill_side=BUY,
        qty=D("0.0009"),
        order_type=MARKET,
        price=None,
        reducing=False,
        notional_floor=D("100"),
    )
    with pytest.raises(RuleViolation, match="notional_floor"):
        conform_order(btc(), mark_price=MARK, **market)  # type: ignore[arg-type]
    with pytest.raises(InvalidOrderRequest, match="needs mark_price"):
        conform_order(btc(), mark_price=None, **market)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "overrides",
    [
        {"price": None},
        {"order_type": MARKET},
        {"qty": 0.001},
        {"qty": D("0")},
        {"qty": D("-0.001")},
        {"qty": D("NaN")},
        {"price": D("0")},
        {"price": 100000.0},
        {"mark_price": D("0")},
        {"qty": D("1E+1000000")},
        {"price": D("1E-1000000")},
    ],
)
def test_malformed_requests_are_programming_errors(overrides: dict[str, object]) -> None:
    with pytest.raises(InvalidOrderRequest):
        limit(**overrides)


def test_split_into_near_equal_parts_on_the_grid() -> None:
    assert split_qty(btc(), D("120000"), MARKET) == [D("40000")] * 3
    parts = split_qty(btc(), D("100000.00019"), MARKET)
    assert [format(p, "f") for p in parts] == ["33333.3334", "33333.3334", "33333.3333"]
    assert sum(parts) == D("100000.0001")
    assert split_qty(btc(), D("0.5"), LIMIT) == [D("0.5000")]


def test_split_refuses_too_many_parts_and_parts_below_the_minimum() -> None:
    with pytest.raises(RuleViolation, match="max_parts"):
        split_qty(btc(), D("50000.0001") * 20, MARKET)
    narrow = doge(min_qty=D("60"), max_market_qty=D("100"))
    with pytest.raises(RuleViolation, match="min_qty: splitting 101 DOGE into 2 orders"):
        split_qty(narrow, D("101"), MARKET)
    assert split_qty(narrow, D("101"), MARKET, reducing=True) == [D(51), D(50)]


@pytest.mark.parametrize(
    ("kind", "side", "price", "expected"),
    [
        (PriceKind.TAKE_PROFIT, PositionSide.LONG, D("105000.05"), "105000.1"),
        (PriceKind.STOP_LOSS, PositionSide.LONG, D("95000.05"), "95000.1"),
        (PriceKind.TAKE_PROFIT, PositionSide.SHORT, D("94999.95"), "94999.9"),
        (PriceKind.STOP_LOSS, PositionSide.SHORT, D("105000.05"), "105000.0"),
    ],
)
def test_trigger_prices(kind: PriceKind, side: PositionSide, price: Decimal, expected: str) -> None:
    rounded = conform_trigger(
        btc(), kind=kind, position_side=side, price=price, reference_price=MARK
    )
    assert format(rounded, "f") == expected


@pytest.mark.parametrize(
    ("kind", "side", "price", "rule"),
    [
        (PriceKind.TAKE_PROFIT, PositionSide.LONG, D("99999.9"), "tp_price"),
        (PriceKind.STOP_LOSS, PositionSide.LONG, D("100000"), "sl_price"),
        (PriceKind.TAKE_PROFIT, PositionSide.SHORT, D("100000.01"), "tp_price"),
        (PriceKind.STOP_LOSS, PositionSide.SHORT, D("99999.99"), "sl_price"),
    ],
)
def test_triggers_on_the_wrong_side_are_refused(
    kind: PriceKind, side: PositionSide, price: Decimal, rule: str
) -> None:
    with pytest.raises(RuleViolation) as caught:
        conform_trigger(btc(), kind=kind, position_side=side, price=price, reference_price=MARK)
    assert caught.value.rule == rule
    assert (
        conform_trigger(btc(), kind=kind, position_side=side, price=price, reference_price=None) > 0
    )
    with pytest.raises(InvalidOrderRequest):
        conform_trigger(
            btc(), kind=PriceKind.LIMIT, position_side=side, price=price, reference_price=None
        )


def test_marketable_price_rounds_aggressively() -> None:
    assert round_price(btc(), D("100.05"), fill_side=BUY, kind=PriceKind.MARKETABLE) == D("100.1")
    assert round_price(btc(), D("100.05"), fill_side=SELL, kind=PriceKind.MARKETABLE) == D("100.0")


def test_snap_refuses_what_it_cannot_do() -> None:
    for args in (
        (D(-1), D(1), "ROUND_FLOOR"),
        (D(1), D(0), "ROUND_FLOOR"),
        (D(1), D(1), "ROUND_HALF_UP"),
        (D("NaN"), D(1), "ROUND_FLOOR"),
    ):
        with pytest.raises(ValueError):
            snap(*args)
