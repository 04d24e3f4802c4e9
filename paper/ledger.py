"""Money: applying a fill to positions and the wallet, margin, fees, PnL and liquidation.

Accounting model (documented simplifications):
* wallet balance = deposit + realized PnL − fees, per margin coin (the pair's quote coin);
* a position locks initial margin = its cost basis / leverage; an open order that can open
  exposure freezes (opening qty × limit price, or mark for market) / leverage;
* available = balance − position margin − frozen (unrealized PnL is not added, as BitUnix's
  `available + crossUnrealizedPNL = max open amount` says);
* fees are positive costs: qty × price × the maker or taker rate; realized PnL on fills and
  positions is gross (fees are reported separately), as BitUnix's position history says
  "realizedPNL (excl. funding fee and trading fee)".
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING

from paper import tpsl
from paper.state import ZERO, Fill, Order, Position, now_ms
from trading.types import MarginMode, OrderStatus, PositionMode, PositionSide, Side

if TYPE_CHECKING:
    from paper.engine import Engine

MAKER = "MAKER"
TAKER = "TAKER"
# Maintenance margin rate used for liquidation prices (BitUnix's tier 1 is 0.4–0.5 %).
MAINT_MARGIN_RATE = Decimal("0.005")
_Q = Decimal("1E-12")


def _q(value: Decimal) -> Decimal:
    return value.quantize(_Q, rounding=ROUND_HALF_UP)


def position_side(fill_side: Side) -> PositionSide:
    return PositionSide.LONG if fill_side is Side.BUY else PositionSide.SHORT


def reduce_target(eng: Engine, order: Order) -> Position | None:
    """The open position this order's fills reduce, if any."""
    st = eng.state
    if order.position_mode is PositionMode.HEDGE:
        if not order.closing or order.position_id is None:
            return None
        pos = st.positions.get(order.position_id)
        return pos if pos is not None and not pos.closed else None
    for pos in st.open_positions(order.symbol):
        if pos.side.exit_side is order.fill_side:
            return pos
    return None


def _open_target(eng: Engine, order: Order, now: int) -> Position:
    st = eng.state
    side = position_side(order.fill_side)
    for pos in st.open_positions(order.symbol):
        if pos.side is side:
            return pos
    cfg = eng.config(order.symbol)
    pos = Position(
        position_id=st.new_id(), symbol=order.symbol, coin=eng.coin(order.symbol), side=side,
        position_mode=st.position_mode, margin_mode=cfg.margin_mode, leverage=cfg.leverage,
        ctime=now, mtime=now,
    )
    st.positions[pos.position_id] = pos
    return pos


def apply_fill(eng: Engine, order: Order, qty: Decimal, price: Decimal, role: str) -> Fill:
    """Book one fill of `order`: reduce the opposite exposure first, then open with the rest
    (unless the order only closes). The caller has clipped `qty` for closing orders."""
    st = eng.state
    now = now_ms()
    rate = eng.fee_rate(role)
    fee = qty * price * rate
    pnl = ZERO
    rest = qty
    touched: Position | None = None
    target = reduce_target(eng, order)
    if target is not None:
        close_qty = min(rest, target.qty)
        target.fee += fee * close_qty / qty
        pnl = _reduce(eng, target, close_qty, price, now)
        eng.faults.note_position_change(target.position_id, -close_qty, now)
        rest -= close_qty
        touched = target
    if rest > 0 and not order.closing:
        pos = _open_target(eng, order, now)
        pos.fee += fee * rest / qty
        _increase(pos, rest, price, now)
        eng.faults.note_position_change(pos.position_id, rest, now)
        touched = pos
        tpsl.on_opening_fill(eng, order, pos, rest)
    st.balances[eng.coin(order.symbol)] -= fee
    order.trade_qty += qty
    order.deal_value += qty * price
    order.fee += fee
    order.realized_pnl += pnl
    order.mtime = now
    if role == MAKER:
        order.maker_fills += 1
    order.status = OrderStatus.FILLED if order.remaining <= 0 else OrderStatus.PART_FILLED
    fill = Fill(
        trade_id=st.new_id(), order_id=order.order_id, client_id=order.client_id,
        symbol=order.symbol, position_id=touched.position_id if touched else "",
        qty=qty, price=price, side=order.side, order_type=order.order_type,
        effect=order.effect, reduce_only=order.reduce_only, position_mode=order.position_mode,
        margin_mode=order.margin_mode, leverage=order.leverage, fee=fee, realized_pnl=pnl,
        role=role, ctime=now,
    )
    st.fills.append(fill)
    if target is not None and target.closed:
        close_position(eng, target)
    return fill


