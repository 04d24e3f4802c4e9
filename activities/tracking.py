"""Re-reading a trade at the exchange while it is tracked, and recording closes it did not send
(its TP/SL fired, a liquidation, a manual close)."""

from __future__ import annotations

import asyncio
import logging
import time
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity

from activities.contract import OrderRef, OrderSnapshot, PositionView
from activities.contract_tracking import (
    ExternalCloseRequest,
    ExternalCloseResult,
    PriceQuery,
    PriceRead,
    RefreshRequest,
    RefreshResult,
)
from activities.errors import translated
from activities.orders import OrderActivities, row_snapshot
from activities.records import Owned, Records
from activities.shared_read import SharedRead
from activities.timer_reads import TimerReads
from db.models import Fill as FillRow
from db.models import Order as OrderRow
from exchange.client import BitunixClient
from exchange.models import Fill, Order, Position, Ticker, TpslOrder
from trading.types import Leg, OrderStatus, OrderType, PositionMode, PositionSide, StopType

log = logging.getLogger("activities.tracking")
# Exchange and worker clocks differ; closing fills are searched from a little before the last
# time our quantity was seen.
CLOCK_MARGIN_MS = 5_000
PAGE = 100  # BitUnix's largest page
FILL_PAGES = 10
TPSL_FIRED = "FILLED"  # a TP/SL's status in its history once it has fired
TRIGGER_MARGIN_MS = 1_000
# A gap a fresh position read confirmed (quantity no open trade owns) is taken as confirmed for
# this long: the side's later checks report it without a read of their own, so an incident that
# lasts costs one extra positions read per side per this interval, however many trades check.
GAP_CONFIRMED_S = 10.0
ESTIMATED = "estimated: priced at the TP/SL's trigger price until its close's fills are listed"


def not_before(req: RefreshRequest) -> float:  # float-ok: wall-clock seconds
    """The oldest read a check may use: one that started after its activity was scheduled (so
    after the signal that woke the trade), or up to `max_age_ms` older for a check on the
    trade's own timer. Clamped to this worker's clock, should the server's run ahead."""
    scheduled = activity.info().current_attempt_scheduled_time.timestamp()
    return min(scheduled, time.time()) - req.max_age_ms / 1000


def our_position(positions: list[Position], symbol: str, side: object) -> Position | None:
    return next((p for p in positions if p.symbol == symbol and p.side == side and p.qty > 0), None)


