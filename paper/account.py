"""Account endpoints: balance, leverage, margin mode and position mode
(docs/bitunix.md#account-endpoints).

Leverage and margin mode are per symbol and refused with 20006 while that symbol has an open
order or position (asking for the value it already has always succeeds). The position mode is
per account and refused with 20009 while any position or open order exists.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from paper import errors as E
from paper import ledger
from paper.errors import ExchangeError, param_error
from paper.views import money
from paper.wire import opt_int, req_enum, req_str
from trading.types import MarginMode, PositionMode

if TYPE_CHECKING:
    from paper.engine import Engine

# [UNCONFIRMED] the shape of /account `data`: documented as a one-element list, parsed as an
# object by the official Java demo (docs/bitunix.md#response-envelope). The documented list is
# served.
ACCOUNT_DATA_AS_LIST = True


def _coin(eng: Engine, p: dict[str, Any]) -> str:
    coin = req_str(p, "marginCoin")
    if coin not in eng.state.balances:
        raise param_error(f"unknown marginCoin {coin}")
    return coin


def account(eng: Engine, p: dict[str, Any]) -> Any:
    coin = _coin(eng, p)
    cross = isolation = ledger.ZERO
    for pos in eng.state.open_positions():
        if pos.coin != coin:
            continue
        if pos.margin_mode is MarginMode.CROSS:
            cross += ledger.unrealized(eng, pos)
        else:
            isolation += ledger.unrealized(eng, pos)
    available = ledger.available(eng, coin)
    data = {
        "marginCoin": coin,
        "available": money(available),
        "frozen": money(ledger.frozen(eng, coin)),
        "margin": money(ledger.position_margin(eng, coin)),
        "transfer": money(max(available, ledger.ZERO)),
        "positionMode": eng.state.position_mode.value,
        "crossUnrealizedPNL": money(cross),
        "isolationUnrealizedPNL": money(isolation),
        "bonus": "0",
    }
    return [data] if ACCOUNT_DATA_AS_LIST else data


def get_leverage_margin_mode(eng: Engine, p: dict[str, Any]) -> dict[str, Any]:
    symbol = req_str(p, "symbol")
    eng.pair(symbol)
    coin = _coin(eng, p)
    cfg = eng.config(symbol)
    return {"symbol": symbol, "marginCoin": coin, "leverage": cfg.leverage,
            "marginMode": cfg.margin_mode.value}


def _busy(eng: Engine, symbol: str) -> bool:
    return bool(eng.state.open_orders(symbol) or eng.state.open_positions(symbol))


def change_leverage(eng: Engine, p: dict[str, Any]) -> list[dict[str, Any]]:
    symbol = req_str(p, "symbol")
    pair = eng.pair(symbol)
    coin = _coin(eng, p)
    leverage = opt_int(p, "leverage")
    if leverage is None:
        raise param_error("leverage is required")
    if not pair.min_leverage <= leverage <= pair.max_leverage:
        raise ExchangeError(E.INVALID_LEVERAGE, f"{pair.min_leverage}..{pair.max_leverage}")
    cfg = eng.config(symbol)
    if leverage != cfg.leverage:
        if _busy(eng, symbol):
            raise ExchangeError(E.OPEN_ORDERS_OR_POSITION)
        cfg.leverage = leverage
    return [{"symbol": symbol, "marginCoin": coin, "leverage": cfg.leverage}]


def change_margin_mode(eng: Engine, p: dict[str, Any]) -> list[dict[str, Any]]:
    symbol = req_str(p, "symbol")
    eng.pair(symbol)
    coin = _coin(eng, p)
    mode = req_enum(p, "marginMode", MarginMode)
    cfg = eng.config(symbol)
    if mode is not cfg.margin_mode:
        if _busy(eng, symbol):
            raise ExchangeError(E.OPEN_ORDERS_OR_POSITION)
        cfg.margin_mode = mode
    return [{"symbol": symbol, "marginCoin": coin, "marginMode": cfg.margin_mode.value}]


def change_position_mode(eng: Engine, p: dict[str, Any]) -> list[dict[str, Any]]:
    mode = req_enum(p, "positionMode", PositionMode)
    st = eng.state
    if mode is not st.position_mode:
        if st.open_orders() or st.open_positions():
            raise ExchangeError(E.POSITION_MODE_LOCKED)
        st.position_mode = mode
    return [{"positionMode": st.position_mode.value}]
