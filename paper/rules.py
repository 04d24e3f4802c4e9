"""The exchange-side rule check, independent of any `trading/` code: a precision or limit bug
anywhere upstream shows up here as a rejection with BitUnix's code.

Order of checks (first failure wins): API support → symbol status → qty format and grid →
min qty (openings only) → max qty → price format and grid → price band.
"""

from __future__ import annotations

from decimal import Decimal

from paper import errors as E
from paper.errors import ExchangeError
from paper.instruments import Pair
from trading.types import OrderType, PairStatus, Side

# [UNCONFIRMED] BitUnix's clientId length limit; cachy caps it at 64 (docs/bitunix.md#client-ids).
CLIENT_ID_MAX_LEN = 64


def on_grid(value: Decimal, step: Decimal) -> bool:
    """True when value is an integer multiple of step (by value: "0.10" is on a 0.1 grid)."""
    return value % step == 0


def check_tradable(pair: Pair, status: PairStatus, opening: bool) -> None:
    """isApiSupported false → NOT_API_SUPPORTED_CODE; STOP/PREVIEW refuse every order;
    CANCEL_ONLY refuses openings but lets closes (reduce-only) through."""
    if not pair.api_supported:
        raise ExchangeError(E.NOT_API_SUPPORTED_CODE, f"{pair.symbol} is not open to API trading")
    if status in (PairStatus.STOP, PairStatus.PREVIEW):
        raise ExchangeError(E.SYMBOL_STATUS_CODE, f"{pair.symbol} is {status.value}")
    if status is PairStatus.CANCEL_ONLY and opening:
        raise ExchangeError(E.SYMBOL_STATUS_CODE, f"{pair.symbol} is CANCEL_ONLY")


def check_qty(pair: Pair, qty: Decimal, order_type: OrderType, opening: bool) -> None:
    if qty <= 0:
        raise E.param_error("qty must be positive")
    if not on_grid(qty, pair.qty_step):
        raise ExchangeError(
            E.OFF_GRID_CODE, f"qty {qty} has more than {pair.base_precision} decimals"
        )
    # minTradeVolume is a minimum for openings, not for closes (docs/design.md#ownership).
    if opening and qty < pair.min_qty:
        raise ExchangeError(E.MIN_QTY, f"{pair.min_qty}")
    if order_type is OrderType.LIMIT and qty > pair.max_limit_qty:
        raise ExchangeError(E.MAX_LIMIT_QTY, f"{pair.max_limit_qty}")
    if order_type is OrderType.MARKET and qty > pair.max_market_qty:
        raise ExchangeError(E.MAX_MARKET_QTY, f"{pair.max_market_qty}")


def check_price_grid(pair: Pair, price: Decimal, name: str = "price") -> None:
    if price <= 0:
        raise E.param_error(f"{name} must be positive")
    if not on_grid(price, pair.tick):
        raise ExchangeError(
            E.OFF_GRID_CODE, f"{name} {price} has more than {pair.quote_precision} decimals"
        )


def check_price(pair: Pair, price: Decimal, fill_side: Side, mark: Decimal | None) -> None:
    """Grid, then the band around the mark price, by the direction the order fills in:
    a buy at most mark·(1+priceProtectScope) (30014), a sell at least mark·(1−scope) (30015)."""
    check_price_grid(pair, price)
    if mark is None:
        return
    scope = pair.price_protect_scope
    if fill_side is Side.BUY and price > mark * (1 + scope):
        raise ExchangeError(E.MAX_BUY_PRICE, f"{mark * (1 + scope)}")
    if fill_side is Side.SELL and price < mark * (1 - scope):
        raise ExchangeError(E.MIN_SELL_PRICE, f"{mark * (1 - scope)}")


def check_client_id(client_id: str | None) -> None:
    if client_id is not None and len(client_id) > CLIENT_ID_MAX_LEN:
        raise E.param_error(f"clientId longer than {CLIENT_ID_MAX_LEN} characters")
