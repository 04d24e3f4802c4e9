"""The BitUnix paths the paper exchange serves, and the public market handlers.

Each endpoint names its handler `(engine, params) -> data`, whether it is private (signed,
rate-limited per account, subject to faults), and whether its answer may be dropped by the
`drop_response` fault ("order" for trade/place_order, "tpsl" for TP/SL placements).
GET parameters come from the query string, POST parameters from the JSON body.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from paper import account, closing, orders, tiers, tpsl, views
from paper.engine import Engine
from paper.errors import param_error
from paper.market import BOOK_LEVELS, DEPTH_LIMITS
from paper.wire import fmt, opt_str, req_str

PREFIX = "/api/v1/futures/"
Handler = Callable[[Engine, dict[str, Any]], Any]


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    handler: Handler
    private: bool
    mutates: bool = False
    drop_target: str | None = None


def _symbols(p: dict[str, Any]) -> set[str] | None:
    raw = opt_str(p, "symbols")
    return {s.strip() for s in raw.split(",") if s.strip()} if raw else None


def trading_pairs(eng: Engine, p: dict[str, Any]) -> list[dict[str, Any]]:
    wanted = _symbols(p)
    return [
        {**pair.raw, "symbolStatus": eng.status(symbol).value}
        for symbol, pair in eng.pairs.items()
        if wanted is None or symbol in wanted
    ]


def tickers(eng: Engine, p: dict[str, Any]) -> list[dict[str, Any]]:
    """PREVIEW pairs (no price) are absent, as on BitUnix. open = the start price."""
    wanted = _symbols(p)
    out = []
    for symbol, sm in eng.market.symbols.items():
        if sm.price is None or (wanted is not None and symbol not in wanted):
            continue
        start = sm.start_price or sm.price
        price = fmt(sm.price)
        out.append({
            "symbol": symbol, "markPrice": price, "lastPrice": price, "open": fmt(start),
            "last": price, "quoteVol": "0", "baseVol": "0",
            "high": fmt(max(start, sm.price)), "low": fmt(min(start, sm.price)),
        })
    return out


def depth(eng: Engine, p: dict[str, Any]) -> dict[str, Any]:
    symbol = req_str(p, "symbol")
    eng.pair(symbol)
    limit = opt_str(p, "limit") or str(BOOK_LEVELS)
    if limit not in DEPTH_LIMITS:
        raise param_error(f"limit must be one of {', '.join(DEPTH_LIMITS)}")
    bids, asks = eng.market.book(symbol, DEPTH_LIMITS[limit])
    return {
        "asks": [[fmt(px), fmt(q)] for px, q in asks],
        "bids": [[fmt(px), fmt(q)] for px, q in bids],
    }


def _ep(method: str, path: str, handler: Handler, private: bool = True, mutates: bool = False,
        drop: str | None = None) -> Endpoint:
    return Endpoint(method, PREFIX + path, handler, private, mutates, drop)


ENDPOINTS: tuple[Endpoint, ...] = (
    _ep("GET", "market/trading_pairs", trading_pairs, private=False),
    _ep("GET", "market/tickers", tickers, private=False),
    _ep("GET", "market/depth", depth, private=False),
    _ep("GET", "position/get_position_tiers", tiers.get_position_tiers, private=False),
    _ep("GET", "account", account.account),
    _ep("GET", "account/get_leverage_margin_mode", account.get_leverage_margin_mode),
    _ep("POST", "account/change_leverage", account.change_leverage, mutates=True),
    _ep("POST", "account/change_margin_mode", account.change_margin_mode, mutates=True),
    _ep("POST", "account/change_position_mode", account.change_position_mode, mutates=True),
    _ep("POST", "trade/place_order", orders.place_order, mutates=True, drop="order"),
    _ep("POST", "trade/cancel_orders", orders.cancel_orders, mutates=True),
    _ep("POST", "trade/cancel_all_orders", orders.cancel_all_orders, mutates=True),
    _ep("POST", "trade/modify_order", orders.modify_order, mutates=True),
    _ep("POST", "trade/flash_close_position", closing.flash_close_position, mutates=True),
    _ep("POST", "trade/close_all_position", closing.close_all_position, mutates=True),
    _ep("GET", "trade/get_order_detail", views.get_order_detail),
    _ep("GET", "trade/get_pending_orders", views.get_pending_orders),
    _ep("GET", "trade/get_history_orders", views.get_history_orders),
    _ep("GET", "trade/get_history_trades", views.get_history_trades),
    _ep("GET", "position/get_pending_positions", views.get_pending_positions),
    _ep("GET", "position/get_history_positions", views.get_history_positions),
    _ep("POST", "tpsl/place_order", lambda e, p: tpsl.place(e, p, whole_position=False),
        mutates=True, drop="tpsl"),
    _ep("POST", "tpsl/position/place_order", lambda e, p: tpsl.place(e, p, whole_position=True),
        mutates=True, drop="tpsl"),
    _ep("POST", "tpsl/modify_order", tpsl.modify, mutates=True),
    _ep("POST", "tpsl/position/modify_order", tpsl.modify_position, mutates=True),
    _ep("POST", "tpsl/cancel_order", tpsl.cancel, mutates=True),
    _ep("GET", "tpsl/get_pending_orders", views.tpsl_pending),
    _ep("GET", "tpsl/get_history_orders", views.tpsl_history),
)
