"""The words of the trading domain: one enum per concept, shared by the database, the API,
the workflow state and the exchange parser. Values are BitUnix's spelling where BitUnix has one.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # for annotations only: trading/ imports nothing of ours at runtime
    from exchange.errors import ExchangeError


class Side(StrEnum):
    """The direction an order fills in (BitUnix's `side` field in one-way mode)."""

    BUY = "BUY"
    SELL = "SELL"

    @property
    def opposite(self) -> Side:
        return Side.SELL if self is Side.BUY else Side.BUY


class PositionSide(StrEnum):
    LONG = "LONG"
    SHORT = "SHORT"

    @property
    def entry_side(self) -> Side:
        """The fill direction that opens (or grows) a position of this side."""
        return Side.BUY if self is PositionSide.LONG else Side.SELL

    @property
    def exit_side(self) -> Side:
        """The fill direction that reduces a position of this side."""
        return self.entry_side.opposite


class OrderType(StrEnum):
    """What the exchange knows: BitUnix's `orderType`."""

    LIMIT = "LIMIT"
    MARKET = "MARKET"


class EntryType(StrEnum):
    """How a trade enters, as an alert or a strategy says it (`order_type`)."""

    MARKET = "market"
    LIMIT = "limit"
    CHASE = "chase"


class Effect(StrEnum):
    """BitUnix's time in force (`effect`)."""

    GTC = "GTC"
    IOC = "IOC"
    FOK = "FOK"
    POST_ONLY = "POST_ONLY"


class TradeSide(StrEnum):
    """BitUnix's `tradeSide`, meaningful in hedge mode."""

    OPEN = "OPEN"
    CLOSE = "CLOSE"


class PositionMode(StrEnum):
    ONE_WAY = "ONE_WAY"
    HEDGE = "HEDGE"


class MarginMode(StrEnum):
    ISOLATION = "ISOLATION"
    CROSS = "CROSS"


class StopType(StrEnum):
    """What a TP/SL trigger watches."""

    MARK_PRICE = "MARK_PRICE"
    LAST_PRICE = "LAST_PRICE"


class OrderStatus(StrEnum):
    """BitUnix's order statuses, plus SENDING: our row exists, the exchange has not confirmed."""

    SENDING = "SENDING"
    INIT = "INIT"
    NEW = "NEW"
    PART_FILLED = "PART_FILLED"
    FILLED = "FILLED"
    CANCELED = "CANCELED"
    PART_FILLED_CANCELED = "PART_FILLED_CANCELED"
    EXPIRED = "EXPIRED"
    SYSTEM_CANCELED = "SYSTEM_CANCELED"
    REJECTED = "REJECTED"

    @property
    def is_terminal(self) -> bool:
        return self in _TERMINAL_ORDER_STATUSES


_TERMINAL_ORDER_STATUSES = frozenset(
    {
        OrderStatus.FILLED,
        OrderStatus.CANCELED,
        OrderStatus.PART_FILLED_CANCELED,
        OrderStatus.EXPIRED,
        OrderStatus.SYSTEM_CANCELED,
        OrderStatus.REJECTED,
    }
)


class PairStatus(StrEnum):
    """BitUnix's `symbolStatus`."""

    OPEN = "OPEN"
    CANCEL_ONLY = "CANCEL_ONLY"
    STOP = "STOP"
    PREVIEW = "PREVIEW"


class TradeStatus(StrEnum):
    """The one trade status: database column, API, workflow query and `TradeStatus` search
    attribute. Once anything has filled a trade never ends FAILED."""

    PENDING = "PENDING"
    ENTERING = "ENTERING"
    TRACKING = "TRACKING"
    CLOSING = "CLOSING"
    CLOSED = "CLOSED"
    CANCELLED = "CANCELLED"
    FAILED = "FAILED"
    REFUSED = "REFUSED"

    @property
    def is_final(self) -> bool:
        return self in (
            TradeStatus.CLOSED,
            TradeStatus.CANCELLED,
            TradeStatus.FAILED,
            TradeStatus.REFUSED,
        )


class Intent(StrEnum):
    """What an alert asks for, from action + market_position + prev_market_position."""

    OPEN_LONG = "OPEN_LONG"
    OPEN_SHORT = "OPEN_SHORT"
    CLOSE_LONG = "CLOSE_LONG"
    CLOSE_SHORT = "CLOSE_SHORT"
    REVERSE_TO_LONG = "REVERSE_TO_LONG"
    REVERSE_TO_SHORT = "REVERSE_TO_SHORT"


class SignalOutcome(StrEnum):
    """What became of one delivery to the webhook."""

    ACCEPTED = "ACCEPTED"
    DUPLICATE = "DUPLICATE"
    REFUSED = "REFUSED"
    NOT_STARTED = "NOT_STARTED"
    NOTHING_TO_CLOSE = "NOTHING_TO_CLOSE"


# --- exchange domain types (exchange/parse.py builds these) ---
# Amounts are Decimal, times are epoch milliseconds. `side` is BitUnix's `side` as sent: in hedge
# mode it names the position's direction (a close long is BUY + CLOSE), not the fill direction.


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
    """A pending order-level or position-level TP/SL. BitUnix gives it no client id."""

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
    status: str | None


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
