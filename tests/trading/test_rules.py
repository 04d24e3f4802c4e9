from __future__ import annotations

import pickle
from dataclasses import replace
from decimal import Decimal

import pytest
from hypothesis import given
from pydantic import TypeAdapter

from tests.trading.factories import btc, btc_row, doge, pair_rules
from trading.errors import PairRulesInvalid, RuleViolation, UnknownSymbol
from trading.precision import snap
from trading.rules import PairRules
from trading.types import OrderType, PairStatus

D = Decimal


def test_vendor_btc_row_becomes_steps_and_limits() -> None:
    rules = btc()
    assert rules.qty_step == D("0.0001") and format(rules.qty_step, "f") == "0.0001"
    assert rules.price_tick == D("0.1")
    assert rules.min_qty == D("0.0001")
    assert rules.max_qty(OrderType.LIMIT) == D("100000")
    assert rules.max_qty(OrderType.MARKET) == D("50000")
    assert (rules.qty_decimals, rules.price_decimals) == (4, 1)


def test_base_precision_zero_with_minimum_53() -> None:
    rules = doge()
    assert rules.qty_step == D(1) and format(rules.qty_step, "f") == "1"
    assert rules.min_qty == D(53) and format(rules.min_qty, "f") == "53"
    assert format(rules.price_tick, "f") == "0.0000001"
    assert rules.qty_decimals == 0


def test_preview_pair_with_null_offsets_is_accepted_but_not_tradable() -> None:
    rules = btc(
        status=PairStatus.PREVIEW,
        min_buy_price_offset=None,
        max_sell_price_offset=None,
        price_protect_scope=None,
    )
    assert rules.min_buy_price_offset is None and rules.price_protect_scope is None
    assert not rules.tradable_for_open and not rules.tradable_for_close


@pytest.mark.parametrize(
    ("min_qty", "expected"),
    [
        (D("0.00015"), D("0.0002")),  # off the grid: up to the first acceptable quantity
        (D("0.0003"), D("0.0003")),  # on the grid: unchanged
        (D("0.00030000"), D("0.0003")),  # trailing zeros: re-expressed on the step
        (D("0"), D("0.0001")),  # no minimum: one step, never zero
        (D("0.00001"), D("0.0001")),
    ],
)
def test_minimum_rounds_up_to_the_grid(min_qty: Decimal, expected: Decimal) -> None:
    rules = btc(min_qty=min_qty)
    assert rules.min_qty == expected
    assert rules.min_qty.as_tuple().exponent == -4


def test_maxima_round_down_to_the_grid() -> None:
    rules = doge(max_limit_qty=D("1000.9"), max_market_qty=D("500.5"))
    assert (rules.max_limit_qty, rules.max_market_qty) == (D(1000), D(500))


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"base_precision": -1}, "base_precision"),
        ({"base_precision": 19}, "base_precision"),
        ({"quote_precision": True}, "quote_precision"),
        ({"quote_precision": 1.0}, "quote_precision"),
        ({"min_qty": 0.0001}, "min_qty"),
        ({"min_qty": "0.0001"}, "min_qty"),
        ({"min_qty": D("NaN")}, "min_qty"),
        ({"min_qty": D("-1")}, "min_qty"),
        ({"max_limit_qty": D("0.00005")}, "max_limit_qty"),  # rounds to zero
        ({"max_market_qty": D("Infinity")}, "max_market_qty"),
        ({"min_qty": D("60000")}, "min_qty"),  # above the market maximum
        ({"min_leverage": 0}, "min_leverage"),
        ({"max_leverage": True}, "max_leverage"),
        ({"default_leverage": 200}, "default_leverage"),
        ({"min_leverage": 30}, "default_leverage"),
        ({"min_buy_price_offset": D("-1.5")}, "min_buy_price_offset"),
        ({"min_buy_price_offset": -0.95}, "min_buy_price_offset"),
        ({"max_sell_price_offset": D("-1")}, "max_sell_price_offset"),
        ({"price_protect_scope": D("1")}, "price_protect_scope"),
        ({"price_protect_scope": D("-0.01")}, "price_protect_scope"),
        ({"status": "OPEN"}, "status"),
        ({"api_supported": 1}, "api_supported"),
        ({"symbol": ""}, "symbol"),
        ({"base": " BTC"}, "base"),
    ],
)
def test_invalid_rows_name_the_field(overrides: dict[str, object], field: str) -> None:
    with pytest.raises(PairRulesInvalid) as caught:
        btc(**overrides)
    assert caught.value.field == field
    assert f"{field}=" in str(caught.value)
    assert field == "symbol" or "BTCUSDT" in str(caught.value)


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"qty_step": D("0")}, "qty_step"),
        ({"price_tick": D("-0.1")}, "price_tick"),
        ({"qty_step": 1}, "qty_step"),
        ({"min_qty": D("0.00015")}, "min_qty"),  # direct construction must be on the grid
        ({"max_limit_qty": D("10.00005")}, "max_limit_qty"),
    ],
)
def test_direct_construction_is_validated_too(overrides: dict[str, object], field: str) -> None:
    with pytest.raises(PairRulesInvalid) as caught:
        replace(btc(), **overrides)
    assert caught.value.field == field


