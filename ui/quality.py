"""Execution quality, pure: how far each fill landed from the alert's price, how long the alert
took to become an order and a fill, and what that cost.

Conventions (the dashboard and README say the same):
* slippage in basis points of the alert's price, signed so that a positive number is worse
  for the trader: a buy above the alert's price, a sell below it;
* the PnL lost to execution: the quantity times that price difference, in the quote currency
  (USDT), positive when execution cost money; fees are shown beside it, not inside it;
* latencies from the moment the webhook received the alert (the `signal` row), in ms.

Only fills of the trade's own entry are measured against its alert: an exit's price belongs
to the exit alert (or to a TP/SL), not to the alert that opened the trade."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from trading.types import Side

BPS = Decimal(10000)
ZERO = Decimal(0)


def slippage_bps(side: Side, alert_price: Decimal, fill_price: Decimal) -> Decimal:
    """Positive: worse than the alert's price (a buy above it, a sell below it)."""
    if alert_price <= 0:
        raise ValueError(f"alert price must be positive, got {alert_price}")
    move = fill_price - alert_price if side is Side.BUY else alert_price - fill_price
    return move / alert_price * BPS


def execution_cost(side: Side, alert_price: Decimal, qty: Decimal, fill_price: Decimal) -> Decimal:
    """Quote currency lost against filling `qty` at the alert's price (negative: gained)."""
    move = fill_price - alert_price if side is Side.BUY else alert_price - fill_price
    return qty * move


@dataclass(frozen=True)
class FillAt:
    side: Side
    qty: Decimal
    price: Decimal
    fee: Decimal
    at: datetime


@dataclass(frozen=True)
class TradeQuality:
    """One trade's entry against its alert. `slippage_bps` is quantity-weighted over the
    entry's fills; None where the alert named no price (or nothing filled)."""

    trade_id: int
    received_at: datetime | None
    alert_price: Decimal | None
    filled_qty: Decimal
    avg_fill_price: Decimal | None
    slippage_bps: Decimal | None
    cost_usdt: Decimal | None
    fees: Decimal
    alert_to_order_ms: int | None
    alert_to_fill_ms: int | None


def _ms(later: datetime | None, earlier: datetime | None) -> int | None:
    if later is None or earlier is None:
        return None
    return int((later - earlier).total_seconds() * 1000)


def trade_quality(trade_id: int, *, received_at: datetime | None, alert_price: Decimal | None,
                  first_order_at: datetime | None, fills: Sequence[FillAt]) -> TradeQuality:
    qty = sum((f.qty for f in fills), ZERO)
    fees = sum((f.fee for f in fills), ZERO)
    avg = sum((f.qty * f.price for f in fills), ZERO) / qty if qty > 0 else None
    slip = cost = None
    if alert_price is not None and alert_price > 0 and qty > 0:
        cost = sum((execution_cost(f.side, alert_price, f.qty, f.price) for f in fills), ZERO)
        slip = sum((slippage_bps(f.side, alert_price, f.price) * f.qty for f in fills), ZERO) / qty
    first_fill = min((f.at for f in fills), default=None)
    return TradeQuality(
        trade_id=trade_id, received_at=received_at, alert_price=alert_price, filled_qty=qty,
        avg_fill_price=avg, slippage_bps=slip, cost_usdt=cost, fees=fees,
        alert_to_order_ms=_ms(first_order_at, received_at),
        alert_to_fill_ms=_ms(first_fill, received_at),
    )


@dataclass(frozen=True)
class QualitySummary:
    """A strategy's (or the account's) entries: `slippage_bps` weighted by each trade's
    filled notional, median latencies, and totals."""

    trades: int
    measured: int  # trades whose alert named a price
    slippage_bps: Decimal | None
    cost_usdt: Decimal
    fees: Decimal
    median_alert_to_order_ms: int | None
    median_alert_to_fill_ms: int | None


def median(values: Iterable[int]) -> int | None:
    ordered = sorted(values)
    if not ordered:
        return None
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) // 2


def summarize(trades: Sequence[TradeQuality]) -> QualitySummary:
    measured = [t for t in trades if t.slippage_bps is not None and t.avg_fill_price is not None]
    weight = sum((t.filled_qty * t.avg_fill_price for t in measured), ZERO)  # type: ignore[operator]
    slip = (sum((t.slippage_bps * t.filled_qty * t.avg_fill_price  # type: ignore[operator]
                 for t in measured), ZERO) / weight) if weight > 0 else None
    return QualitySummary(
        trades=len(trades), measured=len(measured), slippage_bps=slip,
        cost_usdt=sum((t.cost_usdt for t in measured), ZERO),  # type: ignore[misc]
        fees=sum((t.fees for t in trades), ZERO),
        median_alert_to_order_ms=median(t.alert_to_order_ms for t in trades
                                        if t.alert_to_order_ms is not None),
        median_alert_to_fill_ms=median(t.alert_to_fill_ms for t in trades
                                       if t.alert_to_fill_ms is not None),
    )


@dataclass(frozen=True)
class Outcome:
    closed_at: datetime
    net_pnl: Decimal  # realized minus fees


@dataclass(frozen=True)
class StrategyStats:
    closed: int
    wins: int
    win_rate: Decimal | None  # share of closed trades with a positive net PnL, in %
    net_pnl: Decimal
    trades_per_day: Decimal | None
    curve: list[tuple[datetime, Decimal]]  # cumulative net PnL after each closed trade
    start: datetime | None  # the first trade's opening: where the curve starts, at zero


def strategy_stats(outcomes: Sequence[Outcome], opened: Sequence[datetime]) -> StrategyStats:
    """Win rate and cumulative PnL over closed trades; trades per day over the days from the
    first trade to the last (at least one day)."""
    ordered = sorted(outcomes, key=lambda o: o.closed_at)
    total = ZERO
    curve = []
    for o in ordered:
        total += o.net_pnl
        curve.append((o.closed_at, total))
    wins = sum(1 for o in ordered if o.net_pnl > 0)
    per_day = None
    if opened:
        days = max(Decimal(1), Decimal((max(opened) - min(opened)).total_seconds()) / 86400)
        per_day = Decimal(len(opened)) / days
    return StrategyStats(
        closed=len(ordered), wins=wins,
        win_rate=Decimal(wins) * 100 / len(ordered) if ordered else None,
        net_pnl=total, trades_per_day=per_day, curve=curve,
        start=min(opened) if opened else None,
    )
