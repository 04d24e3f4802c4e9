"""Matching against the simulated book.

* Takers (market orders, marketable limits) walk the opposite side's levels from the best
  price; a limit stops at its price. A market order larger than the whole book fills its rest
  at the deepest level (the book stands for deeper liquidity, it is never exhausted).
* A resting limit fills as maker at its own price when the price (mark = last) reaches it:
  a BUY when price <= its limit, a SELL when price >= its limit. Evaluated on every price event.
* With Settings.paper_partial_fills, a resting order's first maker fill takes half of what is
  left (on the qty grid) and the next price event that still crosses it fills the rest.
* Closing orders never fill more than the position they reduce holds; when that position is
  gone the order is cancelled.
"""

from __future__ import annotations

from decimal import ROUND_DOWN, Decimal
from typing import TYPE_CHECKING

from paper import ledger
from paper.state import ZERO, Order
from trading.types import OrderType, Side

if TYPE_CHECKING:
    from paper.engine import Engine


def clip(eng: Engine, order: Order, qty: Decimal) -> Decimal:
    if not order.closing:
        return qty
    target = ledger.reduce_target(eng, order)
    return min(qty, target.qty) if target is not None else ZERO


def would_take(eng: Engine, order: Order) -> bool:
    if order.order_type is OrderType.MARKET:
        return True
    assert order.price is not None
    bid, ask = eng.market.best_bid_ask(order.symbol)
    if order.fill_side is Side.BUY:
        return ask is not None and order.price >= ask
    return bid is not None and order.price <= bid


def _levels(eng: Engine, order: Order) -> list[tuple[Decimal, Decimal]]:
    bids, asks = eng.market.book(order.symbol)
    levels = asks if order.fill_side is Side.BUY else bids
    if order.price is None:
        return levels
    if order.fill_side is Side.BUY:
        return [lv for lv in levels if lv[0] <= order.price]
    return [lv for lv in levels if lv[0] >= order.price]


def fillable_now(eng: Engine, order: Order) -> Decimal:
    """What a taker could fill at once within its limit (FOK decides on this)."""
    return sum((size for _, size in _levels(eng, order)), ZERO)


def take(eng: Engine, order: Order) -> None:
    """Fill `order` as taker as far as the book and its limit allow."""
    qty = clip(eng, order, order.remaining)
    if qty <= 0:
        ledger.cancel_order_record(order)
        return
    levels = _levels(eng, order)
    for price, size in levels:
        step = min(qty, size)
        ledger.apply_fill(eng, order, step, price, ledger.TAKER)
        qty -= step
        if qty <= 0 or not order.is_open:
            return
    if qty > 0 and order.order_type is OrderType.MARKET and levels and order.is_open:
        ledger.apply_fill(eng, order, qty, levels[-1][0], ledger.TAKER)


def evaluate_resting(eng: Engine, symbol: str) -> None:
    price = eng.market.price(symbol)
    if price is None:
        return
    resting = sorted(
        (o for o in eng.state.open_orders(symbol) if o.order_type is OrderType.LIMIT),
        key=lambda o: (o.ctime, o.order_id),
    )
    for order in resting:
        if not order.is_open or order.price is None:
            continue
        crossed = price <= order.price if order.fill_side is Side.BUY else price >= order.price
        if not crossed:
            continue
        qty = clip(eng, order, order.remaining)
        if qty <= 0:
            ledger.cancel_order_record(order)
            continue
        if eng.settings.paper_partial_fills and order.maker_fills == 0:
            step = eng.pairs[symbol].qty_step
            half = (qty / 2).quantize(step, rounding=ROUND_DOWN)
            if 0 < half < qty:
                qty = half
        ledger.apply_fill(eng, order, qty, order.price, ledger.MAKER)
