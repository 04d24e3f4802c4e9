"""Records → BitUnix wire objects, and the list/detail query endpoints.

Decimals are strings without exponent; leverage and ctime/mtime are ints; derived values
(average prices, margin) are rounded to 12 decimals (prices to quotePrecision + 4).
Lists are newest first; `skip`/`limit` (default 10, max 100) page them; `total` counts matches.
"""

from __future__ import annotations

from dataclasses import replace
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING, Any

from paper import errors as E
from paper import ledger
from paper.errors import ExchangeError, param_error
from paper.orders import ATTACHED_FIELDS, find_order
from paper.state import (
    TPSL_NEW,
    ZERO,
    Fill,
    Order,
    Position,
    TpslOrder,
    now_ms,
)
from paper.wire import fmt, opt_bool, opt_int, opt_str, paging
from trading.types import OrderStatus

if TYPE_CHECKING:
    from paper.engine import Engine

_MONEY = Decimal("1E-12")
_CANCELED = (OrderStatus.CANCELED, OrderStatus.SYSTEM_CANCELED)


def money(value: Decimal) -> str:
    return fmt(value.quantize(_MONEY, rounding=ROUND_HALF_UP)) or "0"


def price_str(eng: Engine, symbol: str, value: Decimal | None) -> str | None:
    if value is None:
        return None
    places = Decimal(1).scaleb(-(eng.pairs[symbol].quote_precision + 4))
    return fmt(value.quantize(places, rounding=ROUND_HALF_UP))


def order_view(eng: Engine, o: Order) -> dict[str, Any]:
    avg = o.deal_value / o.trade_qty if o.trade_qty else None
    view: dict[str, Any] = {
        "orderId": o.order_id, "symbol": o.symbol, "qty": fmt(o.qty), "tradeQty": fmt(o.trade_qty),
        "price": fmt(o.price), "avgPrice": price_str(eng, o.symbol, avg), "side": o.side.value,
        "orderType": o.order_type.value, "type": o.order_type.value, "effect": o.effect.value,
        "clientId": o.client_id, "reduceOnly": o.reduce_only, "status": o.status.value,
        "fee": money(o.fee), "realizedPNL": money(o.realized_pnl),
        "positionMode": o.position_mode.value, "marginMode": o.margin_mode.value,
        "leverage": o.leverage, "source": o.source, "ctime": o.ctime, "mtime": o.mtime,
    }
    for name in ATTACHED_FIELDS:
        view[name] = o.attached.get(name)
    if eng.faults.omit_avg_price:
        del view["avgPrice"]  # BitUnix's documented order object has none
    return view


def position_view(eng: Engine, p: Position) -> dict[str, Any]:
    upnl = ledger.unrealized(eng, p)
    maint = p.entry_value * ledger.MAINT_MARGIN_RATE
    equity = p.margin + upnl
    return {
        "positionId": p.position_id, "symbol": p.symbol, "qty": fmt(p.qty),
        "entryValue": money(p.entry_value), "side": p.side.value,
        "marginMode": p.margin_mode.value, "positionMode": p.position_mode.value,
        "leverage": p.leverage, "fee": money(p.fee), "funding": money(p.funding),
        "realizedPNL": money(p.realized_pnl), "margin": money(p.margin),
        "unrealizedPNL": money(upnl), "liqPrice": fmt(ledger.liq_price(eng, p)),
        "marginRate": money(maint / equity) if equity > 0 else "1",
        "avgOpenPrice": price_str(eng, p.symbol, p.avg_price), "ctime": p.ctime, "mtime": p.mtime,
    }


def history_position_view(eng: Engine, p: Position) -> dict[str, Any]:
    entry = p.opened_value / p.opened_qty if p.opened_qty else ZERO
    close = p.closed_value / p.closed_qty if p.closed_qty else ZERO
    return {
        "positionId": p.position_id, "symbol": p.symbol, "maxQty": fmt(p.max_qty),
        "entryPrice": price_str(eng, p.symbol, entry),
        "closePrice": price_str(eng, p.symbol, close),
        "liqQty": fmt(p.liq_qty), "side": p.side.value, "marginMode": p.margin_mode.value,
        "positionMode": p.position_mode.value, "leverage": p.leverage, "fee": money(p.fee),
        "funding": money(p.funding), "realizedPNL": money(p.realized_pnl),
        "liqPrice": fmt(p.liq_price) if p.liq_price is not None else "0",
        "ctime": p.ctime, "mtime": p.mtime,
    }


