"""The ownership invariant, checked on every round of the account watcher
(docs/design.md#the-ownership-invariant).

From what the watcher has just read (pending positions and open orders; no request of its own):

* per (symbol, position side), the exchange's quantity equals what the open trades own
  (`Records.owned_quantities`); otherwise `unowned_quantity` (the exchange holds more) or
  `missing_quantity` (the trades count more than the exchange holds);
* every working order with a Tradewire client id (trading/ids.py, prefix "TW") belongs to an
  open trade's `order` row; otherwise `orphan_order`.

Fills in flight make both sides differ for a moment (a fill lands between the watcher's read and
the trade recording it), so a mismatch becomes an incident only once it has lasted the settle
window with the same gap. Incidents are rows of the `incident` table: one current row per
mismatch, kept up to date while it lasts and resolved when it is gone.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from activities import notify
from activities.records import OpenTrade, Records
from db.models import Incident
from exchange.models import Order
from trading.ids import PREFIX as TRADEWIRE_PREFIX
from trading.types import (
    OPEN_TRADE_STATUSES,
    IncidentAction,
    IncidentKind,
    IncidentStatus,
    PositionSide,
)

log = logging.getLogger("activities.incidents")
Key = tuple[str, PositionSide]
WATCHER = "watcher"  # the `by` of what the watcher does to an incident
BALANCED = "balanced again"
REPORTED = "reported"
QUANTITY_KINDS = (IncidentKind.UNOWNED_QUANTITY, IncidentKind.MISSING_QUANTITY)
# The kinds this audit raises and resolves; a `daily_loss` incident is the latch's
# (activities/daily_loss.py), resolved when its scope is no longer latched.
AUDIT_KINDS = (*QUANTITY_KINDS, IncidentKind.ORPHAN_ORDER, IncidentKind.UNTRACKED_TRADE)


def _text(qty: Decimal) -> str:
    return format(qty, "f")


@dataclass(frozen=True, slots=True)
class WorkingOrder:
    """A working order at the exchange whose client id is a Tradewire id."""

    order_id: str
    client_id: str
    symbol: str
    describe: str  # side, type, remaining quantity and price, for the incident's detail
    remaining: Decimal

    @staticmethod
    def of(order: Order) -> WorkingOrder | None:
        if not order.client_id or not order.client_id.startswith(TRADEWIRE_PREFIX):
            return None
        price = f" @ {_text(order.price)}" if order.price is not None else ""
        return WorkingOrder(
            order.order_id, order.client_id, order.symbol,
            f"{order.side.value} {order.order_type.value} {_text(order.remaining_qty)}{price}",
            order.remaining_qty,
        )


@dataclass(frozen=True, slots=True)
class Mismatch:
    fingerprint: str  # what it is about: one current incident per fingerprint
    kind: IncidentKind
    symbol: str
    side: PositionSide | None
    exchange_qty: Decimal
    owned_qty: Decimal
    detail: str
    order_id: str | None = None
    client_order_id: str | None = None

    @property
    def gap(self) -> Decimal:
        return self.exchange_qty - self.owned_qty


def quantity_fingerprint(kind: IncidentKind, symbol: str, side: PositionSide) -> str:
    return f"{kind.value}:{symbol}:{side.value}"


def quantity_mismatches(positions: Mapping[Key, Decimal], owned: Mapping[Key, Decimal]) -> list[Mismatch]:
    """Every (symbol, side) whose exchange quantity differs from what the open trades own."""
    out = []
    for key in sorted(positions.keys() | owned.keys()):
        held, ours = positions.get(key, Decimal(0)), owned.get(key, Decimal(0))
        if held == ours:
            continue
        symbol, side = key
        if held > ours:
            kind = IncidentKind.UNOWNED_QUANTITY
            detail = (f"the exchange holds {_text(held)} {symbol} {side.value}; the open trades "
                      f"own {_text(ours)}: {_text(held - ours)} is owned by no trade, so nothing "
                      "tracks or protects it")
        else:
            kind = IncidentKind.MISSING_QUANTITY
            detail = (f"the open trades own {_text(ours)} {symbol} {side.value}; the exchange "
                      f"holds {_text(held)}: {_text(ours - held)} the trades count is not there")
        out.append(Mismatch(quantity_fingerprint(kind, symbol, side), kind, symbol, side, held,
                            ours, detail))
    return out


def orphan_orders(orders: Iterable[WorkingOrder],
                  trades: Mapping[str, tuple[int, str]]) -> list[Mismatch]:
    """Working Tradewire orders without an open trade: `trades` maps client id → (trade id,
    trade status) for the ids that have an `order` row."""
    out = []
    for o in sorted(orders, key=lambda o: o.order_id):
        owner = trades.get(o.client_id)
        if owner is not None and owner[1] in OPEN_TRADE_STATUSES:
            continue
        whose = ("no trade's order row has this client id" if owner is None
                 else f"its trade #{owner[0]} has ended ({owner[1]})")
        out.append(Mismatch(
            f"{IncidentKind.ORPHAN_ORDER.value}:{o.order_id}", IncidentKind.ORPHAN_ORDER,
            o.symbol, None, o.remaining, Decimal(0),
            f"working order {o.order_id} ({o.describe}, client id {o.client_id}) belongs to no "
            f"open trade: {whose}",
            order_id=o.order_id, client_order_id=o.client_id,
        ))
    return out


@dataclass
class Settling:
    """The mismatches seen but not yet past the settle window. A mismatch whose gap changes
    starts its window again: a fill in flight moves the gap, a real leak keeps it."""

    settle_s: float  # float-ok: time or rate, not money
    clock: Callable[[], float] = time.monotonic  # float-ok: time or rate, not money
    since: dict[str, tuple[float, datetime, Decimal]] = field(default_factory=dict)  # float-ok

    def settled(self, found: Mapping[str, Mismatch]) -> dict[str, tuple[Mismatch, datetime]]:
        """The mismatches that have lasted the window, each with when it was first seen."""
        now = self.clock()
        seen = {}
        for fp, m in found.items():
            old = self.since.get(fp)
            seen[fp] = old if old is not None and old[2] == m.gap else (
                now, datetime.now(UTC), m.gap)
        self.since = seen
        return {fp: (m, seen[fp][1]) for fp, m in found.items()
                if now - seen[fp][0] >= self.settle_s}

    @property
    def pending(self) -> set[str]:
        return set(self.since)


@dataclass(frozen=True)
class Outcome:
    raised: list[Incident]
    cleared: list[Incident]


def _action(action: IncidentAction, note: str, at: datetime) -> dict[str, Any]:
    return {"at": at.isoformat(), "by": WATCHER, "action": action.value, "note": note}


def _clearing(row: Incident, found: Mapping[str, Mismatch]) -> str:
    """Why a current incident's mismatch is gone."""
    if row.kind == IncidentKind.ORPHAN_ORDER:
        return "the order is no longer working"
    other = next((m for m in found.values() if m.kind in QUANTITY_KINDS
                  and m.symbol == row.symbol and m.side == row.side), None)
    if other is None:
        answered = [a for a in row.actions if a.get("trade_id") is not None]
        if answered:  # an adoption (webhook/adoption.py) took the quantity on
            last = answered[-1]
            return f"{BALANCED}: trade #{last['trade_id']} owns it ({last['action']} by {last['by']})"
        return BALANCED
    return (f"now {other.kind.value}: the exchange holds {_text(other.exchange_qty)}, the open "
            f"trades own {_text(other.owned_qty)}")


