"""The only converter between the wire and the domain.

Wire → domain: `exchange.schemas` models in, `trading.types` / `trading.rules` values out, every
amount a `Decimal` built from the wire's string (never through float). Domain → wire:
`format_decimal`, the one rendering of an amount we send.
A value we cannot read raises ValueError naming the field; the client turns it into BadResponse.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import TypeVar

from exchange import schemas as w
from exchange.errors import ExchangeError, Rejected, error_for
from exchange.models import (
    Account,
    Book,
    CancelFailure,
    CancelResult,
    ClosedPosition,
    Fill,
    LeverageMarginMode,
    Order,
    PlacedOrder,
    Position,
    Ticker,
    TpslOrder,
)
from trading.rules import PairRules
from trading.tiers import RiskTier
from trading.types import (
    Effect,
    MarginMode,
    OrderStatus,
    OrderType,
    PairStatus,
    PositionMode,
    PositionSide,
    Side,
    StopType,
)

E = TypeVar("E", bound=StrEnum)

ZERO = Decimal(0)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


# --- amounts -------------------------------------------------------------------------------------


def format_decimal(d: Decimal) -> str:
    """Render an amount for the wire: plain digits, no exponent, no trailing zeros, exact.

    `Decimal("1E-8")` → `"0.00000001"`, `Decimal("0E-8")` → `"0"`, `Decimal("65000.10")` →
    `"65000.1"`. Trailing zeros go because a venue counting decimals in the string could refuse
    `"0.10000"` against a 4-decimal step although the value is on the grid.
    """
    if not isinstance(d, Decimal):
        raise TypeError(f"amounts must be Decimal, got {type(d).__name__}")
    if not d.is_finite():
        raise ValueError(f"cannot send a non-finite amount: {d}")
    text = format(d, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    if text in ("-0", "", "-"):
        return "0"
    return text


def to_decimal(value: str, field: str) -> Decimal:
    try:
        result = Decimal(value)
    except (InvalidOperation, TypeError, ValueError):
        raise ValueError(f"{field}: {value!r} is not a decimal number") from None
    if not result.is_finite():
        raise ValueError(f"{field}: {value!r} is not a finite number")
    return result


def opt_decimal(value: str | None, field: str) -> Decimal | None:
    return None if value is None else to_decimal(value, field)


def zero_if_absent(value: str | None, field: str) -> Decimal:
    return ZERO if value is None else to_decimal(value, field)


def ms(value: int | str | None, field: str) -> int | None:
    """Epoch milliseconds from an int, a digit string, or an RFC 3339 string (seen on WS)."""
    if value is None:
        return None
    if isinstance(value, int):
        return value
    text = value.strip()
    if text.lstrip("-").isdigit():
        return int(text)
    try:
        stamp = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{field}: {value!r} is not a timestamp") from None
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=UTC)
    return (stamp - _EPOCH) // timedelta(milliseconds=1)


def _enum(cls: type[E], value: str | None, field: str) -> E:
    if value is None:
        raise ValueError(f"{field}: missing")
    try:
        return cls(value.upper())
    except ValueError:
        raise ValueError(f"{field}: unknown value {value!r}") from None


def _opt_enum(cls: type[E], value: str | None, field: str) -> E | None:
    return None if value is None else _enum(cls, value, field)


_STOP_TYPES = {"MARK": StopType.MARK_PRICE, "LAST": StopType.LAST_PRICE}
_MARGIN_MODES = {"ISOLATED": MarginMode.ISOLATION}


def _stop_type(value: str | None, field: str) -> StopType | None:
    # Doc examples use the short forms MARK/LAST; the tables use MARK_PRICE/LAST_PRICE.
    if value is None:
        return None
    return _STOP_TYPES.get(value.upper()) or _enum(StopType, value, field)


def _margin_mode(value: str | None, field: str) -> MarginMode | None:
    if value is None:
        return None
    return _MARGIN_MODES.get(value.upper()) or _enum(MarginMode, value, field)


def _effect(value: str | None) -> Effect | None:
    # Time in force is informational on read, and live feeds have sent nonsense here
    # ("LONG"/"SHORT"): an unknown value is dropped rather than failing the whole order.
    if value is None:
        return None
    try:
        return Effect(value.upper())
    except ValueError:
        return None


# --- market --------------------------------------------------------------------------------------


def pair_rules(pair: w.TradingPair) -> PairRules:
    """Raises ValueError for a status we do not know, PairRulesInvalid for unusable rules."""
    return PairRules.from_precisions(
        symbol=pair.symbol,
        base=pair.base,
        quote=pair.quote,
        base_precision=pair.basePrecision,
        quote_precision=pair.quotePrecision,
        min_qty=to_decimal(pair.minTradeVolume, "minTradeVolume"),
        max_limit_qty=to_decimal(pair.maxLimitOrderVolume, "maxLimitOrderVolume"),
        max_market_qty=to_decimal(pair.maxMarketOrderVolume, "maxMarketOrderVolume"),
        min_leverage=pair.minLeverage,
        max_leverage=pair.maxLeverage,
        default_leverage=pair.defaultLeverage,
        min_buy_price_offset=opt_decimal(pair.minBuyPriceOffset, "minBuyPriceOffset"),
        max_sell_price_offset=opt_decimal(pair.maxSellPriceOffset, "maxSellPriceOffset"),
        price_protect_scope=opt_decimal(pair.priceProtectScope, "priceProtectScope"),
        status=_enum(PairStatus, pair.symbolStatus, "symbolStatus"),
        api_supported=pair.isApiSupported,
    )


def ticker(t: w.Ticker) -> Ticker:
    if t.markPrice is None or t.lastPrice is None:
        raise ValueError(f"ticker {t.symbol}: no markPrice/lastPrice")
    return Ticker(
        symbol=t.symbol,
        mark_price=to_decimal(t.markPrice, "markPrice"),
        last_price=to_decimal(t.lastPrice, "lastPrice"),
    )


def book(symbol: str, depth: w.Depth) -> Book:
    def levels(raw: list[tuple[str, str]], side: str) -> list[tuple[Decimal, Decimal]]:
        return [(to_decimal(p, f"{side}.price"), to_decimal(q, f"{side}.qty")) for p, q in raw]

    # Sorted here so best_bid/best_ask never depend on the venue's ordering.
    bids = sorted(levels(depth.bids, "bids"), key=lambda lv: lv[0], reverse=True)
    asks = sorted(levels(depth.asks, "asks"), key=lambda lv: lv[0])
    return Book(symbol=symbol, bids=tuple(bids), asks=tuple(asks))


# --- account -------------------------------------------------------------------------------------


def account(a: w.Account) -> Account:
    return Account(
        margin_coin=a.marginCoin,
        available=to_decimal(a.available, "available"),
        frozen=to_decimal(a.frozen, "frozen"),
        margin=to_decimal(a.margin, "margin"),
        position_mode=_enum(PositionMode, a.positionMode, "positionMode"),
        cross_unrealized_pnl=to_decimal(a.crossUnrealizedPNL, "crossUnrealizedPNL"),
        isolation_unrealized_pnl=to_decimal(a.isolationUnrealizedPNL, "isolationUnrealizedPNL"),
        transfer=opt_decimal(a.transfer, "transfer"),
        bonus=opt_decimal(a.bonus, "bonus"),
    )


def leverage_margin_mode(x: w.LeverageMarginMode) -> LeverageMarginMode:
    mode = _margin_mode(x.marginMode, "marginMode")
    assert mode is not None  # marginMode is a required wire field
    return LeverageMarginMode(
        symbol=x.symbol, margin_coin=x.marginCoin, leverage=x.leverage, margin_mode=mode
    )


# --- orders and fills ----------------------------------------------------------------------------


def placed_order(x: w.OrderIds) -> PlacedOrder:
    return PlacedOrder(order_id=x.orderId, client_id=x.clientId)


def order(o: w.Order) -> Order:
    return Order(
        order_id=o.orderId,
        client_id=o.clientId,
        symbol=o.symbol,
        side=_enum(Side, o.side, "side"),
        # Examples carry the order type as `type` where the table says `orderType`.
        order_type=_enum(OrderType, o.orderType or o.type, "orderType"),
        effect=_effect(o.effect),
        qty=to_decimal(o.qty, "qty"),
        filled_qty=zero_if_absent(o.tradeQty, "tradeQty"),
        price=opt_decimal(o.price, "price"),
        avg_price=opt_decimal(o.avgPrice, "avgPrice"),
        status=_enum(OrderStatus, o.status, "status"),
        reduce_only=bool(o.reduceOnly),
        fee=zero_if_absent(o.fee, "fee"),
        realized_pnl=zero_if_absent(o.realizedPNL, "realizedPNL"),
        ctime_ms=ms(o.ctime, "ctime"),
        mtime_ms=ms(o.mtime, "mtime"),
    )


def fill(t: w.Trade) -> Fill:
    return Fill(
        trade_id=t.tradeId,
        order_id=t.orderId,
        client_id=t.clientId,
        symbol=t.symbol,
        side=_enum(Side, t.side, "side"),
        qty=to_decimal(t.qty, "qty"),
        price=to_decimal(t.price, "price"),
        fee=zero_if_absent(t.fee, "fee"),
        realized_pnl=zero_if_absent(t.realizedPNL, "realizedPNL"),
        role=t.roleType.upper() if t.roleType else None,
        ctime_ms=ms(t.ctime, "ctime"),
    )


def cancel_result(r: w.CancelOrdersResult) -> CancelResult:
    succeeded = tuple(s.orderId or s.clientId for s in r.successList if s.orderId or s.clientId)
    failed = tuple(
        CancelFailure(order_id=f.orderId, client_id=f.clientId, error=_cancel_error(f))
        for f in r.failureList
    )
    return CancelResult(succeeded=succeeded, failed=failed)


def _cancel_error(f: w.CancelFailure) -> ExchangeError:
    # Codes here may fall outside the documented table (10013 "Order status error"):
    # error_for makes those a plain Rejected.
    code = f.errorCode
    if isinstance(code, str):
        code = int(code) if code.strip().lstrip("-").isdigit() else None
    msg = f.errorMsg or "cancel failed"
    if code is None:
        return Rejected(None, msg, endpoint="cancel_orders")
    return error_for(code, msg).at("cancel_orders")


# --- positions -----------------------------------------------------------------------------------


def position(p: w.PendingPosition) -> Position:
    qty = to_decimal(p.qty, "qty")
    avg = opt_decimal(p.avgOpenPrice, "avgOpenPrice")
    entry_value = opt_decimal(p.entryValue, "entryValue")
    if avg is None and entry_value is not None and qty:
        # Older payloads carry only entryValue (notional at entry).
        avg = entry_value / qty
    return Position(
        position_id=p.positionId,
        symbol=p.symbol,
        side=_enum(PositionSide, p.side, "side"),
        qty=qty,
        avg_open_price=avg,
        leverage=p.leverage,
        margin_mode=_margin_mode(p.marginMode, "marginMode"),
        position_mode=_opt_enum(PositionMode, p.positionMode, "positionMode"),
        realized_pnl=zero_if_absent(p.realizedPNL, "realizedPNL"),
        unrealized_pnl=zero_if_absent(p.unrealizedPNL, "unrealizedPNL"),
        fee=zero_if_absent(p.fee, "fee"),
        funding=zero_if_absent(p.funding, "funding"),
        liq_price=opt_decimal(p.liqPrice, "liqPrice"),
    )


def closed_position(p: w.HistoryPosition) -> ClosedPosition:
    return ClosedPosition(
        position_id=p.positionId,
        symbol=p.symbol,
        side=_enum(PositionSide, p.side, "side"),
        max_qty=opt_decimal(p.maxQty, "maxQty"),
        entry_price=opt_decimal(p.entryPrice, "entryPrice"),
        close_price=opt_decimal(p.closePrice, "closePrice"),
        liq_qty=opt_decimal(p.liqQty, "liqQty"),
        leverage=p.leverage,
        margin_mode=_margin_mode(p.marginMode, "marginMode"),
        position_mode=_opt_enum(PositionMode, p.positionMode, "positionMode"),
        realized_pnl=zero_if_absent(p.realizedPNL, "realizedPNL"),
        fee=zero_if_absent(p.fee, "fee"),
        funding=zero_if_absent(p.funding, "funding"),
        liq_price=opt_decimal(p.liqPrice, "liqPrice"),
        ctime_ms=ms(p.ctime, "ctime"),
        mtime_ms=ms(p.mtime, "mtime"),
    )


def tpsl_order(t: w.TpslOrder) -> TpslOrder:
    return TpslOrder(
        id=t.id,
        position_id=t.positionId,
        symbol=t.symbol,
        tp_price=opt_decimal(t.tpPrice, "tpPrice"),
        tp_stop_type=_stop_type(t.tpStopType, "tpStopType"),
        tp_order_type=_opt_enum(OrderType, t.tpOrderType, "tpOrderType"),
        tp_order_price=opt_decimal(t.tpOrderPrice, "tpOrderPrice"),
        tp_qty=opt_decimal(t.tpQty, "tpQty"),
        sl_price=opt_decimal(t.slPrice, "slPrice"),
        sl_stop_type=_stop_type(t.slStopType, "slStopType"),
        sl_order_type=_opt_enum(OrderType, t.slOrderType, "slOrderType"),
        sl_order_price=opt_decimal(t.slOrderPrice, "slOrderPrice"),
        sl_qty=opt_decimal(t.slQty, "slQty"),
        status=t.status,
        ctime_ms=ms(t.ctime or None, "ctime"),
        trigger_time_ms=ms(t.triggerTime or None, "triggerTime") or None,  # 0/"": not fired
    )


def risk_tier(t: w.PositionTier) -> RiskTier:
    return RiskTier(
        level=t.level,
        start_value=to_decimal(t.startValue, "startValue"),
        end_value=to_decimal(t.endValue, "endValue"),
        max_leverage=t.leverage,
        maintenance_margin_rate=opt_decimal(t.maintenanceMarginRate, "maintenanceMarginRate"),
    )