class TrackingActivities:
    def __init__(
        self,
        client: BitunixClient,
        sessionmaker: async_sessionmaker[AsyncSession],
        orders: OrderActivities,
        *,
        fill_tries: int = 4,
        fill_pause_s: float = 0.25,  # float-ok: time or rate, not money
    ) -> None:
        self._client = client
        self._sessionmaker = sessionmaker
        self._records = Records(sessionmaker)
        self._orders = orders
        self._fill_tries = fill_tries
        self._fill_pause_s = fill_pause_s
        self._positions = SharedRead(self._read_positions)
        self._tickers: dict[str, SharedRead[Ticker | None]] = {}
        self._tpsl: dict[str, SharedRead[set[str]]] = {}
        self._resting: dict[str, SharedRead[dict[str, Order]]] = {}
        self._saved: dict[str, Position] = {}  # position id → as last written
        # (symbol, side) → when a read confirmed a gap there, and its size
        self._gaps: dict[tuple[str, str], tuple[float, Decimal]] = {}
        # Checks on the trades' own timers: one account snapshot for all of them.
        self._timer_reads = TimerReads(client, lambda: self._positions.get(time.time()))

    async def _read_positions(self) -> list[Position]:
        """The account's positions; those that changed since this process last wrote them are
        written (once per read, not once per trade)."""
        positions = await self._client.pending_positions()
        changed = [p for p in positions if self._saved.get(p.position_id) != p]
        if changed:
            await self._records.save_positions(changed, None)
            self._saved.update({p.position_id: p for p in changed})
        gone = set(self._saved) - {p.position_id for p in positions}
        for position_id in gone:
            del self._saved[position_id]
        return positions

    def _ticker(self, symbol: str) -> SharedRead[Ticker | None]:
        # Mark and last price in one read, shared by the refreshes and the trailing stops.
        async def read() -> Ticker | None:
            tickers = await self._client.tickers([symbol])
            return next((t for t in tickers if t.symbol == symbol), None)

        return self._tickers.setdefault(symbol, SharedRead(read))

    def _pending_tpsl(self, symbol: str) -> SharedRead[set[str]]:
        async def read() -> set[str]:
            # Every page: a TP/SL on page two must never be taken for one that is gone.
            return {o.id for o in await self._client.all_pending_tpsl_orders(symbol)}

        return self._tpsl.setdefault(symbol, SharedRead(read))

    def _pending_orders(self, symbol: str) -> SharedRead[dict[str, Order]]:
        async def read() -> dict[str, Order]:
            out: dict[str, Order] = {}
            while True:  # every page: an order on page two must never be taken for one gone
                page = await self._client.pending_orders(symbol, skip=len(out), limit=PAGE)
                out.update({o.order_id: o for o in page})
                if len(page) < PAGE:
                    return out

        return self._resting.setdefault(symbol, SharedRead(read))

    async def _sync(self, ref: OrderRef, since: float) -> OrderSnapshot:  # float-ok: seconds
        """One order of the trade as it is now. A resting take-profit level the pending list
        shows unchanged (same status, nothing more filled) is answered from its row: one list
        read per symbol, shared by every trade checking then, instead of an order detail per
        level, so a ladder's levels do not multiply the account's requests
        (docs/design.md#exits). Any other order, and any doubt, is read by itself."""
        row = await self._records.order_row(ref.client_id)
        if row is not None and row.leg == Leg.TAKE_PROFIT.value and row.exchange_order_id \
                and not OrderStatus(row.status).is_terminal:
            resting = await self._pending_orders(ref.symbol).get(since)
            listed = resting.get(row.exchange_order_id)
            if listed is not None and listed.filled_qty == row.filled_qty \
                    and listed.status.value == row.status:
                return row_snapshot(row)
        return await self._orders.sync_order(ref)

    @activity.defn(name="refresh_trade")
    async def refresh_trade(self, req: RefreshRequest) -> RefreshResult:
        """The trade's orders, then its position, then its TP/SL, in that order
        (docs/design.md#tracking-and-the-account-watcher): the position is read after the
        orders, so it already holds every fill the order sync saw (quantity missing from it
        is not a fill that landed between the reads), and the TP/SL after the position, so
        one that fired after the position read shows as gone while the position still holds
        its quantity, never the other way round."""
        with translated():
            since = not_before(req)
            if not req.orders:
                return await self._from_snapshot(req, since)
            seen_at = int(since * 1000)  # the reads used show the exchange at or after this
            mark = self._ticker(req.symbol).start(since)
            snaps = [await self._sync(ref, since) for ref in req.orders]
            # After a sync, only a position read started after it will do.
            positions = await self._positions.get(time.time() if snaps else since)
            pending = False
            if req.protection_id is not None:
                pending = req.protection_id in await self._pending_tpsl(req.symbol).get(since)
            return await self._result(req, snaps, positions, pending,
                                      await asyncio.shield(mark), seen_at)

    async def _from_snapshot(self, req: RefreshRequest, since: float) -> RefreshResult:  # float-ok: s
        """A check with no order to sync: from the snapshot every trade of the process checking
        about then shares (activities/timer_reads.py), started no earlier than `since` (for a
        check a signal woke, after the signal), so checks cost a fixed number of requests per
        snapshot, not per trade or symbol."""
        snap = await self._timer_reads.get(req.symbol, since)
        pending = req.protection_id is not None and req.protection_id in snap.tpsl_ids
        ticker = snap.tickers.get(req.symbol)
        if ticker is None:  # a symbol the snapshot did not know yet
            ticker = await self._ticker(req.symbol).get(since)
        return await self._result(req, [], snap.positions, pending, ticker,
                                  int(snap.started_s * 1000))

    async def _result(self, req: RefreshRequest, snaps: list[OrderSnapshot],
                      positions: list[Position], pending: bool, ticker: Ticker | None,
                      seen_at: int) -> RefreshResult:
        ours = our_position(positions, req.symbol, req.side)
        if req.position_id is not None and (ours is None or ours.position_id != req.position_id):
            await self._records.mark_position_closed(req.position_id)
        owned = None if ours is None else await self._records.owned(ours.symbol, ours.side)
        unowned = None if ours is None or owned is None else await self._unowned(ours, owned)
        return RefreshResult(
            orders=snaps,
            position=None if ours is None else PositionView(
                position_id=ours.position_id, side=ours.side, qty=ours.qty,
                avg_open_price=ours.avg_open_price,
            ),
            protection_pending=pending,
            mark_price=_mark(ticker),
            now_ms=seen_at,
            unowned_qty=unowned,
            owned_qty=None if owned is None else owned.qty,
        )

    @activity.defn(name="read_trail_price")
    async def read_trail_price(self, req: PriceQuery) -> PriceRead:
        """The price a trailing stop follows, from the ticker read every trade of the symbol
        shares (workflows/trailing.py): however many trades trail, at most one ticker read
        per `max_age_ms` for the symbol."""
        with translated():
            since = min(activity.info().current_attempt_scheduled_time.timestamp(), time.time())
            ticker = await self._ticker(req.symbol).get(since - req.max_age_ms / 1000)
            if ticker is None:
                return PriceRead(price=None)
            last = req.stop_type is StopType.LAST_PRICE
            return PriceRead(price=ticker.last_price if last else ticker.mark_price)

    async def _unowned(self, position: Position, owned: Owned) -> Decimal | None:
        """How much more the position holds than all open trades on it own, when none of
        their orders is in flight. Such quantity is nobody's: no trade closes, protects or
        tracks it, so it is reported loudly here (the hook for an incident or a protective
        stop; review finding 3, 'a position larger than owned').

        `position` may come from a read that started before `owned` was read (a read shared
        with other trades): a close another trade recorded in between is still in it, and
        looked like quantity nobody owns (the bench's bulk closes warned on trades that were
        fine). So a gap is confirmed first, by a position read started after `owned` and the
        records read again after it: only when the records did not change between the two
        reads (same rows, none newer) does the read show exactly what they own, and the gap
        is its excess. Records that moved meanwhile confirm nothing this time; a real gap is
        confirmed by a later check. The extra reads happen only when a gap is seen, are
        shared like any other, and a confirmed gap stands for GAP_CONFIRMED_S: the side's
        checks report it (never more than what was confirmed) without a read each."""
        seen = position.qty - owned.qty
        if seen <= 0 or owned.in_flight:
            return None
        key = (position.symbol, position.side.value)
        confirmed = self._gaps.get(key)
        if confirmed is not None and time.monotonic() - confirmed[0] < GAP_CONFIRMED_S:
            return self._report(position, owned, min(seen, confirmed[1]))
        fresh = our_position(await self._positions.get(time.time()), position.symbol,
                             position.side)
        after = await self._records.owned(position.symbol, position.side)
        if fresh is None or after.in_flight or after.version != owned.version:
            return None
        extra = fresh.qty - after.qty
        if extra <= 0:
            self._gaps.pop(key, None)
            return None
        self._gaps[key] = (time.monotonic(), extra)
        return self._report(fresh, after, extra)

    @staticmethod
    def _report(position: Position, owned: Owned, extra: Decimal) -> Decimal:
        log.warning(
            "UNOWNED QUANTITY: position %s (%s %s) holds %s, the open trades own %s: %s is "
            "owned, protected and tracked by no trade", position.position_id, position.symbol,
            position.side.value, position.qty, owned.qty, extra,
        )
        return extra

    @activity.defn(name="record_external_close")
    async def record_external_close(self, req: ExternalCloseRequest) -> ExternalCloseResult:
        """Our share of the exchange's closing fills on the position since `since_ms`: the fills
        without a client id (what TP/SL, liquidation and manual closes produce). The share is
        `req.qty` at their average price; when several trades lose quantity in the same window
        they share that average (the exchange does not say which close was whose). With
        `require_fills` the fills must confirm the close: only those no other row recorded
        count, and the share is at most their quantity."""
        with translated():
            if req.protection_order_id is not None:
                return await self._protection_close(req, req.protection_order_id)
            fills = await self._closing_fills(req)
            qty = req.qty
            if req.require_fills:
                # The fills are the evidence that a close happened at all: one another order
                # row already holds was counted (by another trade, or by this one at an
                # earlier check), and the close is never recorded larger than they show.
                fills = await self._not_recorded_elsewhere(fills, req.client_id)
                if not fills:
                    return ExternalCloseResult(found=False, snapshot=None)
                qty = min(qty, sum((f.qty for f in fills), Decimal(0)))
            if fills:
                total = sum((f.qty for f in fills), Decimal(0))
                avg: Decimal | None = sum((f.qty * f.price for f in fills), Decimal(0)) / total
                fee = sum((f.fee for f in fills), Decimal(0)) * min(qty, total) / total
            else:
                log.warning(
                    "no closing fill found for %s on position %s since %s: recorded at the last "
                    "known price", req.client_id, req.position_id, req.since_ms,
                )
                avg, fee = req.fallback_price, Decimal(0)
            leg = req.leg
            if leg is Leg.TRIGGERED and (avg is None or not _crossed(req, avg)):
                leg = Leg.EXTERNAL
            snap = OrderSnapshot(
                client_id=req.client_id, order_id=fills[0].order_id if fills else None,
                leg=leg, fill_side=req.side.exit_side, order_type=OrderType.MARKET,
                qty=qty, price=None, status=OrderStatus.FILLED, filled_qty=qty,
                avg_price=avg, fee=fee,
                error=None if fills else "no closing fill found; priced at the last known price",
            )
            row_id, _ = await self._records.save_order(req.trade_id, req.symbol, snap)
            await self._records.save_fills(row_id, fills)
            if req.protection_client_id is not None and leg is Leg.TRIGGERED:
                await self._records.set_order_status(req.protection_client_id, OrderStatus.FILLED)
            return ExternalCloseResult(found=bool(fills), snapshot=snap)

    async def _protection_close(self, req: ExternalCloseRequest, order_id: str) -> ExternalCloseResult:
        """Our TP/SL is no longer pending. Whether it fired is its own history's to say (not
        any close without a client id: another trade's TP/SL or a manual close makes those
        too), and what it closed is its own closing order's fills, at most `req.qty`."""
        tpsl = await self._client.find_tpsl_history_order(req.symbol, order_id, req.position_id)
        if req.refine:
            return await self._refine(req, order_id, tpsl)
        if tpsl is None:
            return await self._not_listed(req, order_id)
        if tpsl.status != TPSL_FIRED:
            log.info("TP/SL %s ended %s: it closed nothing", order_id, tpsl.status)
            if req.protection_client_id is not None:
                await self._records.set_order_status(req.protection_client_id, _ended(tpsl))
            return ExternalCloseResult(found=False, snapshot=None)
        fills = await self._fired_fills(req, order_id, _fills_since(req, tpsl))
        if not fills:
            # FILLED means fired: its quantity left the position, whether or not the close's
            # fills are listed yet. Recorded as nothing, a shared position still holds the
            # other trades' quantity, and a new TP/SL would be placed over it.
            log.warning("TP/SL %s fired, but no closing fill of it is listed yet: recorded "
                        "at its trigger price until they are", order_id)
            return await self._estimate(req, order_id, req.qty, tpsl.tp_price, tpsl.sl_price)
        return await self._record_fired(req, fills)

    async def _not_listed(self, req: ExternalCloseRequest, order_id: str) -> ExternalCloseResult:
        """Neither list shows the TP/SL: a history that lags (or no longer reaches back to
        it). The position tells whether it can have fired: it did not if the position still
        holds all that the open trades on it own. Until that is clear it is unknown (the trade
        keeps it and looks again, never placing a second one over another trade's quantity);
        past the trade's bound (`req.decide`) the position's numbers decide."""
        pending = await self._client.all_pending_tpsl_orders(req.symbol, req.position_id)
        if any(o.id == order_id for o in pending):
            # The check's list missed it (a page shifted under it): it is live.
            return ExternalCloseResult(found=False, snapshot=None, still_pending=True)
        if req.protection_client_id is not None and await self._records.placed_within(
            req.protection_client_id, self._orders.visibility_window
        ):
            # Placed moments ago: the exchange may not list a new TP/SL yet. Taking it as
            # gone would place a second one beside it.
            return ExternalCloseResult(found=False, snapshot=None, still_pending=True)
        missing, sure = await self._missing(req)
        if missing == 0 and (sure or req.decide):
            log.warning("TP/SL %s is neither pending nor in its history, and the position holds "
                        "all that the open trades own: it closed nothing", order_id)
            return ExternalCloseResult(found=False, snapshot=None)
        if not req.decide:
            log.warning("TP/SL %s is neither pending nor in its history yet, and the position "
                        "holds %s less than the open trades own%s: kept as unknown, looked at "
                        "again", order_id, missing, "" if sure else " (orders in flight)")
            return ExternalCloseResult(found=False, snapshot=None, unknown=True)
        # Still unexplained past the bound, and quantity is missing from the position: the
        # safe reading is that our TP/SL closed it (at most what is missing). Re-placing it
        # would put a TP/SL of quantity we may no longer own over the other trades' share;
        # this way what the trade still owns is protected again, and the books match the
        # position. The close's fills, if listed later, replace the estimate.
        log.warning("TP/SL %s: neither pending nor in its history past the bound while the "
                    "position lacks %s of what is owned: taken as fired", order_id, missing)
        return await self._estimate(req, order_id, min(req.qty, missing), req.tp, req.sl)

    async def _missing(self, req: ExternalCloseRequest) -> tuple[Decimal, bool]:
        """How much less the position holds than the open trades on it own (never below 0),
        and whether none of their orders is in flight (else their rows may lag the position
        either way, and the number is only a guess)."""
        positions = await self._positions.get(time.time())
        ours = our_position(positions, req.symbol, req.side)
        held = ours.qty if ours is not None and ours.position_id == req.position_id else Decimal(0)
        owned = await self._records.owned(req.symbol, req.side)
        return max(owned.qty - held, Decimal(0)), not owned.in_flight

    async def _estimate(self, req: ExternalCloseRequest, order_id: str, qty: Decimal,
                        tp: Decimal | None, sl: Decimal | None) -> ExternalCloseResult:
        """`qty` recorded as closed by the TP/SL `order_id` at its trigger price: an estimate
        the trade refines (`req.refine`) once the close's fills are listed."""
        snap = OrderSnapshot(
            client_id=req.client_id, order_id=order_id, leg=Leg.TRIGGERED,
            fill_side=req.side.exit_side, order_type=OrderType.MARKET, qty=qty, price=None,
            status=OrderStatus.FILLED, filled_qty=qty,
            avg_price=trigger_price(req.side, tp, sl, req.fallback_price), fee=Decimal(0),
            error=ESTIMATED,
        )
        await self._records.save_order(req.trade_id, req.symbol, snap)
        if req.protection_client_id is not None:
            await self._records.set_order_status(req.protection_client_id, OrderStatus.FILLED)
        return ExternalCloseResult(found=False, snapshot=snap, estimated=True)

    async def _refine(self, req: ExternalCloseRequest, order_id: str,
                      tpsl: TpslOrder | None) -> ExternalCloseResult:
        """The estimate `req.client_id` of what TP/SL `order_id` closed, replaced by the
        close's fills once listed (the same row: counted once), or withdrawn if the history
        says the TP/SL was cancelled. Nothing to say yet: no snapshot (the estimate stays)."""
        if tpsl is not None and tpsl.status != TPSL_FIRED:
            log.warning("TP/SL %s was taken as fired, but its history says %s: the estimate "
                        "is withdrawn", order_id, tpsl.status)
            snap = OrderSnapshot(
                client_id=req.client_id, order_id=order_id, leg=Leg.TRIGGERED,
                fill_side=req.side.exit_side, order_type=OrderType.MARKET, qty=req.qty,
                price=None, status=OrderStatus.CANCELED, filled_qty=Decimal(0),
                error=f"withdrawn: the TP/SL's history says {tpsl.status}, not fired",
            )
            await self._records.save_order(req.trade_id, req.symbol, snap)
            if req.protection_client_id is not None:
                await self._records.set_order_status(req.protection_client_id, _ended(tpsl))
            return ExternalCloseResult(found=False, snapshot=snap)
        fills = await self._fired_fills(req, order_id, _fills_since(req, tpsl))
        if not fills:
            return ExternalCloseResult(found=False, snapshot=None, estimated=True)
        return await self._record_fired(req, fills)

    async def _record_fired(self, req: ExternalCloseRequest, fills: list[Fill]) -> ExternalCloseResult:
        """What a fired TP/SL closed: its close's fills, at most `req.qty`."""
        total = sum((f.qty for f in fills), Decimal(0))
        qty = min(req.qty, total)
        snap = OrderSnapshot(
            client_id=req.client_id, order_id=fills[0].order_id, leg=Leg.TRIGGERED,
            fill_side=req.side.exit_side, order_type=OrderType.MARKET, qty=qty, price=None,
            status=OrderStatus.FILLED, filled_qty=qty,
            avg_price=sum((f.qty * f.price for f in fills), Decimal(0)) / total,
            fee=sum((f.fee for f in fills), Decimal(0)) * qty / total,
        )
        row_id, _ = await self._records.save_order(req.trade_id, req.symbol, snap)
        await self._records.save_fills(row_id, fills)
        if req.protection_client_id is not None:
            await self._records.set_order_status(req.protection_client_id, OrderStatus.FILLED)
        return ExternalCloseResult(found=True, snapshot=snap)

    async def _fired_fills(self, req: ExternalCloseRequest, order_id: str,
                           since_ms: int) -> list[Fill]:
        """The fills of the close a fired TP/SL made: those of the TP/SL's own id if the
        exchange names it so, else of the first closing order without a client id since its
        trigger, preferring one of exactly `req.qty` (another close may have come as well)."""
        for attempt in range(self._fill_tries):
            fills = [f for f in await self._fills_since(req, since_ms)
                     if f.client_id is None and _closes(f, req)]
            own = [f for f in fills if f.order_id == order_id]
            if own:
                return own
            by_order: dict[str, list[Fill]] = {}
            for f in sorted(fills, key=lambda f: (f.ctime_ms or 0, f.trade_id)):
                by_order.setdefault(f.order_id, []).append(f)
            closes = list(by_order.values())
            exact = [c for c in closes if sum((f.qty for f in c), Decimal(0)) == req.qty]
            if exact or closes:
                return (exact or closes)[0]
            if attempt + 1 < self._fill_tries:
                await asyncio.sleep(self._fill_pause_s)
        return []

    async def _fills_since(self, req: ExternalCloseRequest, since_ms: int) -> list[Fill]:
        """The position's fills since `since_ms`, every page (the close we look for is the
        oldest of them, on the last page when there are many)."""
        out: list[Fill] = []
        for page_no in range(FILL_PAGES):
            page = await self._client.history_trades(
                req.symbol, position_id=req.position_id, start_time_ms=since_ms,
                skip=page_no * PAGE, limit=PAGE,
            )
            out.extend(page)
            if len(page) < PAGE:
                break
        return out

    async def _not_recorded_elsewhere(self, fills: list[Fill], client_id: str) -> list[Fill]:
        """`fills` less those an order row other than `client_id`'s already holds (this
        activity's own row holds them after a retry: they still count for it)."""
        if not fills:
            return []
        async with self._sessionmaker() as session:
            taken = set(await session.scalars(
                select(FillRow.exchange_trade_id)
                .join(OrderRow, OrderRow.id == FillRow.order_id)
                .where(FillRow.exchange_trade_id.in_([f.trade_id for f in fills]),
                       OrderRow.client_order_id != client_id)
            ))
        return [f for f in fills if f.trade_id not in taken]

    async def _closing_fills(self, req: ExternalCloseRequest) -> list[Fill]:
        for attempt in range(self._fill_tries):
            fills = await self._client.history_trades(
                req.symbol, position_id=req.position_id,
                start_time_ms=req.since_ms - CLOCK_MARGIN_MS, limit=100,
            )
            found = [f for f in fills if f.client_id is None and _closes(f, req)]
            if found:
                return found
            if attempt + 1 < self._fill_tries:
                await asyncio.sleep(self._fill_pause_s)
        return []


