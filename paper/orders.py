"""Trade endpoints that change orders: place, cancel, cancel all, modify (closes the exchange
sends itself are in closing.py).

Position rules (docs/bitunix.md#position-modes):
* HEDGE: `side` names the position. BUY+OPEN opens long, SELL+OPEN opens short, BUY+CLOSE
  closes the long, SELL+CLOSE closes the short; CLOSE needs `positionId` (10002 without it,
  30004 when it is not an open position of that side and symbol). `tradeSide` defaults to OPEN.
* ONE_WAY: `side` is the fill direction; an opposite order nets the position (and may flip it);
  `reduceOnly` (or tradeSide=CLOSE, treated as reduce-only — an assumption, so a hedge-style
  close sent in one-way mode is refused instead of opening more) needs a position (30018) on
  the other side (30019).
* Closing orders are clipped to the position at fill time; minTradeVolume applies to openings.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

from paper import errors as E
from paper import ledger, matching, rules, tiers
from paper.errors import ExchangeError, param_error
from paper.state import Order, now_ms
from paper.wire import (
    opt_bool,
    opt_decimal,
    opt_enum,
    opt_str,
    req_decimal,
    req_enum,
    req_str,
)
from trading.types import (
    Effect,
    OrderStatus,
    OrderType,
    PositionMode,
    PositionSide,
    Side,
    TradeSide,
)

if TYPE_CHECKING:
    from paper.engine import Engine

# The attached TP/SL fields of place_order / modify_order, echoed back on the order.
ATTACHED_FIELDS = (
    "tpPrice", "tpStopType", "tpOrderType", "tpOrderPrice",
    "slPrice", "slStopType", "slOrderType", "slOrderPrice",
)
_ATTACHED_PRICES = ("tpPrice", "tpOrderPrice", "slPrice", "slOrderPrice")
# MARK/LAST: the short forms of the doc examples, accepted (see tpsl.ACCEPT_SHORT_STOP_TYPES).
_STOP_TYPES = ("MARK_PRICE", "LAST_PRICE", "MARK", "LAST")


def place_order(eng: Engine, p: dict[str, Any]) -> dict[str, Any]:
    st = eng.state
    symbol = req_str(p, "symbol")
    pair = eng.pair(symbol)
    side = req_enum(p, "side", Side)
    order_type = req_enum(p, "orderType", OrderType)
    qty = req_decimal(p, "qty")
    price = opt_decimal(p, "price") if order_type is OrderType.LIMIT else None
    effect = opt_enum(p, "effect", Effect) or Effect.GTC
    client_id = opt_str(p, "clientId")
    reduce_only = opt_bool(p, "reduceOnly")
    trade_side = opt_enum(p, "tradeSide", TradeSide)
    rules.check_client_id(client_id)
    if client_id is not None and client_id in st.client_ids:
        raise ExchangeError(E.CLIENT_ID_DUPLICATE)

    hedge = st.position_mode is PositionMode.HEDGE
    closing = trade_side is TradeSide.CLOSE or (reduce_only and not hedge)
    rules.check_tradable(pair, eng.status(symbol), opening=not closing)
    position_id: str | None = None
    fill_side = side
    if hedge and closing:
        position_id = opt_str(p, "positionId")
        if position_id is None:
            raise param_error("positionId is required when tradeSide is CLOSE")
        wanted = PositionSide.LONG if side is Side.BUY else PositionSide.SHORT
        pos = st.positions.get(position_id)
        if pos is None or pos.closed or pos.symbol != symbol or pos.side is not wanted:
            raise ExchangeError(E.POSITION_NOT_EXIST, f"{position_id}")
        fill_side = wanted.exit_side
    elif closing:
        held = st.open_positions(symbol)
        if not held:
            raise ExchangeError(E.REDUCE_ONLY_NO_POSITION)
        if held[0].side.entry_side is side:
            raise ExchangeError(E.REDUCE_ONLY_SAME_DIRECTION)
    rules.check_qty(pair, qty, order_type, opening=not closing)
    mark = eng.market.price(symbol)
    if order_type is OrderType.LIMIT:
        if price is None:
            raise param_error("price is required for LIMIT orders")
        rules.check_price(pair, price, fill_side, mark)
    attached = _attached(eng, symbol, p)

    cfg = eng.config(symbol)
    _check_margin(eng, symbol, fill_side, qty, price, closing, cfg.leverage)
    tiers.check(eng, symbol, fill_side, qty, price, closing, cfg.leverage)
    now = now_ms()
    order = Order(
        order_id=st.new_id(), client_id=client_id, symbol=symbol, side=side,
        fill_side=fill_side, trade_side=trade_side, position_id=position_id,
        reduce_only=reduce_only, closing=closing, order_type=order_type, effect=effect,
        qty=qty, price=price, status=OrderStatus.NEW, position_mode=st.position_mode,
        margin_mode=cfg.margin_mode, leverage=cfg.leverage, ctime=now, mtime=now,
        visible_at=now + eng.faults.visibility_delay_ms, attached=attached,
    )
    if effect is Effect.POST_ONLY and matching.would_take(eng, order):
        if eng.post_only_mode() == "reject":
            raise ExchangeError(E.POST_ONLY_REJECT_CODE, "POST_ONLY order would take liquidity")
        _register(eng, order)
        ledger.cancel_order_record(order)  # created, then cancelled at once
        return _ids(order)
    _register(eng, order)
    execute_new(eng, order)
    return _ids(order)


def _register(eng: Engine, order: Order) -> None:
    eng.state.orders[order.order_id] = order
    if order.client_id is not None:
        eng.state.client_ids[order.client_id] = order.order_id


def execute_new(eng: Engine, order: Order) -> None:
    """Run a just-created order against the book according to its type and effect."""
    if order.order_type is OrderType.MARKET:
        matching.take(eng, order)
    elif matching.would_take(eng, order):
        if order.effect is Effect.FOK and matching.fillable_now(eng, order) < matching.clip(
            eng, order, order.remaining
        ):
            ledger.cancel_order_record(order)
            return
        matching.take(eng, order)
    if order.is_open and (
        order.order_type is OrderType.MARKET or order.effect in (Effect.IOC, Effect.FOK)
    ):
        ledger.cancel_order_record(order)


def _ids(order: Order) -> dict[str, Any]:
    return {"orderId": order.order_id, "clientId": order.client_id}


def _attached(eng: Engine, symbol: str, p: dict[str, Any]) -> dict[str, str]:
    pair = eng.pairs[symbol]
    out: dict[str, str] = {}
    for name in ATTACHED_FIELDS:
        if name in _ATTACHED_PRICES:
            value = opt_decimal(p, name)
            if value is not None:
                rules.check_price_grid(pair, value, name)
                out[name] = format(value, "f")
        else:
            text = opt_str(p, name)
            if text is None:
                continue
            allowed = _STOP_TYPES if name.endswith("StopType") else ("MARKET", "LIMIT")
            if text not in allowed:
                raise param_error(f"{name} must be one of {', '.join(allowed)}")
            out[name] = text
    return out


def _check_margin(eng: Engine, symbol: str, fill_side: Side, qty: Decimal,
                  price: Decimal | None, closing: bool, leverage: int) -> None:
    valued = ledger.opening_at(eng, symbol, fill_side, qty, price, closing)
    if valued is None:
        return
    opening, ref = valued
    need = opening * ref / leverage + opening * ref * eng.fee_rate(ledger.TAKER)
    if need > ledger.available(eng, eng.coin(symbol)):
        raise ExchangeError(E.INSUFFICIENT_BALANCE)


def find_order(eng: Engine, order_id: str | None, client_id: str | None) -> Order | None:
    """orderId wins when both are given (docs/bitunix.md#trade-endpoints)."""
    if order_id is not None:
        return eng.state.orders.get(order_id)
    if client_id is not None:
        oid = eng.state.client_ids.get(client_id)
        return eng.state.orders.get(oid) if oid else None
    raise param_error("orderId or clientId is required")


def cancel_orders(eng: Engine, p: dict[str, Any]) -> dict[str, Any]:
    symbol = req_str(p, "symbol")
    eng.pair(symbol)
    items = p.get("orderList")
    if not isinstance(items, list) or not items or not all(isinstance(i, dict) for i in items):
        raise param_error("orderList must be a non-empty list of {orderId} or {clientId}")
    success: list[dict[str, Any]] = []
    failure: list[dict[str, Any]] = []
    for item in items:
        oid, cid = opt_str(item, "orderId"), opt_str(item, "clientId")
        order = find_order(eng, oid, cid)
        if order is None or order.symbol != symbol:
            failure.append(_failure(oid, cid, E.ORDER_NOT_FOUND, "Order not found"))
            continue
        _cancel_one(eng, order, success, failure)
    return {"successList": success, "failureList": failure}


def cancel_all_orders(eng: Engine, p: dict[str, Any]) -> dict[str, Any]:
    symbol = opt_str(p, "symbol")
    if symbol is not None:
        eng.pair(symbol)
    success: list[dict[str, Any]] = []
    failure: list[dict[str, Any]] = []
    for order in sorted(eng.state.open_orders(symbol), key=lambda o: o.ctime):
        _cancel_one(eng, order, success, failure)
    return {"successList": success, "failureList": failure}


def _cancel_one(eng: Engine, order: Order, success: list[dict[str, Any]],
                failure: list[dict[str, Any]]) -> None:
    if eng.faults.cancel_fill_race and order.is_open and order.price is not None:
        # The fault's documented choice: the order fills completely, at its own price, as
        # maker, just before the cancel arrives, whatever the market price is.
        qty = matching.clip(eng, order, order.remaining)
        if qty > 0:
            ledger.apply_fill(eng, order, qty, order.price, ledger.MAKER)
    if not order.is_open:
        failure.append(_failure(order.order_id, order.client_id, E.CANCEL_TERMINAL_ERROR_CODE,
                                "Order status error"))
        return
    ledger.cancel_order_record(order)
    success.append(_ids(order))


def _failure(oid: str | None, cid: str | None, code: int, msg: str) -> dict[str, Any]:
    # errorCode is a string, as the vendor's response table types it.
    return {"orderId": oid, "clientId": cid, "errorMsg": msg, "errorCode": str(code)}


def modify_order(eng: Engine, p: dict[str, Any]) -> dict[str, Any]:
    order = find_order(eng, opt_str(p, "orderId"), opt_str(p, "clientId"))
    if order is None:
        raise ExchangeError(E.ORDER_NOT_FOUND)
    if not order.is_open or order.order_type is not OrderType.LIMIT:
        raise ExchangeError(E.ORDER_NOT_OPEN_CODE, f"order is {order.status.value}")
    pair = eng.pairs[order.symbol]
    qty = req_decimal(p, "qty")
    price = req_decimal(p, "price")
    rules.check_tradable(pair, eng.status(order.symbol), opening=not order.closing)
    rules.check_qty(pair, qty, OrderType.LIMIT, opening=not order.closing)
    if qty <= order.trade_qty:
        raise param_error(f"qty must exceed the filled qty {order.trade_qty}")
    rules.check_price(pair, price, order.fill_side, eng.market.price(order.symbol))
    probe_price, probe_qty = order.price, order.qty
    order.price, order.qty = price, qty
    if order.effect is Effect.POST_ONLY and matching.would_take(eng, order):
        if eng.post_only_mode() == "reject":
            order.price, order.qty = probe_price, probe_qty
            raise ExchangeError(E.POST_ONLY_REJECT_CODE, "POST_ONLY order would take liquidity")
        ledger.cancel_order_record(order)
        return _ids(order)
    order.attached.update(_attached(eng, order.symbol, p))
    order.mtime = now_ms()
    if matching.would_take(eng, order):
        matching.take(eng, order)
    return _ids(order)
