"""The database mirror of every trade step: `trade`, `order`, `fill` and `position` rows.

Upserts keyed by what the exchange or the workflow makes unique (client order id, exchange
trade id, exchange position id), so an activity that runs twice writes the same rows, and
reports read PostgreSQL without asking Temporal.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import case, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import aliased

import metrics
from activities import notify
from activities.contract import AdoptRequest, AdoptResult, OrderRequest, OrderSnapshot
from activities.contract_tracking import TradeOutcome, TradeRecord
from activities.ownership import TradeOrigin
from activities.risk import gate_opening, opening_refused, side_notional
from db.models import Fill as FillRow
from db.models import Incident, Signal, Trade
from db.models import Order as OrderRow
from db.models import Position as PositionRow
from exchange.models import Fill, Position
from trading.orders import check_one_way_entry
from trading.risk import ProposedEntry, RiskLimits
from trading.types import (
    HOLDING_STATUSES,
    OPEN_TRADE_STATUSES,
    Leg,
    OrderStatus,
    OrderType,
    PositionMode,
    PositionSide,
    Side,
    TradeStatus,
)


@dataclass(frozen=True, slots=True)
class OpenTrade:
    workflow_id: str
    symbol: str
    side: PositionSide
    holds: bool  # tracked with an open quantity, by the trade's own record
    status: str = TradeStatus.TRACKING.value
    trade_id: int | None = None


@dataclass(frozen=True, slots=True)
class Owned:
    qty: Decimal  # Σ filled by the open trades' opening orders − Σ filled by their closes
    in_flight: bool  # one of those orders is not terminal: its row may lag the exchange
    # Which rows counted and when the newest of them changed: two reads with the same version
    # saw the same records (a close and an entry between them could leave `qty` as it was).
    version: tuple[int, datetime | None] = (0, None)


@dataclass(frozen=True, slots=True)
class EntryContext:
    origin: TradeOrigin | None  # the trade's row (the webhook records it before the start)
    other_sides: list[PositionSide]  # sides of the symbol's other open trades


@dataclass(frozen=True, slots=True)
class FillOwner:
    """The trade whose order a fill belongs to (the account watcher): the fill moves the
    trade's side of the position by its quantity, up for an entry, down for a close."""

    workflow_id: str
    symbol: str
    side: PositionSide
    opens: bool
    open: bool  # the trade is still open (worth signalling)


@dataclass(frozen=True, slots=True)
class Claim:
    """The `order` row of a placement: `created` is False when a previous attempt (or a
    crashed process) already wrote it, so this placement is a re-send."""

    row_id: int
    created: bool
    exchange_order_id: str | None
    status: OrderStatus
    # The trade's first entry claim: when its alert was received (the alert→order metric).
    alert_received_at: datetime | None = None
    # The row's `updated_at` as this claim read or wrote it: the token a later change of the
    # claim compares (re-stamp, release); NEVER_SENT when an attempt released it unsent.
    stamp: datetime | None = None
    # A new entry claim: the notional the other open trades hold on its side, read in the
    # claim's transaction, for the risk-limit tier check before the send (one transaction
    # fewer on the order's way than a read of its own).
    held_on_side: Decimal | None = None

    @property
    def released(self) -> bool:
        """A SENDING claim whose attempt was cancelled before its send: nothing to look for."""
        return (self.status is OrderStatus.SENDING and self.exchange_order_id is None
                and self.stamp == NEVER_SENT)


# The `updated_at` of a SENDING claim whose attempt was cancelled before it sent anything
# (exchange.errors.CancelledBeforeSend): older than any visibility window, so the exchange's
# silence about it is conclusive at once (docs/design.md#late-sends).
NEVER_SENT = datetime(1970, 1, 1, tzinfo=UTC)


def _ms_to_dt(ms: int | None) -> datetime:
    if ms is None:
        return datetime.now(UTC)
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