def _fills_since(req: ExternalCloseRequest, tpsl: TpslOrder | None) -> int:
    """Where to look for a fired TP/SL's closing fills. The trigger time and the fills share
    the exchange's clock: a second's margin for rounding, not the worker's CLOCK_MARGIN_MS."""
    if tpsl is not None and tpsl.trigger_time_ms:
        return tpsl.trigger_time_ms - TRIGGER_MARGIN_MS
    return req.since_ms - CLOCK_MARGIN_MS


def _ended(tpsl: TpslOrder) -> OrderStatus:
    """The row status of a TP/SL its history lists as ended without firing."""
    return (OrderStatus.SYSTEM_CANCELED if tpsl.status == OrderStatus.SYSTEM_CANCELED
            else OrderStatus.CANCELED)


def trigger_price(side: PositionSide, tp: Decimal | None, sl: Decimal | None,
                  mark: Decimal | None) -> Decimal | None:
    """The price a fired TP/SL most likely triggered at: its only leg; else the leg the mark
    has passed; else the one nearer the mark; with no mark, the stop (the loss, not a gain that
    may not have happened)."""
    if tp is None or sl is None:
        return tp if tp is not None else sl
    if mark is None:
        return sl
    long = side is PositionSide.LONG
    if mark >= tp if long else mark <= tp:
        return tp
    if mark <= sl if long else mark >= sl:
        return sl
    return tp if abs(mark - tp) < abs(mark - sl) else sl


def _crossed(req: ExternalCloseRequest, price: Decimal) -> bool:
    """Did a close at `price` reach the TP or the SL (so our TP/SL is what closed)?"""
    long = req.side is PositionSide.LONG
    tp_hit = req.tp is not None and (price >= req.tp if long else price <= req.tp)
    sl_hit = req.sl is not None and (price <= req.sl if long else price >= req.sl)
    return tp_hit or sl_hit


def _closes(fill: Fill, req: ExternalCloseRequest) -> bool:
    """In one-way mode a close fills on the exit side; in hedge mode `side` names the position,
    so every fill without a client id on the position is taken as a close."""
    if req.position_mode is PositionMode.HEDGE:
        return True
    return fill.side is req.side.exit_side


def _mark(ticker: Ticker | None) -> Decimal | None:
    return None if ticker is None else ticker.mark_price