def fill_view(f: Fill) -> dict[str, Any]:
    return {
        "tradeId": f.trade_id, "orderId": f.order_id, "symbol": f.symbol, "qty": fmt(f.qty),
        "price": fmt(f.price), "side": f.side.value, "orderType": f.order_type.value,
        "type": f.order_type.value, "effect": f.effect.value, "clientId": f.client_id,
        "reduceOnly": f.reduce_only, "positionMode": f.position_mode.value,
        "marginMode": f.margin_mode.value, "leverage": f.leverage, "fee": money(f.fee),
        "realizedPNL": money(f.realized_pnl), "ctime": f.ctime, "roleType": f.role,
    }


def tpsl_view(eng: Engine, t: TpslOrder, history: bool) -> dict[str, Any]:
    pair = eng.pairs[t.symbol]
    view: dict[str, Any] = {
        "id": t.order_id, "positionId": t.position_id, "symbol": t.symbol,
        "base": pair.base, "quote": pair.quote,
        "tpPrice": fmt(t.tp_price), "tpStopType": t.tp_stop_type,
        "slPrice": fmt(t.sl_price), "slStopType": t.sl_stop_type,
        "tpOrderType": t.tp_order_type, "tpOrderPrice": fmt(t.tp_order_price),
        "slOrderType": t.sl_order_type, "slOrderPrice": fmt(t.sl_order_price),
        "tpQty": fmt(t.tp_qty), "slQty": fmt(t.sl_qty),
    }
    if history:
        view.update(status=t.status, ctime=t.ctime, triggerTime=t.trigger_time)
    return view


def _in_window(ctime: int, p: dict[str, Any]) -> bool:
    start, end = opt_int(p, "startTime"), opt_int(p, "endTime")
    return (start is None or ctime >= start) and (end is None or ctime <= end)


def _page(items: list[Any], p: dict[str, Any]) -> tuple[list[Any], int]:
    skip, limit = paging(p)
    return items[skip: skip + limit], len(items)


def _visible_orders(eng: Engine, p: dict[str, Any]) -> list[Order]:
    now = now_ms()
    symbol, oid, cid = opt_str(p, "symbol"), opt_str(p, "orderId"), opt_str(p, "clientId")
    out = [
        o for o in eng.state.orders.values()
        if o.visible_at <= now and (symbol is None or o.symbol == symbol)
        and (oid is None or o.order_id == oid) and (cid is None or o.client_id == cid)
        and _in_window(o.ctime, p)
    ]
    out.sort(key=lambda o: (o.ctime, o.order_id), reverse=True)
    return out


def get_order_detail(eng: Engine, p: dict[str, Any]) -> dict[str, Any]:
    order = find_order(eng, opt_str(p, "orderId"), opt_str(p, "clientId"))
    if order is None or order.visible_at > now_ms():
        raise ExchangeError(E.ORDER_NOT_FOUND)
    return order_view(eng, order)


def get_pending_orders(eng: Engine, p: dict[str, Any]) -> dict[str, Any]:
    status = opt_str(p, "status")
    if status is not None and status not in ("NEW", "PART_FILLED"):
        raise param_error("status must be NEW or PART_FILLED")
    items = [
        o for o in _visible_orders(eng, p)
        if o.is_open and (status is None or o.status.value == status)
    ]
    page, total = _page(items, p)
    return {"orderList": [order_view(eng, o) for o in page], "total": total}


def get_history_orders(eng: Engine, p: dict[str, Any]) -> dict[str, Any]:
    """queryCanceled=true: cancelled orders only; false (default): all but the cancelled ones,
    as documented. PART_FILLED_CANCELED has fills and shows in both."""
    status, otype = opt_str(p, "status"), opt_str(p, "type")
    canceled_only = opt_bool(p, "queryCanceled")
    items = []
    for o in _visible_orders(eng, p):
        if o.is_open or (status is not None and o.status.value != status):
            continue
        if otype is not None and o.order_type.value != otype:
            continue
        if canceled_only and o.status not in (*_CANCELED, OrderStatus.PART_FILLED_CANCELED):
            continue
        if not canceled_only and o.status in _CANCELED and status is None:
            continue
        items.append(o)
    page, total = _page(items, p)
    return {"orderList": [order_view(eng, o) for o in page], "total": total}