class Records:
    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self._sessionmaker = sessionmaker

    # --- trade ----------------------------------------------------------------------------

    async def save_trade(self, rec: TradeRecord, workflow_id: str) -> bool:
        """Write the trade's row, only if it is `workflow_id`'s (the calling workflow's): a
        run started with another trade's id never writes that trade's row. False: no such
        row of this workflow's."""
        values: dict[str, Any] = rec.model_dump(exclude={"trade_id"})
        values["status"] = rec.status.value
        if rec.position_id is None:
            del values["position_id"]
        if rec.filled_qty > 0:
            values["opened_at"] = func.coalesce(Trade.opened_at, func.now())
        if rec.status.is_final:
            values["closed_at"] = func.coalesce(Trade.closed_at, func.now())
        async with self._sessionmaker() as session, session.begin():
            # Read (and lock) the row first: its first fill and its first final status are
            # notified, in this transaction (docs/design.md#notifications).
            before = await notify.trade_before(session, rec.trade_id, workflow_id)
            if before is None:
                return False
            if before.status.is_final and not rec.status.is_final:
                # A record of an earlier step run again late (an activity's attempt after its
                # timeout, or an exit's local activities run again when their workflow task
                # was lost) never takes an ended trade back: the row keeps its end, and its
                # end is not notified a second time.
                return True
            await session.execute(
                update(Trade)
                .where(Trade.id == rec.trade_id, Trade.workflow_id == workflow_id)
                .values(**values)
            )
            for event, payload in notify.trade_events(
                    before, status=rec.status, values=rec.model_dump(), trade_id=rec.trade_id):
                await notify.enqueue(session, event, payload, strategy_id=before.strategy_id)
            return True

    async def trade_outcome(self, workflow_id: str) -> TradeOutcome:
        async with self._sessionmaker() as session:
            row = (await session.execute(
                select(Trade.status, Trade.filled_qty, Trade.closed_qty)
                .where(Trade.workflow_id == workflow_id)
            )).first()
        if row is None:
            return TradeOutcome(found=False)
        return TradeOutcome(found=True, status=TradeStatus(row.status),
                            open_qty=max(row.filled_qty - row.closed_qty, Decimal(0)))

    async def entry_context(self, trade_id: int, symbol: str) -> EntryContext:
        """In one read: the trade's row and its alert's outcome (who may act for it,
        activities/ownership.py), and the sides of this symbol's other open trades
        (something filled or entering) for the one-way check."""
        async with self._sessionmaker() as session:
            rows = (await session.execute(
                _origin_columns().where(
                    (Trade.id == trade_id)
                    | ((Trade.symbol == symbol)
                       & Trade.status.in_(("ENTERING", "TRACKING", "CLOSING")))
                )
            )).all()
            own = next((row for row in rows if row.id == trade_id), None)
            origin = await _origin(session, own) if own is not None else None
        return EntryContext(
            origin=origin,
            other_sides=[PositionSide(row.side) for row in rows if row.id != trade_id],
        )

    async def trade_origin(self, trade_id: int) -> TradeOrigin | None:
        """The trade's row as activities/ownership.py checks it; None: there is none."""
        async with self._sessionmaker() as session:
            own = (await session.execute(_origin_columns().where(Trade.id == trade_id))).first()
            return await _origin(session, own) if own is not None else None

    # --- orders ---------------------------------------------------------------------------

    async def claim_order(self, req: OrderRequest,
                          account_limits: RiskLimits | None = None) -> Claim:
        """Commit the SENDING row before the first send; find it again on any re-send.

        An entry's first claim also marks its trade ENTERING, and in one-way mode refuses it
        (OppositeTradeOpen, nothing claimed, nothing sent) when an opposite trade on the symbol
        is entering or open. A per-symbol lock makes that check and the mark one step, so of two
        opposite entries claimed at once the second sees the first. A new entry claim passes
        the risk gate first (activities/risk.py; RiskRefused rolls the claim back)."""
        async with self._sessionmaker() as session, session.begin():
            if req.leg.opens:
                # Never between an adoption's measure of nobody's quantity and its booking.
                await session.execute(select(func.pg_advisory_xact_lock(
                    func.hashtext(adoption_lock(req.symbol)))))
            inserted = (await session.execute(
                insert(OrderRow)
                .values(
                    trade_id=req.trade_id,
                    client_order_id=req.client_id,
                    symbol=req.symbol,
                    leg=req.leg.value,
                    side=req.fill_side.value,
                    order_type=req.order_type.value,
                    effect=req.effect.value if req.effect else None,
                    reduce_only=req.reduce_only or req.leg.closes,
                    qty=req.qty,
                    price=req.price,
                    status=OrderStatus.SENDING.value,
                )
                .on_conflict_do_nothing(index_elements=[OrderRow.client_order_id])
                .returning(OrderRow.id, OrderRow.updated_at)
            )).first()
            if inserted is not None:
                received = held = None
                if req.leg is Leg.ENTRY:
                    await gate_opening(session, trade_id=req.trade_id, symbol=req.symbol,
                                       entry=_proposed(req),
                                       account_limits=account_limits or RiskLimits())
                    received = await _mark_entering(session, req)
                    side = PositionSide.LONG if req.fill_side is Side.BUY else PositionSide.SHORT
                    held = await side_notional(session, req.symbol, side.value,
                                               exclude_trade=req.trade_id)
                return Claim(inserted.id, True, None, OrderStatus.SENDING, received,
                             stamp=inserted.updated_at, held_on_side=held)
            row = await session.scalar(
                select(OrderRow).where(OrderRow.client_order_id == req.client_id)
            )
            assert row is not None
            return Claim(row.id, False, row.exchange_order_id, OrderStatus(row.status),
                         stamp=row.updated_at)

    async def opening_refusal(self, trade_id: int) -> str | None:
        """Why the trading states refuse an opening order of the trade now; None: allowed."""
        async with self._sessionmaker() as session, session.begin():
            refusal = await opening_refused(session, trade_id)
        return refusal.message if refusal is not None else None

    async def save_order(
        self, trade_id: int, symbol: str, snap: OrderSnapshot, *, reduce_only: bool = False
    ) -> tuple[int, Decimal]:
        """Upsert the row of `snap` (keyed by client id); returns its id and the filled
        quantity it had before (so the caller fetches fills only when they changed)."""
        values: dict[str, Any] = {
            "trade_id": trade_id,
            "client_order_id": snap.client_id,
            "exchange_order_id": snap.order_id,
            "symbol": symbol,
            "leg": snap.leg.value,
            "side": snap.fill_side.value,
            "order_type": snap.order_type.value,
            "reduce_only": reduce_only or snap.leg.closes,
            "qty": snap.qty,
            "price": snap.price,
            "filled_qty": min(snap.filled_qty, snap.qty),
            "avg_price": snap.avg_price,
            "status": snap.status.value,
            "fee": snap.fee,
            "error": snap.error,
        }
        changing = {k: v for k, v in values.items() if k not in ("trade_id", "client_order_id")}
        if snap.order_id is None:
            changing.pop("exchange_order_id")
        async with self._sessionmaker() as session, session.begin():
            was = (await session.execute(
                select(OrderRow.filled_qty, OrderRow.status)
                .where(OrderRow.client_order_id == snap.client_id)
            )).first()
            before = was.filled_qty if was is not None else None
            row_id = await session.scalar(
                insert(OrderRow)
                .values(**values)
                .on_conflict_do_update(index_elements=[OrderRow.client_order_id], set_=changing)
                .returning(OrderRow.id)
            )
            assert row_id is not None
        if snap.status.is_terminal and (was is None or not OrderStatus(was.status).is_terminal):
            metrics.order_settled(snap.status, snap.error)
        return row_id, before if before is not None else Decimal(0)

    async def order_row(self, client_id: str) -> OrderRow | None:
        async with self._sessionmaker() as session:
            return await session.scalar(
                select(OrderRow).where(OrderRow.client_order_id == client_id)
            )

    async def set_order_status(self, client_id: str, status: OrderStatus) -> None:
        async with self._sessionmaker() as session, session.begin():
            await session.execute(
                update(OrderRow)
                .where(OrderRow.client_order_id == client_id)
                .values(status=status.value)
            )

    async def take_over_claim(self, client_id: str, window: timedelta) -> datetime | None:
        """Make a SENDING claim this attempt's, for a re-send, when nothing was sent under it
        for `window` (the exchange's silence about it is then conclusive); the window starts
        again now. Returns the claim's new stamp; None: sent more recently, or no longer
        SENDING."""
        async with self._sessionmaker() as session, session.begin():
            return await session.scalar(
                _unseen(client_id, window).values(updated_at=func.now())
                .returning(OrderRow.updated_at))

    async def restamp_claim(self, client_id: str, stamp: datetime) -> datetime | None:
        """Move this attempt's SENDING claim's stamp to now, right before a send that waited:
        a claim's window must count from its last send (docs/design.md#late-sends). None: the
        claim is no longer this attempt's (another attempt took it over, or it was settled);
        then nothing may be sent under it."""
        async with self._sessionmaker() as session, session.begin():
            return await session.scalar(
                _claimed(client_id).where(OrderRow.updated_at == stamp)
                .values(updated_at=func.now()).returning(OrderRow.updated_at))

    async def settle_unsent(self, client_id: str, stamp: datetime, error: str) -> bool:
        """Settle this attempt's SENDING claim as REJECTED `error`: it decided not to send.
        False: the claim changed since `stamp` (another attempt's now), nothing settled."""
        async with self._sessionmaker() as session, session.begin():
            changed = await session.scalar(
                _claimed(client_id).where(OrderRow.updated_at == stamp)
                .values(status=OrderStatus.REJECTED.value, error=error).returning(OrderRow.id))
        if changed is not None:
            metrics.order_settled(OrderStatus.REJECTED, error)
        return changed is not None

    async def release_claim(self, client_id: str, stamp: datetime) -> bool:
        """Mark this attempt's SENDING claim as never sent (NEVER_SENT): the attempt was
        cancelled before its send, so the next one sends without waiting out the window.
        False: the claim changed since `stamp` (the next attempt then waits, the safe side)."""
        async with self._sessionmaker() as session, session.begin():
            changed = await session.scalar(
                _claimed(client_id).where(OrderRow.updated_at == stamp)
                .values(updated_at=NEVER_SENT).returning(OrderRow.id))
            return changed is not None

    async def reject_unplaced(self, client_id: str, window: timedelta, error: str) -> bool:
        """Settle a SENDING claim as never placed, when nothing was sent under it for `window`.
        False: sent more recently, or no longer SENDING."""
        return await self._unseen_for(client_id, window, status=OrderStatus.REJECTED.value,
                                      error=error)

    async def placed_within(self, client_id: str, window: timedelta) -> bool:
        """Whether the order row was claimed, or its claim re-stamped before a late send, less
        than `window` ago (PostgreSQL's clock): an order that young may not be shown by the
        exchange yet. From the send, not the claim: a turn behind the request budget may come
        long after the claim (docs/design.md#late-sends)."""
        async with self._sessionmaker() as session:
            found = await session.scalar(
                select(OrderRow.id).where(
                    OrderRow.client_order_id == client_id,
                    func.greatest(OrderRow.created_at, OrderRow.updated_at)
                    > func.now() - window,
                )
            )
            return found is not None

    async def _unseen_for(self, client_id: str, window: timedelta, **values: Any) -> bool:
        async with self._sessionmaker() as session, session.begin():
            changed = await session.scalar(
                _unseen(client_id, window).values(**values).returning(OrderRow.id))
            return changed is not None

    async def claimed_orders(self, trade_id: int, leg: Leg) -> list[OrderRow]:
        """Every order row a trade claimed on `leg`, in the order they were claimed."""
        async with self._sessionmaker() as session:
            rows = await session.scalars(
                select(OrderRow)
                .where(OrderRow.trade_id == trade_id, OrderRow.leg == leg.value)
                .order_by(OrderRow.id)
            )
            return list(rows.all())

    async def save_fills(self, order_row_id: int, fills: Iterable[Fill]) -> None:
        rows = [
            {
                "order_id": order_row_id,
                "exchange_trade_id": f.trade_id,
                "qty": f.qty,
                "price": f.price,
                "fee": f.fee,
                "realized_pnl": f.realized_pnl,
                "role": f.role,
                "filled_at": _ms_to_dt(f.ctime_ms),
            }
            for f in fills
            if f.qty > 0 and f.price > 0
        ]
        if not rows:
            return
        async with self._sessionmaker() as session, session.begin():
            await session.execute(
                insert(FillRow).values(rows).on_conflict_do_nothing(
                    index_elements=[FillRow.exchange_trade_id]
                )
            )

    async def recorded_exchange_ids(self, symbol: str, leg: Leg) -> set[str]:
        """Exchange ids that open trades already recorded for `leg` on `symbol` (a TP/SL
        adoption must not take another trade's order)."""
        async with self._sessionmaker() as session:
            rows = await session.scalars(
                select(OrderRow.exchange_order_id)
                .join(Trade, Trade.id == OrderRow.trade_id)
                .where(
                    OrderRow.symbol == symbol,
                    OrderRow.leg == leg.value,
                    OrderRow.exchange_order_id.is_not(None),
                    Trade.status.in_(OPEN_TRADE_STATUSES),
                )
            )
            return {r for r in rows.all() if r}

    async def owners_of_orders(self, order_ids: Iterable[str]) -> dict[str, str]:
        """exchange order id → workflow id, for these orders of open trades (the watcher)."""
        ids = sorted(set(order_ids))
        if not ids:
            return {}
        async with self._sessionmaker() as session:
            rows = await session.execute(
                select(OrderRow.exchange_order_id, Trade.workflow_id)
                .join(Trade, Trade.id == OrderRow.trade_id)
                .where(Trade.status.in_(OPEN_TRADE_STATUSES), OrderRow.exchange_order_id.in_(ids))
            )
            return {oid: wid for oid, wid in rows.all() if oid}

    async def fill_owners(self, client_ids: Iterable[str]) -> dict[str, FillOwner]:
        """client order id → the trade that sent it, open or not (the watcher explains
        position changes with them)."""
        ids = sorted(set(client_ids))
        if not ids:
            return {}
        async with self._sessionmaker() as session:
            rows = await session.execute(
                select(OrderRow.client_order_id, OrderRow.leg, Trade.workflow_id, Trade.symbol,
                       Trade.side, Trade.status)
                .join(Trade, Trade.id == OrderRow.trade_id)
                .where(OrderRow.client_order_id.in_(ids))
            )
            return {
                cid: FillOwner(wid, symbol, PositionSide(side), not Leg(leg).closes,
                               status in OPEN_TRADE_STATUSES)
                for cid, leg, wid, symbol, side, status in rows.all()
            }

    async def recorded_fills(self, exchange_trade_ids: Iterable[str]) -> set[str]:
        """Which of these fills (exchange trade ids) their trade knows of already: recorded by
        its call, on an order row whose filled quantity (what the call told the trade) covers
        all the fills recorded for it. A call may read fills beyond the order detail it
        reports; those the trade has not heard of."""
        ids = sorted(set(exchange_trade_ids))
        if not ids:
            return set()
        same_order = aliased(FillRow)
        covered = (
            select(func.coalesce(func.sum(same_order.qty), 0))
            .where(same_order.order_id == OrderRow.id)
            .scalar_subquery()
        )
        async with self._sessionmaker() as session:
            rows = await session.scalars(
                select(FillRow.exchange_trade_id)
                .join(OrderRow, OrderRow.id == FillRow.order_id)
                .where(FillRow.exchange_trade_id.in_(ids), OrderRow.filled_qty >= covered))
            return set(rows.all())

    async def open_trades(self) -> list[OpenTrade]:
        """Every open trade (the watcher)."""
        async with self._sessionmaker() as session:
            rows = await session.execute(
                select(Trade.workflow_id, Trade.symbol, Trade.side, Trade.status,
                       Trade.filled_qty, Trade.closed_qty, Trade.id)
                .where(Trade.status.in_(OPEN_TRADE_STATUSES))
            )
            return [
                OpenTrade(w, s, PositionSide(side), st in ("TRACKING", "CLOSING") and f > c,
                          st, trade_id)
                for w, s, side, st, f, c, trade_id in rows.all()
            ]

    async def owned(self, symbol: str, side: PositionSide) -> Owned:
        """What the open trades on one side of `symbol` own by their order rows, and whether
        any of their orders is still in flight (its fills may not be in its row yet)."""
        async with self._sessionmaker() as session:
            return await _owned(session, symbol, side)

    async def adopt(
        self, req: AdoptRequest, workflow_id: str, fill_side: Side,
        position: Callable[[], Awaitable[tuple[Position, Decimal] | None]],
        filled_now: Callable[[list[str]], Awaitable[dict[str, Decimal]]],
    ) -> AdoptResult:
        """Record quantity the open trades do not own as the trade's own: one row of leg
        ADOPTED, filled, in the transaction that measured it. Idempotent: the row of
        `req.client_id` answers a second call. What the trades own is read first, under a
        per-symbol lock that every opening claim takes too (so no entry is claimed meanwhile),
        and the position after it: a close recorded in between makes the position smaller,
        never the gap larger (so never more than nobody's quantity). A working order of those
        trades counts what the exchange shows it filled, read before and after the position
        (OrdersInFlight, retried, when it moved in between); one still SENDING, whose fate is
        unknown, makes it wait (OrdersInFlight). `position` reads the side's position and the
        price the adopted quantity is booked at (its average open price, else the mark);
        `filled_now` the filled quantity of orders by client id. Only `workflow_id`'s trade
        (the calling workflow's) adopts: another run naming its id books nothing."""
        async with self._sessionmaker() as session, session.begin():
            owner = await session.scalar(select(Trade.workflow_id).where(Trade.id == req.trade_id))
            if owner != workflow_id:
                raise NotOwner(f"trade #{req.trade_id} belongs to workflow {owner}, not "
                               f"{workflow_id}: nothing adopted")
            await session.execute(select(func.pg_advisory_xact_lock(
                func.hashtext(adoption_lock(req.symbol)))))
            row = await session.scalar(
                select(OrderRow).where(OrderRow.client_order_id == req.client_id))
            if row is not None:
                return AdoptResult(snapshot=_adopted_snapshot(row), position_id=None)
            owned = await _owned(session, req.symbol, req.side)
            working = await _working(session, req.symbol, req.side)
            if any(w.status == OrderStatus.SENDING for w in working):
                raise OrdersInFlight(
                    f"an order of a trade on {req.symbol} {req.side.value} was sent and its fate "
                    "is not known yet: adopting once it is")
            ids = [w.client_id for w in working]
            before = await filled_now(ids) if ids else {}
            found = await position()
            if ids and await filled_now(ids) != before:
                raise OrdersInFlight(f"an order on {req.symbol} {req.side.value} filled while "
                                     "the position was read: reading again")
            unrecorded = sum((w.sign * (before[w.client_id] - w.filled) for w in working),
                             Decimal(0))
            owned = Owned(owned.qty + unrecorded, False)
            pos = found[0] if found is not None else None
            if found is None or pos is None or pos.qty <= owned.qty:
                held = format(pos.qty, "f") if pos is not None else "nothing"
                return AdoptResult(snapshot=None, reason=(
                    f"nothing to adopt: the exchange holds {held} on {req.symbol} "
                    f"{req.side.value}, the open trades own {format(owned.qty, 'f')}"))
            qty = min(req.wanted, pos.qty - owned.qty)
            price = found[1]
            row = OrderRow(
                trade_id=req.trade_id, client_order_id=req.client_id, symbol=req.symbol,
                leg=Leg.ADOPTED.value, side=fill_side.value, order_type=OrderType.MARKET.value,
                reduce_only=False, qty=qty, price=price, filled_qty=qty, avg_price=price,
                status=OrderStatus.FILLED.value,
            )
            session.add(row)
            await session.execute(
                update(Trade).where(Trade.id == req.trade_id)
                .values(filled_qty=qty, avg_entry_price=price, target_qty=qty,
                        status=TradeStatus.TRACKING.value)
            )
            await session.flush()
            reason = "" if qty == req.wanted else (
                f"adopted {format(qty, 'f')} of the {format(req.wanted, 'f')} asked: that is "
                "all the open trades do not own now")
            return AdoptResult(snapshot=_adopted_snapshot(row), position_id=pos.position_id,
                               reason=reason)

    # --- positions ------------------------------------------------------------------------

    async def save_positions(self, positions: Iterable[Position], mode: PositionMode | None) -> None:
        async with self._sessionmaker() as session, session.begin():
            for p in positions:
                position_mode = p.position_mode or mode
                if position_mode is None or p.margin_mode is None or p.leverage is None:
                    continue  # not enough to write a valid row; the next read will have it
                values = {
                    "exchange_position_id": p.position_id,
                    "symbol": p.symbol,
                    "side": p.side.value,
                    "position_mode": position_mode.value,
                    "margin_mode": p.margin_mode.value,
                    "leverage": p.leverage,
                    "qty": p.qty,
                    "avg_open_price": p.avg_open_price,
                    "realized_pnl": p.realized_pnl,
                    "unrealized_pnl": p.unrealized_pnl,
                    "fee": p.fee,
                    "open": p.qty > 0,
                }
                await session.execute(
                    insert(PositionRow)
                    .values(**values)
                    .on_conflict_do_update(
                        index_elements=[PositionRow.exchange_position_id],
                        set_={k: v for k, v in values.items() if k != "exchange_position_id"},
                    )
                )

    async def mark_position_closed(self, position_id: str) -> None:
        async with self._sessionmaker() as session, session.begin():
            await session.execute(
                update(PositionRow)
                .where(PositionRow.exchange_position_id == position_id)
                .values(open=False, qty=Decimal(0))
            )

    # --- the ownership audit (the account watcher; docs/design.md#the-ownership-invariant) --

    async def owned_quantities(self) -> dict[tuple[str, PositionSide], Decimal]:
        """(symbol, side) → what the open trades own there: per trade, its entry orders' filled
        quantity minus its closing orders' (never below zero), as the trade's ledger counts it.
        Read from the `order` rows, which every activity writes as soon as it sees an order;
        the `trade` row is written at the workflow's steps only, and lags while an entry fills."""
        closing = [leg.value for leg in Leg if leg.closes]
        opening = [leg.value for leg in Leg if leg.opens]
        filled = func.coalesce(func.sum(OrderRow.filled_qty).filter(
            OrderRow.leg.in_(opening)), 0)
        closed = func.coalesce(func.sum(OrderRow.filled_qty).filter(OrderRow.leg.in_(closing)), 0)
        async with self._sessionmaker() as session:
            rows = await session.execute(
                select(Trade.symbol, Trade.side, filled, closed)
                .join(OrderRow, OrderRow.trade_id == Trade.id)
                .where(Trade.status.in_(OPEN_TRADE_STATUSES))
                .group_by(Trade.id, Trade.symbol, Trade.side)
            )
            owned: dict[tuple[str, PositionSide], Decimal] = {}
            for symbol, side, f, c in rows.all():
                if f > c:
                    key = (symbol, PositionSide(side))
                    owned[key] = owned.get(key, Decimal(0)) + f - c
            return owned

    async def order_trades(self, client_ids: Iterable[str]) -> dict[str, tuple[int, str]]:
        """client order id → (trade id, trade status) of the `order` rows these ids have."""
        ids = sorted(set(client_ids))
        if not ids:
            return {}
        async with self._sessionmaker() as session:
            rows = await session.execute(
                select(OrderRow.client_order_id, Trade.id, Trade.status)
                .join(Trade, Trade.id == OrderRow.trade_id)
                .where(OrderRow.client_order_id.in_(ids))
            )
            return {cid: (tid, status) for cid, tid, status in rows.all()}


