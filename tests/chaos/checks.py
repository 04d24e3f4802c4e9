"""What a fault run must leave behind, as pure functions of what the runner read.

* the books balance (activities/incidents.py's own `quantity_mismatches` and `orphan_orders`
  on the exchange's positions and working Tradewire orders against the open trades), or every
  difference is named by an open incident;
* no order is doubled: one exchange order per client id, no trade's entries filled beyond its
  target, no trade's closes beyond its entries, no Tradewire order the database does not know;
* no trade is stuck: every trade is final or TRACKING once the run is quiet.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal

from trading.ids import PREFIX as TRADEWIRE_PREFIX

QUIET_STATUSES = ("TRACKING", "CLOSED", "CANCELLED", "FAILED", "REFUSED")
FINAL_STATUSES = ("CLOSED", "CANCELLED", "FAILED", "REFUSED")
CLOSING_LEGS = ("exit", "flatten", "triggered", "external")


@dataclass(frozen=True)
class ExchangeOrder:
    """An order as the paper exchange holds it (`GET /__admin/state`)."""

    order_id: str
    client_id: str | None
    symbol: str
    status: str
    filled: Decimal

    @staticmethod
    def of(wire: Mapping[str, object]) -> ExchangeOrder:
        return ExchangeOrder(str(wire["orderId"]), wire.get("clientId") or None,  # type: ignore[arg-type]
                             str(wire["symbol"]), str(wire["status"]),
                             Decimal(str(wire["tradeQty"])))


@dataclass(frozen=True)
class OrderRow:
    """An `order` row: which trade and leg a client id belongs to."""

    client_id: str
    trade_id: int
    leg: str


@dataclass(frozen=True)
class TradeRow:
    trade_id: int
    workflow_id: str
    status: str
    target_qty: Decimal | None
    filled_qty: Decimal
    closed_qty: Decimal


def doubled_orders(orders: Iterable[ExchangeOrder], rows: Iterable[OrderRow],
                   trades: Iterable[TradeRow]) -> list[str]:
    """Every way an order was doubled, in words; empty when none was."""
    orders = list(orders)
    out = [f"client id {cid} has {n} exchange orders"
           for cid, n in sorted(Counter(o.client_id for o in orders if o.client_id).items())
           if n > 1]
    by_client = {r.client_id: r for r in rows}
    entered: Counter[int] = Counter()
    closed: Counter[int] = Counter()
    for o in orders:
        if not o.client_id or not o.client_id.startswith(TRADEWIRE_PREFIX):
            continue
        row = by_client.get(o.client_id)
        if row is None:
            out.append(f"exchange order {o.order_id} ({o.client_id}, {o.status}, filled "
                       f"{o.filled}) has no order row: no trade sent it")
            continue
        if row.leg == "entry":
            entered[row.trade_id] += o.filled
        elif row.leg in CLOSING_LEGS:
            closed[row.trade_id] += o.filled
    for t in trades:
        got = entered.get(t.trade_id, Decimal(0))
        if t.target_qty is not None and got > t.target_qty:
            out.append(f"trade #{t.trade_id} ({t.workflow_id}): its entries filled {got} at the "
                       f"exchange, above its target {t.target_qty}")
        if t.target_qty is not None and t.filled_qty > t.target_qty:
            out.append(f"trade #{t.trade_id} ({t.workflow_id}) records {t.filled_qty} filled, "
                       f"above its target {t.target_qty}")
        if t.target_qty is None and got > 0:
            out.append(f"trade #{t.trade_id} ({t.workflow_id}): entries filled {got} without "
                       "a target")
        if closed.get(t.trade_id, Decimal(0)) > got:
            out.append(f"trade #{t.trade_id} ({t.workflow_id}): its closes filled "
                       f"{closed[t.trade_id]} at the exchange, above its entries' {got}")
    return out


def stuck_trades(trades: Iterable[TradeRow], allowed: tuple[str, ...] = QUIET_STATUSES) -> list[str]:
    return [f"trade #{t.trade_id} ({t.workflow_id}) is still {t.status} (filled {t.filled_qty}, "
            f"closed {t.closed_qty})" for t in trades if t.status not in allowed]


def unnamed(differences: Mapping[str, str], open_incidents: Iterable[str]) -> dict[str, str]:
    """The differences (fingerprint → detail) no open incident names."""
    named = set(open_incidents)
    return {fp: d for fp, d in differences.items() if fp not in named}
