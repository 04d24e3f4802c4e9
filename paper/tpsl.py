"""TP/SL orders (docs/bitunix.md#tpsl-endpoints): order-level (`tpsl/place_order`, fixed
tpQty/slQty) and position-level (`tpsl/position/place_order`, closes the whole position, one per
position).

Triggers are evaluated on every price event (mark = last here, so MARK_PRICE and LAST_PRICE
behave alike): a LONG's TP fires at price >= tpPrice and its SL at price <= slPrice; a SHORT's
the other way round. A fired leg closes at market (or places a reduce-only limit at
tp/slOrderPrice when its order type is LIMIT); the record becomes FILLED with triggerTime and
its other leg is gone with it. When the position closes, its pending TP/SL become
SYSTEM_CANCELED.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

from paper import closing, rules
from paper import errors as E
from paper.errors import ExchangeError, param_error
from paper.state import (
    TPSL_CANCELED,
    TPSL_FAILED,
    TPSL_FILLED,
    TPSL_NEW,
    TPSL_SYSTEM_CANCELED,
    Order,
    Position,
    TpslOrder,
    now_ms,
)
from paper.wire import opt_decimal, opt_str, req_str
from trading.types import PositionSide, StopType

if TYPE_CHECKING:
    from paper.engine import Engine

# [UNCONFIRMED] 30038 "TP/SL amount must be less than the size of the position": read
# literally, an order-level TP/SL must cover strictly less than the position (qty == position
# → 30038). Set False to allow qty <= position. Position-level TP/SL is how to cover it all.
TPSL_QTY_STRICTLY_LESS = True
# [UNCONFIRMED] whether the short forms "MARK"/"LAST" (doc examples) are accepted; they are,
# and are stored as MARK_PRICE/LAST_PRICE.
ACCEPT_SHORT_STOP_TYPES = True
_SHORT_STOP = {"MARK": StopType.MARK_PRICE.value, "LAST": StopType.LAST_PRICE.value}
_ORDER_TYPES = ("MARKET", "LIMIT")


def _position(eng: Engine, symbol: str, position_id: str) -> Position:
    pos = eng.state.positions.get(position_id)
    if pos is None or pos.closed or pos.symbol != symbol:
        raise ExchangeError(E.POSITION_NOT_EXIST, position_id)
    return pos


def place(eng: Engine, p: dict[str, Any], whole_position: bool) -> dict[str, Any]:
    symbol = req_str(p, "symbol")
    pair = eng.pair(symbol)
    pos = _position(eng, symbol, req_str(p, "positionId"))
    rules.check_tradable(pair, eng.status(symbol), opening=False)
    if whole_position and _position_level(eng, pos) is not None:
        raise ExchangeError(E.POSITION_TPSL_EXISTS_CODE, "this position already has a TP/SL")
    now = now_ms()
    order = TpslOrder(
        order_id=eng.state.new_id(), position_id=pos.position_id, symbol=symbol, side=pos.side,
        position_mode=pos.position_mode, leverage=pos.leverage, whole_position=whole_position,
        ctime=now, mtime=now, visible_at=now + eng.faults.visibility_delay_ms,
    )
    _apply(eng, order, pos, p)
    eng.state.tpsl[order.order_id] = order
    return {"orderId": order.order_id}


def modify(eng: Engine, p: dict[str, Any]) -> dict[str, Any]:
    order_id = req_str(p, "orderId")
    order = eng.state.tpsl.get(order_id)
    if order is None:
        raise ExchangeError(E.ORDER_NOT_FOUND, order_id)
    if order.status != TPSL_NEW:
        raise ExchangeError(E.ORDER_NOT_OPEN_CODE, f"TP/SL order is {order.status}")
    pos = _position(eng, order.symbol, order.position_id)
    _apply(eng, order, pos, p)
    return {"orderId": order.order_id}


def modify_position(eng: Engine, p: dict[str, Any]) -> dict[str, Any]:
    symbol = req_str(p, "symbol")
    eng.pair(symbol)
    pos = _position(eng, symbol, req_str(p, "positionId"))
    order = _position_level(eng, pos)
    if order is None:
        raise ExchangeError(E.ORDER_NOT_FOUND, "no position TP/SL on this position")
    _apply(eng, order, pos, p)
    return {"orderId": order.order_id}


def cancel(eng: Engine, p: dict[str, Any]) -> dict[str, Any]:
    symbol = req_str(p, "symbol")
    order_id = req_str(p, "orderId")
    order = eng.state.tpsl.get(order_id)
    if order is None or order.symbol != symbol:
        raise ExchangeError(E.ORDER_NOT_FOUND, order_id)
    if order.status != TPSL_NEW:
        raise ExchangeError(E.ORDER_NOT_OPEN_CODE, f"TP/SL order is {order.status}")
    order.status = TPSL_CANCELED
    order.mtime = now_ms()
    return {"orderId": order_id}


def _position_level(eng: Engine, pos: Position) -> TpslOrder | None:
    for order in eng.state.tpsl.values():
        mine = order.position_id == pos.position_id and order.whole_position
        if mine and order.status == TPSL_NEW:
            return order
    return None


def _stop_type(raw: str | None, name: str) -> str:
    if raw is None:
        return StopType.MARK_PRICE.value
    if ACCEPT_SHORT_STOP_TYPES and raw in _SHORT_STOP:
        return _SHORT_STOP[raw]
    if raw not in (StopType.MARK_PRICE.value, StopType.LAST_PRICE.value):
        raise param_error(f"{name} must be MARK_PRICE or LAST_PRICE")
    return raw


def _apply(eng: Engine, order: TpslOrder, pos: Position, p: dict[str, Any]) -> None:
    """Validate every given leg first, then write them (a refused request changes nothing)."""
    pair = eng.pairs[order.symbol]
    mark = eng.market.price(order.symbol)
    updates: dict[str, Any] = {}
    for leg in ("tp", "sl"):
        price = opt_decimal(p, f"{leg}Price")
        if price is None:
            continue
        if price <= 0:
            raise ExchangeError(E.TRIGGER_PRICE_NOT_POSITIVE)
        rules.check_price_grid(pair, price, f"{leg}Price")
        _check_direction(leg, pos.side, price, mark)
        updates[f"{leg}_price"] = price
        updates[f"{leg}_stop_type"] = _stop_type(opt_str(p, f"{leg}StopType"), f"{leg}StopType")
        if order.whole_position:
            continue
        otype = opt_str(p, f"{leg}OrderType") or "MARKET"
        if otype not in _ORDER_TYPES:
            raise param_error(f"{leg}OrderType must be MARKET or LIMIT")
        oprice = opt_decimal(p, f"{leg}OrderPrice")
        if otype == "LIMIT":
            if oprice is None:
                raise param_error(f"{leg}OrderPrice is required when {leg}OrderType is LIMIT")
            rules.check_price_grid(pair, oprice, f"{leg}OrderPrice")
        qty = opt_decimal(p, f"{leg}Qty")
        if qty is None:
            qty = getattr(order, f"{leg}_qty")
        if qty is None:
            raise param_error(f"{leg}Qty is required with {leg}Price")
        _check_qty(pair, qty, pos, f"{leg}Qty")
        updates[f"{leg}_order_type"] = otype
        updates[f"{leg}_order_price"] = oprice if otype == "LIMIT" else None
        updates[f"{leg}_qty"] = qty
    if not updates:
        raise ExchangeError(E.SELECT_TP_OR_SL)
    for name, value in updates.items():
        setattr(order, name, value)
    order.mtime = now_ms()


def _check_qty(pair: Any, qty: Decimal, pos: Position, name: str) -> None:
    if qty <= 0:
        raise param_error(f"{name} must be positive")
    if not rules.on_grid(qty, pair.qty_step):
        raise ExchangeError(
            E.OFF_GRID_CODE, f"{name} {qty} has more than {pair.base_precision} decimals"
        )
    too_big = qty >= pos.qty if TPSL_QTY_STRICTLY_LESS else qty > pos.qty
    if too_big:
        raise ExchangeError(E.TPSL_QTY_TOO_LARGE, f"{name} {qty} vs position {pos.qty}")


def _check_direction(leg: str, side: PositionSide, price: Decimal, mark: Decimal | None) -> None:
    if mark is None:
        return
    long = side is PositionSide.LONG
    if leg == "tp" and long and price <= mark:
        raise ExchangeError(E.TP_ABOVE_MARK, str(mark))
    if leg == "tp" and not long and price >= mark:
        raise ExchangeError(E.TP_BELOW_MARK, str(mark))
    if leg == "sl" and long and price >= mark:
        raise ExchangeError(E.SL_BELOW_MARK, str(mark))
    if leg == "sl" and not long and price <= mark:
        raise ExchangeError(E.SL_ABOVE_MARK, str(mark))


def _fired_leg(order: TpslOrder, price: Decimal) -> str | None:
    long = order.side is PositionSide.LONG
    tp, sl = order.tp_price, order.sl_price
    if tp is not None and (price >= tp if long else price <= tp):
        return "tp"
    if sl is not None and (price <= sl if long else price >= sl):
        return "sl"
    return None


def evaluate(eng: Engine, symbol: str) -> None:
    price = eng.market.price(symbol)
    if price is None:
        return
    pending = sorted(
        (o for o in eng.state.tpsl.values() if o.symbol == symbol and o.status == TPSL_NEW),
        key=lambda o: (o.ctime, o.order_id),
    )
    for order in pending:
        if order.status != TPSL_NEW:
            continue
        pos = eng.state.positions.get(order.position_id)
        if pos is None or pos.closed:
            order.status = TPSL_SYSTEM_CANCELED
            order.mtime = now_ms()
            continue
        leg = _fired_leg(order, price)
        if leg is not None:
            _fire(eng, order, pos, leg)


def _fire(eng: Engine, order: TpslOrder, pos: Position, leg: str) -> None:
    now = now_ms()
    order.status = TPSL_FILLED
    order.trigger_time = now
    order.triggered_leg = leg
    order.mtime = now
    if order.whole_position:
        closing.market_close(eng, pos, None, "tpsl")
        return
    qty = min(getattr(order, f"{leg}_qty") or pos.qty, pos.qty)
    if qty <= 0:
        order.status = TPSL_FAILED
        return
    limit_price = getattr(order, f"{leg}_order_price")
    if getattr(order, f"{leg}_order_type") == "LIMIT" and limit_price is not None:
        closing.limit_close(eng, pos, qty, limit_price, "tpsl")
    else:
        closing.market_close(eng, pos, qty, "tpsl")


def on_opening_fill(eng: Engine, order: Order, pos: Position, qty: Decimal) -> None:
    """TP/SL attached to place_order become an order-level TP/SL sized to what filled."""
    a = order.attached
    if "tpPrice" not in a and "slPrice" not in a:
        return
    existing = eng.state.tpsl.get(order.attached_tpsl_id or "")
    if existing is not None and existing.status == TPSL_NEW:
        if existing.tp_price is not None:
            existing.tp_qty = (existing.tp_qty or 0) + qty
        if existing.sl_price is not None:
            existing.sl_qty = (existing.sl_qty or 0) + qty
        return
    now = now_ms()
    t = TpslOrder(
        order_id=eng.state.new_id(), position_id=pos.position_id, symbol=pos.symbol,
        side=pos.side, position_mode=pos.position_mode, leverage=pos.leverage,
        whole_position=False, ctime=now, mtime=now,
    )
    for leg in ("tp", "sl"):
        if f"{leg}Price" not in a:
            continue
        setattr(t, f"{leg}_price", Decimal(a[f"{leg}Price"]))
        setattr(t, f"{leg}_stop_type", _stop_type(a.get(f"{leg}StopType"), f"{leg}StopType"))
        otype = a.get(f"{leg}OrderType", "MARKET")
        setattr(t, f"{leg}_order_type", otype)
        if otype == "LIMIT" and f"{leg}OrderPrice" in a:
            setattr(t, f"{leg}_order_price", Decimal(a[f"{leg}OrderPrice"]))
        setattr(t, f"{leg}_qty", qty)
    eng.state.tpsl[t.order_id] = t
    order.attached_tpsl_id = t.order_id


def cancel_for_position(eng: Engine, pos: Position, system: bool) -> None:
    for order in eng.state.tpsl.values():
        if order.position_id == pos.position_id and order.status == TPSL_NEW:
            order.status = TPSL_SYSTEM_CANCELED if system else TPSL_CANCELED
            order.mtime = now_ms()