class OrdersInFlight(Exception):
    """An adoption must wait: an open trade's order on the position is not settled."""


class NotOwner(Exception):
    """The trade row named is not the calling workflow's (activities/ownership.py)."""


def _origin_columns():  # a select of what `_origin` reads, the trade's alert joined
    return (
        select(Trade.id, Trade.side, Trade.workflow_id, Trade.symbol, Trade.status,
               Trade.signal_id, Signal.outcome)
        .outerjoin(Signal, Signal.id == Trade.signal_id)
    )


async def _origin(session: AsyncSession, row: Any) -> TradeOrigin:
    """The trade's origin from its row; a trade with no alert (an adoption) is looked up in
    the incidents: one of them must name this trade and its workflow id in an action."""
    adopted = False
    if row.signal_id is None:
        adopted = await session.scalar(
            select(Incident.id).where(Incident.actions.contains(
                [{"trade_id": row.id, "workflow_id": row.workflow_id}])).limit(1)
        ) is not None
    return TradeOrigin(trade_id=row.id, workflow_id=row.workflow_id, symbol=row.symbol,
                       side=row.side, status=row.status, signal_id=row.signal_id,
                       signal_outcome=row.outcome, adopted=adopted)


def adoption_lock(symbol: str) -> str:
    """The advisory lock an adoption holds while it measures nobody's quantity on `symbol`,
    and an opening claim takes for its insert (so no entry starts in between)."""
    return f"tradewire:adopt:{symbol}"