def get_history_trades(eng: Engine, p: dict[str, Any]) -> dict[str, Any]:
    symbol, oid, pid = opt_str(p, "symbol"), opt_str(p, "orderId"), opt_str(p, "positionId")
    items = [
        f for f in reversed(eng.state.fills)
        if (symbol is None or f.symbol == symbol) and (oid is None or f.order_id == oid)
        and (pid is None or f.position_id == pid) and _in_window(f.ctime, p)
        and _fill_listed(eng, f)
    ]
    page, total = _page(items, p)
    return {"tradeList": [fill_view(f) for f in page], "total": total}


def _fill_listed(eng: Engine, f: Fill) -> bool:
    """The fills of a close a TP/SL made are listed `tpsl_fill_delay_ms` late (a fault)."""
    delay = eng.faults.tpsl_fill_delay_ms
    if not delay:
        return True
    order = eng.state.orders.get(f.order_id)
    return order is None or order.source != "tpsl" or f.ctime + delay <= now_ms()


def get_pending_positions(eng: Engine, p: dict[str, Any]) -> list[dict[str, Any]]:
    symbol, pid = opt_str(p, "symbol"), opt_str(p, "positionId")
    return [
        position_view(eng, pos) for pos in _positions_shown(eng, symbol)
        if pid is None or pos.position_id == pid
    ]


def _positions_shown(eng: Engine, symbol: str | None) -> list[Position]:
    """The open positions a read shows: with the `position_lag_ms` fault, each as it was that
    long ago (a position opened within the lag is not shown yet, one closed within it still is).
    Only the quantity is rewound; the cost basis is scaled to it, margin and fees are today's."""
    if eng.faults.position_lag_ms == 0:
        return eng.state.open_positions(symbol)
    now = now_ms()
    shown = []
    for pos in eng.state.positions.values():
        if symbol is not None and pos.symbol != symbol:
            continue
        unseen = eng.faults.unseen_position_change(pos.position_id, now)
        if unseen == 0:
            if not pos.closed:
                shown.append(pos)
            continue
        qty = pos.qty - unseen
        if qty > 0:
            avg = pos.avg_price if pos.qty else pos.opened_value / pos.opened_qty
            shown.append(replace(pos, qty=qty, entry_value=avg * qty, closed=False))
    return shown


def get_history_positions(eng: Engine, p: dict[str, Any]) -> dict[str, Any]:
    symbol, pid = opt_str(p, "symbol"), opt_str(p, "positionId")
    items = [
        pos for pos in eng.state.positions.values()
        if pos.closed and (symbol is None or pos.symbol == symbol)
        and (pid is None or pos.position_id == pid) and _in_window(pos.ctime, p)
    ]
    items.sort(key=lambda x: (x.mtime, x.position_id), reverse=True)
    page, total = _page(items, p)
    return {"positionList": [history_position_view(eng, x) for x in page], "total": total}


def _tpsl_matches(t: TpslOrder, p: dict[str, Any]) -> bool:
    symbol, pid = opt_str(p, "symbol"), opt_str(p, "positionId")
    side, mode = opt_str(p, "side"), opt_str(p, "positionMode")
    return (
        (symbol is None or t.symbol == symbol) and (pid is None or t.position_id == pid)
        and (side is None or t.side.value == side)
        and (mode is None or t.position_mode.value == mode)
    )


def _tpsl_visible(eng: Engine, p: dict[str, Any]) -> list[TpslOrder]:
    """The TP/SL orders a query may see (a new one stays unseen for `visibility_delay_ms`)."""
    now = now_ms()
    return [t for t in eng.state.tpsl.values() if t.visible_at <= now and _tpsl_matches(t, p)]


def tpsl_pending(eng: Engine, p: dict[str, Any]) -> list[dict[str, Any]]:
    items = [t for t in _tpsl_visible(eng, p) if t.status == TPSL_NEW]
    items.sort(key=lambda t: (t.ctime, t.order_id), reverse=True)
    page, _ = _page(items, p)
    return [tpsl_view(eng, t, history=False) for t in page]


def tpsl_history(eng: Engine, p: dict[str, Any]) -> dict[str, Any]:
    # A TP/SL that ended shows here `tpsl_history_delay_ms` after it ended (a fault): until
    # then it is in neither list.
    shown_until = now_ms() - eng.faults.tpsl_history_delay_ms
    items = [t for t in _tpsl_visible(eng, p) if t.status != TPSL_NEW and _in_window(t.ctime, p)
             and t.mtime <= shown_until]
    items.sort(key=lambda t: (t.mtime, t.order_id), reverse=True)
    page, total = _page(items, p)
    return {"orderList": [tpsl_view(eng, t, history=True) for t in page], "total": total}