class IncidentBook:
    """The `incident` rows: raised, kept current and cleared by the watcher only."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self._sessionmaker = sessionmaker

    async def apply(self, found: Mapping[str, Mismatch],
                    settled: Mapping[str, tuple[Mismatch, datetime]]) -> Outcome:
        """One round's findings: clear the current incidents whose mismatch is gone, update
        those that last, raise the settled mismatches that have none. A dismissed incident
        stays dismissed while its gap stays the same; a different gap is raised again."""
        now = datetime.now(UTC)
        raised: list[Incident] = []
        cleared: list[Incident] = []
        async with self._sessionmaker() as session, session.begin():
            current = {
                row.fingerprint: row for row in (await session.scalars(
                    select(Incident).where(Incident.cleared_at.is_(None),
                                           Incident.kind.in_([k.value for k in AUDIT_KINDS]))
                    .with_for_update()
                )).all()
            }
            new = {fp: s for fp, s in settled.items() if fp not in current}
            for fp, row in current.items():
                if fp not in found:
                    self._clear(row, _clearing(row, found), now)
                    cleared.append(row)
                elif fp in settled:
                    m, _ = settled[fp]
                    if (row.status == IncidentStatus.DISMISSED
                            and row.exchange_qty - row.owned_qty != m.gap):
                        self._clear(row, f"the gap moved from {_text(row.exchange_qty - row.owned_qty)}"
                                    f" to {_text(m.gap)}: raised again", now)
                        cleared.append(row)
                        new[fp] = settled[fp]
                    else:
                        row.exchange_qty, row.owned_qty = m.exchange_qty, m.owned_qty
                        row.detail, row.last_seen = m.detail, now
                # else: still there, its gap moving (settling again): left as it is
            await session.flush()  # a cleared row leaves the unique index before its successor
            for fp, (m, first_seen) in new.items():
                row = await session.scalar(
                    insert(Incident)
                    .values(
                        fingerprint=fp, kind=m.kind.value, symbol=m.symbol,
                        side=m.side.value if m.side else None, order_id=m.order_id,
                        client_order_id=m.client_order_id, exchange_qty=m.exchange_qty,
                        owned_qty=m.owned_qty, detail=m.detail, first_seen=first_seen,
                        last_seen=now, status=IncidentStatus.OPEN.value,
                        actions=[_action(IncidentAction.REPORT, REPORTED, now)],
                    )
                    .on_conflict_do_nothing(
                        index_elements=[Incident.fingerprint],
                        index_where=Incident.cleared_at.is_(None),
                    )
                    .returning(Incident)
                )
                if row is not None:  # None: another watcher raised it first
                    raised.append(row)
            await notify.incident_events(session, raised, cleared)
        return Outcome(raised, cleared)

    async def open_orphans(self) -> list[Incident]:
        async with self._sessionmaker() as session:
            return list((await session.scalars(
                select(Incident).where(Incident.status == IncidentStatus.OPEN.value,
                                       Incident.kind == IncidentKind.ORPHAN_ORDER.value)
                .order_by(Incident.id)
            )).all())

    async def add_action(self, incident_id: int, action: IncidentAction, note: str) -> None:
        """Record what the watcher did about an incident (once per kind of action)."""
        now = datetime.now(UTC)
        async with self._sessionmaker() as session, session.begin():
            row = await session.get(Incident, incident_id, with_for_update=True)
            if row is not None and all(a.get("action") != action.value for a in row.actions):
                row.actions = [*row.actions, _action(action, note, now)]

    @staticmethod
    def _clear(row: Incident, why: str, now: datetime) -> None:
        row.cleared_at = row.last_seen = now
        if row.status == IncidentStatus.OPEN:
            row.status, row.resolution = IncidentStatus.RESOLVED.value, why
        row.actions = [*row.actions, _action(IncidentAction.RESOLVE, why, now)]


def untracked_trades(trades: Iterable[OpenTrade]) -> list[Mismatch]:
    """Open trades whose workflow no longer runs (a signal to it found no running workflow):
    nothing tracks them, protects them or closes them, whatever their books say."""
    return [
        Mismatch(
            f"{IncidentKind.UNTRACKED_TRADE.value}:{t.workflow_id}", IncidentKind.UNTRACKED_TRADE,
            t.symbol, t.side, Decimal(0), Decimal(0),
            f"trade #{t.trade_id} ({t.workflow_id}) is {t.status} but its workflow no longer "
            "runs: nothing tracks, protects or closes what it holds",
        )
        for t in sorted(trades, key=lambda t: t.workflow_id)
    ]


class OwnershipAudit:
    """Checks one round's reads against the database and keeps the incidents in line."""

    def __init__(self, records: Records, sessionmaker: async_sessionmaker[AsyncSession],
                 settle_s: Decimal, *,
                 clock: Callable[[], float] = time.monotonic) -> None:  # float-ok: time
        self._records = records
        self.book = IncidentBook(sessionmaker)
        self.settling = Settling(float(settle_s), clock)  # float-ok: time or rate, not money

    async def check(self, positions: Mapping[Key, Decimal],
                    orders: Iterable[WorkingOrder],
                    untracked: Iterable[OpenTrade] = ()) -> Outcome:
        ours = list(orders)
        owned = await self._records.owned_quantities()
        trades = await self._records.order_trades(o.client_id for o in ours)
        found = {m.fingerprint: m for m in [*quantity_mismatches(positions, owned),
                                            *orphan_orders(ours, trades),
                                            *untracked_trades(untracked)]}
        outcome = await self.book.apply(found, self.settling.settled(found))
        for row in outcome.raised:
            lasted = (row.last_seen - row.first_seen) // timedelta(seconds=1)
            log.error("incident #%d %s %s%s: %s (for %d s; `tradewire incidents` lists it)",
                      row.id, row.kind, row.symbol, f" {row.side}" if row.side else "",
                      row.detail, lasted)
        for row in outcome.cleared:
            log.warning("incident #%d %s %s: cleared, %s", row.id, row.kind, row.symbol,
                        row.actions[-1]["note"])
        return outcome