@dataclass(frozen=True, slots=True)
class WorkingRow:
    client_id: str
    status: OrderStatus
    filled: Decimal  # as the row last recorded it
    sign: int  # +1 an opening order, -1 a closing one


async def _working(session: AsyncSession, symbol: str, side: PositionSide) -> list[WorkingRow]:
    """The open trades' orders on one side of `symbol` that are not terminal (TP/SLs apart)."""
    working = [s.value for s in OrderStatus if not s.is_terminal]
    rows = (await session.execute(
        select(OrderRow.client_order_id, OrderRow.status, OrderRow.filled_qty, OrderRow.leg)
        .join(Trade, Trade.id == OrderRow.trade_id)
        .where(
            Trade.symbol == symbol, Trade.side == side.value,
            Trade.status.in_(OPEN_TRADE_STATUSES),
            OrderRow.leg != Leg.PROTECTION.value, OrderRow.status.in_(working),
        )
    )).all()
    return [WorkingRow(cid, OrderStatus(st), filled, -1 if Leg(leg).closes else 1)
            for cid, st, filled, leg in rows]


async def _owned(session: AsyncSession, symbol: str, side: PositionSide) -> Owned:
    closing = [leg.value for leg in Leg if leg.closes]
    signed = case((OrderRow.leg.in_(closing), -OrderRow.filled_qty), else_=OrderRow.filled_qty)
    working = [s.value for s in OrderStatus if not s.is_terminal]
    in_flight = case((OrderRow.status.in_(working), 1), else_=0)
    qty, flying, rows, newest = (await session.execute(
        select(func.coalesce(func.sum(signed), 0), func.coalesce(func.max(in_flight), 0),
               func.count(OrderRow.id), func.max(OrderRow.updated_at))
        .join(Trade, Trade.id == OrderRow.trade_id)
        .where(
            Trade.symbol == symbol, Trade.side == side.value,
            Trade.status.in_(OPEN_TRADE_STATUSES),
            OrderRow.leg != Leg.PROTECTION.value,  # a TP/SL's row fills nothing itself
        )
    )).one()
    return Owned(Decimal(qty), bool(flying), (int(rows), newest))


