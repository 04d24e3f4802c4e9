"""What one trade owns: its orders, its protection, and the sums that follow from them.

Pure (no I/O, no clock): the workflow keeps one `TradeLedger`, feeds it the order snapshots the
activities return, and reads quantities, prices and PnL from it. It travels through
continue-as-new unchanged, so the sequence number (and so every client order id) never repeats.

A trade owns only what its own orders filled (docs/design.md#ownership):
    filled  = Σ filled qty of its entry orders
    closed  = Σ filled qty of its closing orders (exit, flatten, a TP/SL that fired, external)
    open    = filled − closed
Realized PnL is the trade's own (closed qty × (exit − entry) in the position's direction), not
the exchange's position-level figure, which mixes every trade on the symbol; it is gross, as
BitUnix reports it, and fees are summed separately.
"""

from __future__ import annotations

from decimal import Decimal, localcontext

from pydantic import BaseModel, Field

from activities.contract import (
    OrderRef,
    OrderSnapshot,
    ProtectionClaim,
    ProtectionLevel,
    ProtectionSnapshot,
)
from activities.contract_tracking import ExternalCloseRequest
from trading.ids import client_order_id
from trading.types import Leg, PositionSide

ZERO = Decimal(0)


class TradeLedger(BaseModel):
    trade_id: int
    workflow_id: str
    namespace: str = ""
    symbol: str
    side: PositionSide
    seq: int = 0
    orders: dict[str, OrderSnapshot] = Field(default_factory=dict)  # by client id, in order
    protection: ProtectionSnapshot | None = None
    # TP/SL placements whose outcome stayed unknown: each may have created a TP/SL no row
    # records. Settled by the next placement (adopted or cancelled), or before an exit.
    unsettled: list[ProtectionClaim] = Field(default_factory=list)
    # Closes by a fired TP/SL recorded at its trigger price (no fill of it listed yet), by
    # the client id of their row: the request that refines each once its fills are listed.
    estimates: dict[str, ExternalCloseRequest] = Field(default_factory=dict)
    position_id: str | None = None
    last_seen_ms: int | None = None  # exchange-side time of the last refresh with our qty
    # Exchange-side time of the first read, with no entry of the trade working, that showed
    # less in the position than the trade owns, while nothing confirms a close: None while
    # there is no such shortfall (workflows/reconcile.py, `shortfall_settled`).
    shortfall_since_ms: int | None = None

    # --- ids ------------------------------------------------------------------------------

    def next_client_id(self, leg: Leg) -> str:
        """A fresh, deterministic client order id; never reused within this trade."""
        self.seq += 1
        return client_order_id(self.workflow_id, leg.letter, self.seq, namespace=self.namespace)

    def reserve(self, count: int) -> int:
        """Reserve `count` sequence numbers (a fast chase names its orders itself); returns
        the first."""
        first = self.seq + 1
        self.seq += count
        return first

    # --- orders ---------------------------------------------------------------------------

    def apply(self, snap: OrderSnapshot) -> None:
        self.orders[snap.client_id] = snap

    def working(self, *legs: Leg) -> list[OrderSnapshot]:
        return [o for o in self.orders.values() if not o.is_terminal and (not legs or o.leg in legs)]

    def refs(self, *legs: Leg) -> list[OrderRef]:
        """References to the non-terminal orders (for a refresh or a cancel)."""
        return [
            OrderRef(trade_id=self.trade_id, client_id=o.client_id, symbol=self.symbol, order_id=o.order_id)
            for o in self.working(*legs)
        ]

    def _of(self, closing: bool) -> list[OrderSnapshot]:
        return [o for o in self.orders.values() if o.leg.closes is closing and o.filled_qty > 0]

    @staticmethod
    def _sum(orders: list[OrderSnapshot]) -> Decimal:
        return sum((o.filled_qty for o in orders), ZERO)

    @staticmethod
    def _vwap(orders: list[OrderSnapshot]) -> Decimal | None:
        priced = [o for o in orders if o.avg_price is not None]
        qty = sum((o.filled_qty for o in priced), ZERO)
        if qty == 0:
            return None
        return sum((o.filled_qty * o.avg_price for o in priced), ZERO) / qty  # type: ignore[operator]

    @property
    def filled_qty(self) -> Decimal:
        return self._sum(self._of(closing=False))

    @property
    def closed_qty(self) -> Decimal:
        return self._sum(self._of(closing=True))

    @property
    def open_qty(self) -> Decimal:
        return max(self.filled_qty - self.closed_qty, ZERO)

    @property
    def avg_entry_price(self) -> Decimal | None:
        return self._vwap(self._of(closing=False))

    @property
    def avg_exit_price(self) -> Decimal | None:
        return self._vwap(self._of(closing=True))

    @property
    def fees(self) -> Decimal:
        return sum((o.fee for o in self.orders.values()), ZERO)

    @property
    def realized_pnl(self) -> Decimal:
        """Exit value minus the cost of the closed part. Exact when everything is closed
        (the cost is then the whole entry value); a partial close takes its share of the cost."""
        closed, filled = self.closed_qty, self.filled_qty
        if closed == 0 or filled == 0:
            return ZERO
        entry_value = _value(self._of(closing=False))
        exit_value = _value(self._of(closing=True))
        with localcontext() as ctx:
            ctx.prec = 60
            cost = entry_value if closed == filled else entry_value * closed / filled
            gross = exit_value - cost
        return gross if self.side is PositionSide.LONG else -gross

    def leg_filled(self, leg: Leg) -> Decimal:
        return self._sum([o for o in self.orders.values() if o.leg is leg])

    # --- protection -----------------------------------------------------------------------

    @property
    def protection_level(self) -> ProtectionLevel | None:
        return self.protection.level if self.protection else None



def _value(orders: list[OrderSnapshot]) -> Decimal:
    return sum((o.filled_qty * o.avg_price for o in orders if o.avg_price is not None), ZERO)
