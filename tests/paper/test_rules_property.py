"""Property: any order on the grid within the rules is accepted; off the grid, refused."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from paper import errors, orders
from paper.engine import Engine
from paper.errors import ExchangeError
from tests.support.paper import paper_settings

ENGINE = Engine(paper_settings(), frozen=True)
OPEN = sorted(
    s
    for s, p in ENGINE.pairs.items()
    if p.status.value == "OPEN" and p.api_supported and ENGINE.market.price(s) is not None
)
NOTIONAL_CAP = Decimal("500000")  # well inside 100000 USDT × the lowest default leverage


@st.composite
def valid_limit_order(draw: st.DrawFn) -> tuple[str, str, Decimal, Decimal]:
    symbol = draw(st.sampled_from(OPEN))
    pair = ENGINE.pairs[symbol]
    mark = ENGINE.market.price(symbol)
    assert mark is not None
    side = draw(st.sampled_from(["BUY", "SELL"]))
    # Passive prices inside the band: never marketable, so nothing fills.
    lo_ticks = int((mark * (1 - pair.price_protect_scope)) / pair.tick) + 1
    hi_ticks = int((mark * (1 + pair.price_protect_scope)) / pair.tick) - 1
    mark_ticks = int(mark / pair.tick)
    ticks = draw(
        st.integers(lo_ticks, mark_ticks - 2)
        if side == "BUY"
        else st.integers(mark_ticks + 2, hi_ticks)
    )
    price = pair.tick * ticks
    min_steps = int(pair.min_qty / pair.qty_step)
    cap = min(pair.max_limit_qty, NOTIONAL_CAP / price)
    max_steps = max(min_steps, int(cap / pair.qty_step))
    qty = pair.qty_step * draw(st.integers(min_steps, max_steps))
    return symbol, side, qty, price


def _place(symbol: str, side: str, qty: str, price: str) -> dict[str, str]:
    ENGINE.state = ENGINE.fresh_state()
    return orders.place_order(
        ENGINE, {"symbol": symbol, "side": side, "orderType": "LIMIT", "qty": qty, "price": price}
    )


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(valid_limit_order())
def test_on_grid_within_rules_is_accepted(order: tuple[str, str, Decimal, Decimal]) -> None:
    symbol, side, qty, price = order
    answer = _place(symbol, side, format(qty, "f"), format(price, "f"))
    placed = ENGINE.state.orders[answer["orderId"]]
    assert placed.status.value == "NEW"
    assert (placed.qty, placed.price) == (qty, price)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(valid_limit_order(), st.sampled_from(["qty", "price"]), st.integers(1, 9))
def test_off_grid_is_refused(
    order: tuple[str, str, Decimal, Decimal], which: str, digit: int
) -> None:
    symbol, side, qty, price = order
    pair = ENGINE.pairs[symbol]
    if which == "qty":
        qty = qty + pair.qty_step * Decimal(digit) / 10
    else:
        price = price + pair.tick * Decimal(digit) / 10
    try:
        _place(symbol, side, format(qty, "f"), format(price, "f"))
    except ExchangeError as exc:
        assert exc.code == errors.OFF_GRID_CODE
    else:
        raise AssertionError(f"off-grid {which} accepted: {symbol} {qty} @ {price}")