@pytest.mark.parametrize(
    ("status", "api", "for_open", "for_close"),
    [
        (PairStatus.OPEN, True, True, True),
        (PairStatus.CANCEL_ONLY, True, False, True),
        (PairStatus.STOP, True, False, False),
        (PairStatus.PREVIEW, True, False, False),
        (PairStatus.OPEN, False, False, False),
        (PairStatus.CANCEL_ONLY, False, False, False),
    ],
)
def test_tradability(status: PairStatus, api: bool, for_open: bool, for_close: bool) -> None:
    rules = btc(status=status, api_supported=api)
    assert (rules.tradable_for_open, rules.tradable_for_close) == (for_open, for_close)


def test_rules_are_frozen_and_hashable() -> None:
    rules = btc()
    with pytest.raises(AttributeError):
        rules.min_qty = D(1)  # type: ignore[misc]
    assert hash(rules) == hash(btc())


@given(pair_rules(status=None))
def test_generated_rules_hold_the_invariants(rules: PairRules) -> None:
    step = rules.qty_step
    assert step > 0 and rules.price_tick > 0
    for amount in (rules.min_qty, rules.max_limit_qty, rules.max_market_qty):
        assert snap(amount, step, "ROUND_FLOOR") == amount
    assert step <= rules.min_qty <= min(rules.max_limit_qty, rules.max_market_qty)


def test_errors_pickle_with_their_fields() -> None:
    errors = [
        PairRulesInvalid(symbol="X", field="min_qty", value=D(1), reason="bad"),
        RuleViolation(rule="min_qty", value=D("0.1"), limit=D(1), message="too small"),
        UnknownSymbol(ticker="EPUSDT", normalized="EPUSDT", suggestions=["ESPUSDT"]),
    ]
    for error in errors:
        copy = pickle.loads(pickle.dumps(error))
        assert type(copy) is type(error) and str(copy) == str(error)
        assert copy.__dict__ == error.__dict__


def test_row_helper_is_the_vendor_example() -> None:
    assert btc_row()["min_qty"] == D("0.0001")


def test_rules_round_trip_through_pydantic_as_temporal_carries_them() -> None:
    adapter = TypeAdapter(PairRules)
    for rules in (btc(), doge(), btc(status=PairStatus.PREVIEW, price_protect_scope=None)):
        assert adapter.validate_json(adapter.dump_json(rules)) == rules
    broken = adapter.dump_python(btc(), mode="json") | {"min_qty": "0.00015"}
    with pytest.raises(PairRulesInvalid):
        adapter.validate_python(broken)
