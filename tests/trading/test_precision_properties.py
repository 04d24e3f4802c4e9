"""Property tests: every conformed order is on the grid, within the bands, never larger than
asked and never zero; every refusal names a rule that the order really breaks. The reference
arithmetic is exact rational arithmetic (Fraction), independent of the Decimal code."""

from __future__ import annotations

import math
from decimal import Decimal
from fractions import Fraction as F

from hypothesis import event, given, settings
from hypothesis import strategies as st

from tests.trading.factories import pair_rules, positive_decimals
from trading.errors import RuleViolation
from trading.precision import conform_order, round_qty_down, split_qty
from trading.rules import PairRules
from trading.types import OrderType, Side

D = Decimal
sides = st.sampled_from(list(Side))
order_types = st.sampled_from(list(OrderType))
ratios = st.decimals(min_value=D("0.001"), max_value=D("150"), places=4)
floors = st.none() | st.decimals(min_value=D("0.01"), max_value=D("100000"), places=2)


def floor_to(value: Decimal, step: Decimal) -> F:
    return math.floor(F(value) / F(step)) * F(step)


def passive(price: Decimal, tick: Decimal, side: Side) -> F:
    units = F(price) / F(tick)
    return (math.floor(units) if side is Side.BUY else math.ceil(units)) * F(tick)


def on_grid(value: Decimal, step: Decimal) -> bool:
    return (F(value) / F(step)).denominator == 1


def bounds(rules: PairRules, side: Side, mark: Decimal) -> tuple[F | None, F | None]:
    scope = rules.price_protect_scope
    if side is Side.BUY:
        offset = rules.min_buy_price_offset
        low = None if offset is None else F(mark) * (1 + F(offset))
        high = None if scope is None else F(mark) * (1 + F(scope))
    else:
        offset = rules.max_sell_price_offset
        low = None if scope is None else F(mark) * (1 - F(scope))
        high = None if offset is None else F(mark) * (1 + F(offset))
    return low, high


@settings(max_examples=400)
@given(
    rules=pair_rules(),
    qty=positive_decimals(),
    mark=positive_decimals(max_places=10, max_value=10**6),
    ratio=ratios,
    side=sides,
    order_type=order_types,
    reducing=st.booleans(),
    floor=floors,
)
def test_conformed_order_or_a_true_refusal(
    rules: PairRules,
    qty: Decimal,
    mark: Decimal,
    ratio: Decimal,
    side: Side,
    order_type: OrderType,
    reducing: bool,
    floor: Decimal | None,
) -> None:
    price = (mark * ratio).normalize() if order_type is OrderType.LIMIT else None
    want_qty = floor_to(qty, rules.qty_step)
    want_price = None if price is None else passive(price, rules.price_tick, side)
    low, high = bounds(rules, side, mark)
    try:
        order = conform_order(
            rules,
            fill_side=side,
            qty=qty,
            order_type=order_type,
            price=price,
            mark_price=mark,
            reducing=reducing,
            notional_floor=floor,
        )
    except RuleViolation as error:
        broken = {
            "min_qty": not reducing and want_qty < rules.min_qty,
            "qty_step": want_qty == 0,
            "max_limit_qty": order_type is OrderType.LIMIT and want_qty > rules.max_limit_qty,
            "max_market_qty": order_type is OrderType.MARKET and want_qty > rules.max_market_qty,
            "price_tick": want_price == 0,
            "notional_floor": floor is not None
            and not reducing
            and want_qty * (want_price if want_price is not None else F(mark)) < F(floor),
        }
        if want_price is not None:
            broken["price_protect_scope"] = (
                side is Side.BUY and high is not None and want_price > high
            ) or (side is Side.SELL and low is not None and want_price < low)
            broken["min_buy_price_offset"] = (
                side is Side.BUY and low is not None and (want_price < low)
            )
            broken["max_sell_price_offset"] = (
                side is Side.SELL and high is not None and (want_price > high)
            )
        assert broken.get(error.rule), f"refused by {error.rule} although it holds: {error}"
        event(f"refused: {error.rule}")
        return
    event(f"conformed {order_type.value}")
    assert order.qty > 0 and F(order.qty) == want_qty and order.qty <= qty
    assert on_grid(order.qty, rules.qty_step)
    assert order.qty.as_tuple().exponent == rules.qty_step.as_tuple().exponent
    assert reducing or order.qty >= rules.min_qty
    assert order.qty <= rules.max_qty(order_type)
    if price is None:
        assert order.price is None
        return
    assert order.price is not None and F(order.price) == want_price and order.price > 0
    assert on_grid(order.price, rules.price_tick)
    assert abs(F(order.price) - F(price)) < F(rules.price_tick)
    assert order.price <= price if side is Side.BUY else order.price >= price
    assert (low is None or order.price >= low) and (high is None or order.price <= high)
    if floor is not None and not reducing:
        assert order.qty * order.price >= floor
    assert "E" not in format(order.qty, "f") + format(order.price, "f")


@given(rules=pair_rules(), qty=positive_decimals(max_places=14, max_value=10**12))
def test_round_down_matches_exact_arithmetic(rules: PairRules, qty: Decimal) -> None:
    rounded = round_qty_down(rules, qty)
    assert F(rounded) == floor_to(qty, rules.qty_step)
    assert F(qty) - F(rounded) < F(rules.qty_step) and rounded <= qty


@settings(max_examples=300)
@given(
    rules=pair_rules(),
    multiple=st.decimals(min_value=D("0.0001"), max_value=D("25"), places=4),
    order_type=order_types,
    reducing=st.booleans(),
)
def test_split_parts_sum_exactly_and_each_fits(
    rules: PairRules, multiple: Decimal, order_type: OrderType, reducing: bool
) -> None:
    limit = rules.max_qty(order_type)
    qty = limit * multiple
    try:
        parts = split_qty(rules, qty, order_type, reducing=reducing, max_parts=20)
    except RuleViolation as error:
        event(f"refused: {error.rule}")
        want = floor_to(qty, rules.qty_step)
        count = math.ceil(want / F(limit)) if want else 0
        assert error.rule in {"min_qty", "qty_step", "max_parts"}
        if error.rule == "max_parts":
            assert count > 20
        elif error.rule == "qty_step":
            assert want == 0
        else:
            assert not reducing and F(want) / count < F(rules.min_qty) if count else True
        return
    event(f"split into {'one' if len(parts) == 1 else 'several'}")
    assert F(sum(parts)) == floor_to(qty, rules.qty_step)
    assert all(0 < p <= limit and on_grid(p, rules.qty_step) for p in parts)
    assert max(parts) - min(parts) <= rules.qty_step
    assert len(parts) == math.ceil(F(sum(parts)) / F(limit))
    assert reducing or min(parts) >= rules.min_qty
