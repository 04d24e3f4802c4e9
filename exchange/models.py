"""What the exchange answers, as read models: the client's parser builds these from BitUnix's
wire schemas, and the activities read them. Amounts are Decimal, times are epoch milliseconds.
`side` is BitUnix's `side` as sent: in hedge mode it names the position's direction (a close long
is BUY + CLOSE), not the fill direction."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from exchange.errors import ExchangeError
from trading.types import (
    Effect,
    MarginMode,
    OrderStatus,
    OrderType,
    PositionMode,
    PositionSide,
    Side,
    StopType,
)


@dataclass(frozen=True, slots=True)
class PlacedOrder:
    order_id: str
    client_id: str | None


@dataclass(frozen=True, slots=True)
class Order:
    order_id: str
    client_id: str | None
    symbol: str
    side: Side
    order_type: OrderType
    effect: Effect | None
    qty: Decimal
    filled_qty: Decimal
    price: Decimal | None
    avg_price: Decimal | None
    status: OrderStatus
    reduce_only: bool
    fee: Decimal
    realized_pnl: Decimal
    ctime_ms: int | None
    mtime_ms: int | None

    @property
    def remaining_qty(self) -> Decimal:
        return self.qty - self.filled_qty


@dataclass(frozen=True, slots=True)
class Fill:
    trade_id: str
    order_id: str
    client_id: str | None
    symbol: str
    side: Side
    qty: Decimal
    price: Decimal
    fee: Decimal
    realized_pnl: Decimal
    role: str | None  # "TAKER" / "MAKER"
    ctime_ms: int | None


@dataclass(frozen=True, slots=True)
class Position:
    position_id: str
    symbol: str
    side: PositionSide
    qty: Decimal
    avg_open_price: Decimal | None
    leverage: int | None
    margin_mode: MarginMode | None
    position_mode: PositionMode | None
    realized_pnl: Decimal
    unrealized_pnl: Decimal
    fee: Decimal
    funding: Decimal
    liq_price: Decimal | None


@dataclass(frozen=True, slots=True)
class ClosedPosition:
    """One entry of the position history."""

    position_id: str
    symbol: str
    side: PositionSide
    max_qty: Decimal | None
    entry_price: Decimal | None
    close_price: Decimal | None
    liq_qty: Decimal | None
    leverage: int | None
    margin_mode: MarginMode | None
    position_mode: PositionMode | None
    realized_pnl: Decimal
    fee: Decimal
    funding: Decimal
    liq_price: Decimal | None
    ctime_ms: int | None
    mtime_ms: int | None


@dataclass(frozen=True, slots=True)
class Ticker:
    symbol: str
    mark_price: Decimal
    last_price: Decimal


@dataclass(frozen=True, slots=True)
class Book:
    """Order book levels as (price, qty), bids best first (highest), asks best first (lowest)."""

    symbol: str
    bids: tuple[tuple[Decimal, Decimal], ...]
    asks: tuple[tuple[Decimal, Decimal], ...]

    @property
    def best_bid(self) -> Decimal | None:
        return self.bids[0][0] if self.bids else None

    @property
    def best_ask(self) -> Decimal | None:
        return self.asks[0][0] if self.asks else None


@dataclass(frozen=True, slots=True)
class Account:
    margin_coin: str
    available: Decimal
    frozen: Decimal
    margin: Decimal
    position_mode: PositionMode
    cross_unrealized_pnl: Decimal
    isolation_unrealized_pnl: Decimal
    transfer: Decimal | None
    bonus: Decimal | None


@dataclass(frozen=True, slots=True)
class LeverageMarginMode:
    symbol: str
    margin_coin: str | None
    leverage: int
    margin_mode: MarginMode


@dataclass(frozen=True, slots=True)
class TpslOrder:
    """An order-level or position-level TP/SL (pending, or from the history list). BitUnix gives
    it no client id."""

    id: str
    position_id: str
    symbol: str
    tp_price: Decimal | None
    tp_stop_type: StopType | None
    tp_order_type: OrderType | None
    tp_order_price: Decimal | None
    tp_qty: Decimal | None
    sl_price: Decimal | None
    sl_stop_type: StopType | None
    sl_order_type: OrderType | None
    sl_order_price: Decimal | None
    sl_qty: Decimal | None
    status: str | None  # in the history list: FILLED (it fired), CANCELED, SYSTEM_CANCELED, …
    ctime_ms: int | None = None
    trigger_time_ms: int | None = None  # when it fired (history list)


@dataclass(frozen=True, slots=True)
class CancelFailure:
    order_id: str | None
    client_id: str | None
    error: ExchangeError


@dataclass(frozen=True, slots=True)
class CancelResult:
    """What cancel_orders answered. Code 0 proves nothing: confirm with the order detail.

    `succeeded` holds the order ids BitUnix echoed (its client id where it echoed no order id).
    """

    succeeded: tuple[str, ...]
    failed: tuple[CancelFailure, ...]
