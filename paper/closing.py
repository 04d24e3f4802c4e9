"""Closes the exchange itself sends: flash close, close all, TP/SL legs and liquidations.

Each is a reduce-only order recorded like any other (visible in order history with `source`
flash_close | close_all | tpsl | liquidation), spelled as the position's mode spells a close:
hedge BUY+CLOSE for a long, one-way SELL reduce-only for a long.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

from paper import errors as E
from paper import ledger, rules
from paper.errors import ExchangeError
from paper.orders import execute_new
from paper.state import Order, Position, now_ms
from paper.wire import opt_str, req_str
from trading.types import Effect, OrderStatus, OrderType, PositionMode, TradeSide

if TYPE_CHECKING:
    from paper.engine import Engine


def _system_close(eng: Engine, pos: Position, qty: Decimal, order_type: OrderType,
                  price: Decimal | None, source: str) -> Order:
    """A reduce-only order the exchange itself sends for `pos` (TP/SL, flash close,
    close all, liquidation), spelled as that position mode spells a close."""
    st = eng.state
    hedge = pos.position_mode is PositionMode.HEDGE
    now = now_ms()
    order = Order(
        order_id=st.new_id(), client_id=None, symbol=pos.symbol,
        side=pos.side.entry_side if hedge else pos.side.exit_side,
        fill_side=pos.side.exit_side, trade_side=TradeSide.CLOSE if hedge else None,
        position_id=pos.position_id, reduce_only=True, closing=True, order_type=order_type,
        effect=Effect.IOC if order_type is OrderType.MARKET else Effect.GTC, qty=qty,
        price=price, status=OrderStatus.NEW, position_mode=pos.position_mode,
        margin_mode=pos.margin_mode, leverage=pos.leverage, ctime=now, mtime=now,
        source=source,
    )
    st.orders[order.order_id] = order
    return order


def market_close(eng: Engine, pos: Position, qty: Decimal | None, source: str) -> Order:
    """Close `qty` (default all) of `pos` at market, walking the book."""
    order = _system_close(eng, pos, qty or pos.qty, OrderType.MARKET, None, source)
    execute_new(eng, order)
    return order


def market_close_at(eng: Engine, pos: Position, price: Decimal, source: str) -> Order:
    """Close all of `pos` in one taker fill at `price` (a liquidation)."""
    order = _system_close(eng, pos, pos.qty, OrderType.MARKET, None, source)
    ledger.apply_fill(eng, order, pos.qty, price, ledger.TAKER)
    return order


def limit_close(eng: Engine, pos: Position, qty: Decimal, price: Decimal, source: str) -> Order:
    """A resting reduce-only limit (a triggered LIMIT-type TP/SL leg)."""
    order = _system_close(eng, pos, qty, OrderType.LIMIT, price, source)
    execute_new(eng, order)
    return order


def flash_close_position(eng: Engine, p: dict[str, Any]) -> dict[str, Any]:
    position_id = req_str(p, "positionId")
    pos = eng.state.positions.get(position_id)
    if pos is None or pos.closed:
        raise ExchangeError(E.POSITION_NOT_EXIST, position_id)
    rules.check_tradable(eng.pairs[pos.symbol], eng.status(pos.symbol), opening=False)
    market_close(eng, pos, None, "flash_close")
    return {"positionId": position_id}


def close_all_position(eng: Engine, p: dict[str, Any]) -> str:
    symbol = opt_str(p, "symbol")
    if symbol is not None:
        eng.pair(symbol)
    for pos in eng.state.open_positions(symbol):
        rules.check_tradable(eng.pairs[pos.symbol], eng.status(pos.symbol), opening=False)
        market_close(eng, pos, None, "close_all")
    return ""