def _adopted_snapshot(row: OrderRow) -> OrderSnapshot:
    return OrderSnapshot(
        client_id=row.client_order_id, order_id=None, leg=Leg.ADOPTED,
        fill_side=Side(row.side), order_type=OrderType(row.order_type), qty=row.qty,
        price=row.price, status=OrderStatus(row.status), filled_qty=row.filled_qty,
        avg_price=row.avg_price, adopted=True,
    )


def snapshot_from_order(
    order: Any, *, client_id: str, leg: Leg, fill_side: Side, adopted: bool = False
) -> OrderSnapshot:
    """An exchange `Order` as the trade's snapshot. `fill_side` comes from the request: in
    hedge mode the order's own `side` names the position, not the fill direction."""
    return OrderSnapshot(
        client_id=client_id,
        order_id=order.order_id,
        leg=leg,
        fill_side=fill_side,
        order_type=OrderType(order.order_type),
        qty=order.qty,
        price=order.price,
        status=OrderStatus(order.status),
        filled_qty=order.filled_qty,
        avg_price=order.avg_price,
        fee=order.fee,
        adopted=adopted,
    )




def _proposed(req: OrderRequest) -> ProposedEntry | None:
    """The entry a claim admits, for the risk limits; None when its price is not known."""
    price = req.price or req.slippage_anchor
    if price is None:
        return None
    return ProposedEntry(symbol=req.symbol, notional=(req.target_qty or req.qty) * price,
                         order_notional=req.qty * price, leverage=req.leverage,
                         available_margin=req.available_margin)


