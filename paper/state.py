"""The paper account's state: its mutable records (orders, positions, fills, TP/SL orders,
wallets) and `State`, which holds them all.

Plain dataclasses with Decimal money, so `persistence.py` can write and read them generically.
`State` is everything that survives a restart (prices and frozen flags live in `market.py`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from decimal import Decimal

from trading.types import (
    Effect,
    MarginMode,
    OrderStatus,
    OrderType,
    PairStatus,
    PositionMode,
    PositionSide,
    Side,
    TradeSide,
)

ZERO = Decimal(0)
# Ids look like BitUnix's: 19-digit decimal strings.
ID_BASE = 1_900_000_000_000_000_000

# TP/SL order statuses, as the tpsl push channel names them (docs/bitunix.md#push-channels):
# NEW, CANCELED, SYSTEM_CANCELED, FILLED, FAILED.
TPSL_NEW = "NEW"
TPSL_CANCELED = "CANCELED"
TPSL_SYSTEM_CANCELED = "SYSTEM_CANCELED"
TPSL_FILLED = "FILLED"
TPSL_FAILED = "FAILED"

OPEN_STATUSES = (OrderStatus.NEW, OrderStatus.PART_FILLED)


def now_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass
class Order:
    order_id: str
    client_id: str | None
    symbol: str
    side: Side  # as sent: in hedge mode it names the position's direction
    fill_side: Side  # the direction the order actually fills in
    trade_side: TradeSide | None
    position_id: str | None  # the position a closing order reduces (hedge CLOSE)
    reduce_only: bool
    closing: bool  # hedge CLOSE, or one-way reduce-only: never opens, clipped to the position
    order_type: OrderType
    effect: Effect
    qty: Decimal
    price: Decimal | None
    status: OrderStatus
    position_mode: PositionMode
    margin_mode: MarginMode
    leverage: int
    ctime: int
    mtime: int
    trade_qty: Decimal = ZERO
    deal_value: Decimal = ZERO  # sum of fill qty × price, for the average price
    fee: Decimal = ZERO
    realized_pnl: Decimal = ZERO
    maker_fills: int = 0
    visible_at: int = 0  # ms; before it, detail/pending/history do not show the order
    source: str = "api"  # api | tpsl | liquidation | flash_close
    attached: dict[str, str] = field(default_factory=dict)  # tp*/sl* fields as sent
    attached_tpsl_id: str | None = None

    @property
    def remaining(self) -> Decimal:
        return self.qty - self.trade_qty

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES


@dataclass
class Position:
    position_id: str
    symbol: str
    coin: str
    side: PositionSide
    position_mode: PositionMode
    margin_mode: MarginMode
    leverage: int
    ctime: int
    mtime: int
    qty: Decimal = ZERO
    entry_value: Decimal = ZERO  # cost basis of the open qty (qty × average open price)
    margin: Decimal = ZERO
    fee: Decimal = ZERO
    funding: Decimal = ZERO
    realized_pnl: Decimal = ZERO
    max_qty: Decimal = ZERO
    opened_value: Decimal = ZERO  # every opening fill's qty × price, for history entryPrice
    opened_qty: Decimal = ZERO
    closed_value: Decimal = ZERO
    closed_qty: Decimal = ZERO
    liq_qty: Decimal = ZERO
    liq_price: Decimal | None = None  # set when liquidated
    closed: bool = False

    @property
    def avg_price(self) -> Decimal:
        return self.entry_value / self.qty if self.qty else ZERO


@dataclass
class Fill:
    trade_id: str
    order_id: str
    client_id: str | None
    symbol: str
    position_id: str
    qty: Decimal
    price: Decimal
    side: Side
    order_type: OrderType
    effect: Effect
    reduce_only: bool
    position_mode: PositionMode
    margin_mode: MarginMode
    leverage: int
    fee: Decimal
    realized_pnl: Decimal
    role: str  # TAKER | MAKER
    ctime: int


@dataclass
class TpslOrder:
    order_id: str
    position_id: str
    symbol: str
    side: PositionSide
    position_mode: PositionMode
    leverage: int
    whole_position: bool  # tpsl/position/place_order: closes the whole position at market
    ctime: int
    mtime: int
    status: str = TPSL_NEW
    tp_price: Decimal | None = None
    tp_stop_type: str | None = None
    tp_order_type: str | None = None
    tp_order_price: Decimal | None = None
    tp_qty: Decimal | None = None
    sl_price: Decimal | None = None
    sl_stop_type: str | None = None
    sl_order_type: str | None = None
    sl_order_price: Decimal | None = None
    sl_qty: Decimal | None = None
    trigger_time: int | None = None
    triggered_leg: str | None = None  # tp | sl
    visible_at: int = 0


@dataclass
class SymbolConfig:
    leverage: int
    margin_mode: MarginMode


@dataclass
class State:
    """Everything the account holds; `persistence.py` saves and loads exactly this."""

    balances: dict[str, Decimal]  # coin → wallet balance (deposits + realized PnL − fees)
    position_mode: PositionMode = PositionMode.ONE_WAY
    next_id: int = 1
    orders: dict[str, Order] = field(default_factory=dict)
    positions: dict[str, Position] = field(default_factory=dict)  # open and closed
    fills: list[Fill] = field(default_factory=list)
    tpsl: dict[str, TpslOrder] = field(default_factory=dict)
    configs: dict[str, SymbolConfig] = field(default_factory=dict)
    client_ids: dict[str, str] = field(default_factory=dict)  # clientId → orderId, forever
    statuses: dict[str, PairStatus] = field(default_factory=dict)  # admin overrides

    def new_id(self) -> str:
        self.next_id += 1
        return str(ID_BASE + self.next_id)

    def open_orders(self, symbol: str | None = None) -> list[Order]:
        return [
            o for o in self.orders.values()
            if o.is_open and (symbol is None or o.symbol == symbol)
        ]

    def open_positions(self, symbol: str | None = None) -> list[Position]:
        return [
            p for p in self.positions.values()
            if not p.closed and (symbol is None or p.symbol == symbol)
        ]