def _increase(pos: Position, qty: Decimal, price: Decimal, now: int) -> None:
    pos.qty += qty
    pos.entry_value += qty * price
    pos.margin = _q(pos.entry_value / pos.leverage)
    pos.opened_qty += qty
    pos.opened_value += qty * price
    pos.max_qty = max(pos.max_qty, pos.qty)
    pos.mtime = now


def _reduce(eng: Engine, pos: Position, qty: Decimal, price: Decimal, now: int) -> Decimal:
    cost = pos.entry_value if qty == pos.qty else _q(pos.entry_value * qty / pos.qty)
    value = qty * price
    pnl = value - cost if pos.side is PositionSide.LONG else cost - value
    pos.entry_value -= cost
    pos.qty -= qty
    pos.margin = _q(pos.entry_value / pos.leverage)
    pos.realized_pnl += pnl
    pos.closed_qty += qty
    pos.closed_value += value
    pos.mtime = now
    eng.state.balances[pos.coin] += pnl
    if pos.qty == 0:
        pos.closed = True
    return pnl


def close_position(eng: Engine, pos: Position) -> None:
    """A position reached zero: its TP/SL orders and the orders that could only close it go."""
    pos.closed = True
    tpsl.cancel_for_position(eng, pos, system=True)
    for order in eng.state.open_orders(pos.symbol):
        if order.closing and (order.position_id in (None, pos.position_id)):
            cancel_order_record(order)


def cancel_order_record(order: Order) -> None:
    order.status = (
        OrderStatus.PART_FILLED_CANCELED if order.trade_qty > 0 else OrderStatus.CANCELED
    )
    order.mtime = now_ms()


def opening_qty(eng: Engine, order_symbol: str, fill_side: Side, qty: Decimal,
                closing: bool) -> Decimal:
    """How much of `qty` would open exposure (one-way nets against the opposite position)."""
    if closing:
        return ZERO
    if eng.state.position_mode is PositionMode.HEDGE:
        return qty
    opposite = sum(
        (p.qty for p in eng.state.open_positions(order_symbol) if p.side.exit_side is fill_side),
        ZERO,
    )
    return max(qty - opposite, ZERO)


def opening_at(eng: Engine, symbol: str, fill_side: Side, qty: Decimal, price: Decimal | None,
               closing: bool) -> tuple[Decimal, Decimal] | None:
    """What of an order would open exposure and the price it is valued at (its own, else the
    touch it would take, else the mark); None when it opens nothing."""
    opening = opening_qty(eng, symbol, fill_side, qty, closing)
    if opening <= 0:
        return None
    bid, ask = eng.market.best_bid_ask(symbol)
    ref = price or (ask if fill_side is Side.BUY else bid) or eng.market.price(symbol)
    assert ref is not None
    return opening, ref


def frozen(eng: Engine, coin: str) -> Decimal:
    total = ZERO
    for order in eng.state.open_orders():
        if eng.coin(order.symbol) != coin:
            continue
        opening = opening_qty(eng, order.symbol, order.fill_side, order.remaining, order.closing)
        ref = order.price or eng.market.price(order.symbol) or ZERO
        total += opening * ref / order.leverage
    return _q(total)


def position_margin(eng: Engine, coin: str) -> Decimal:
    return sum((p.margin for p in eng.state.open_positions() if p.coin == coin), ZERO)


def available(eng: Engine, coin: str) -> Decimal:
    return eng.state.balances.get(coin, ZERO) - position_margin(eng, coin) - frozen(eng, coin)


def unrealized(eng: Engine, pos: Position) -> Decimal:
    mark = eng.market.price(pos.symbol)
    if mark is None or pos.qty == 0:
        return ZERO
    value = pos.qty * mark
    return value - pos.entry_value if pos.side is PositionSide.LONG else pos.entry_value - value


def liq_price(eng: Engine, pos: Position) -> Decimal:
    """Where equity backing the position falls to maintenance margin; <= 0 means none.
    Isolated: the position's margin backs it; cross: its margin plus the free balance."""
    if pos.qty == 0:
        return ZERO
    backing = pos.margin
    if pos.margin_mode is MarginMode.CROSS:
        backing += max(available(eng, pos.coin), ZERO)
    if pos.side is PositionSide.LONG:
        price = (pos.entry_value - backing) / (pos.qty * (1 - MAINT_MARGIN_RATE))
    else:
        price = (pos.entry_value + backing) / (pos.qty * (1 + MAINT_MARGIN_RATE))
    if price <= 0:
        return ZERO
    return eng.pairs[pos.symbol].snap_price(price)


def breached(eng: Engine, pos: Position, price: Decimal) -> bool:
    lp = liq_price(eng, pos)
    if lp <= 0:
        return False
    return price <= lp if pos.side is PositionSide.LONG else price >= lp