async def _mark_entering(session: AsyncSession, req: OrderRequest) -> datetime | None:
    """In the claim's transaction: the one-way check against the trades entering or open on
    the symbol, then this trade marked ENTERING (docs/design.md#position-modes-and-leverage).
    Returns when the trade's alert was received if this marked it (its first entry claim)."""
    # A one-way entry sends no tradeSide (trading.orders.order_fields): its fill side is its
    # position side. Hedge entries keep long and short apart and need no check.
    if req.trade_side is None:
        await session.execute(
            select(func.pg_advisory_xact_lock(func.hashtext("tradewire:one-way:" + req.symbol)))
        )
        entry = PositionSide.LONG if req.fill_side is Side.BUY else PositionSide.SHORT
        others = (await session.scalars(
            select(Trade.side).where(
                Trade.symbol == req.symbol, Trade.id != req.trade_id,
                Trade.status.in_(HOLDING_STATUSES),
            )
        )).all()
        check_one_way_entry(PositionMode.ONE_WAY, symbol=req.symbol, entry=entry,
                            open_trade_sides=others)
    return await session.scalar(
        update(Trade)
        .where(Trade.id == req.trade_id, Trade.status == TradeStatus.PENDING.value)
        .values(status=TradeStatus.ENTERING.value)
        .returning(select(Signal.received_at).where(Signal.id == Trade.signal_id)
                   .correlate(Trade).scalar_subquery())
    )


def _claimed(client_id: str):  # an UPDATE of the SENDING claim `client_id`, nothing sent known
    return update(OrderRow).where(
        OrderRow.client_order_id == client_id,
        OrderRow.status == OrderStatus.SENDING.value,
        OrderRow.exchange_order_id.is_(None),
    )


def _unseen(client_id: str, window: timedelta):
    """An UPDATE of the SENDING claim `client_id` when nothing was sent under it for `window`.
    One statement, PostgreSQL's clock: `updated_at` of a SENDING row is when a send under it
    may last have begun (its claim, take-over or re-stamp right before a send that waited;
    NEVER_SENT once released unsent)."""
    return _claimed(client_id).where(OrderRow.updated_at <= func.now() - window)
