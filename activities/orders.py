"""Placing, reading and cancelling one order, idempotently (docs/design.md#idempotent-placement).

A placement commits its `order` row (SENDING) before the first send. Any placement that finds
the row already there is a re-send (a Temporal retry, or a local activity re-run after a crash,
whose first attempt left no trace in the history): it looks the order up by client id first
and adopts it when the exchange has it. 30042 on a send means the order exists; an uncertain
outcome (timeout, 5xx, dropped answer, 10001) and 20007 just after a placement mean "look
again", never "send again blindly".

"Not visible" is conclusive only after the visibility window (docs/design.md#late-sends): an
order the exchange has not shown for that long since it was last sent under its claim was never
placed. Until then nothing is sent again under that claim, and nothing calls it "not sent" or
never placed: it is looked for again, by the placement while the alert is young enough to send,
then by the trade's `settle_orders`, whatever the alert's age.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.exceptions import ApplicationError

import metrics
from activities.contract import (
    Failure,
    OrderRef,
    OrderRequest,
    OrderSnapshot,
    SettleRequest,
    SettleResult,
)
from activities.errors import POST_ONLY_REJECT_CODES, refuse, translated, try_again
from activities.late_sends import ClaimStamp, restamp_after_s, still_ours
from activities.records import NEVER_SENT, Claim, Records, snapshot_from_order
from activities.venue_reads import VenueReader
from exchange.client import BitunixClient
from exchange.errors import (
    DuplicateClientId,
    ExchangeError,
    NotFoundYet,
    OutcomeUnknown,
    Rejected,
)
from exchange.models import Fill, Order
from trading.risk import RiskLimits
from trading.tiers import RiskTier, tier_refusal
from trading.types import Effect, Leg, OrderStatus, OrderType, Side

log = logging.getLogger("activities.orders")
BPS = Decimal(10_000)
# The default of TRADEWIRE_ORDER_VISIBILITY_S: longer than one exchange request may take
# (TRADEWIRE_EXCHANGE_TIMEOUT_S) plus the time a new order may take to show in its detail.
VISIBILITY_WINDOW = timedelta(seconds=30)
TIERS_MAX_AGE_S = 3600  # BitUnix changes a ladder rarely; an hour-old one only errs early
NEVER_PLACED = "never placed: the exchange did not show it within {window} s of its send"
RELEASED = "never placed: its placement was cancelled before its send, and nothing was sent"
class _Unsent(Exception):
    """Raised by a placement's `before_send`: the order is not sent. `settle`: this attempt
    still owns the claim and settles it REJECTED with the refusal."""

    def __init__(self, refusal: ApplicationError, *, settle: bool = True) -> None:
        super().__init__(refusal.message)
        self.refusal = refusal
        self.settle = settle


class OrderActivities:
    def __init__(
        self,
        client: BitunixClient,
        sessionmaker: async_sessionmaker[AsyncSession],
        *,
        lookup_tries: int = 6,
        lookup_pause_s: float = 0.25,  # float-ok: time or rate, not money
        confirm_tries: int = 12,
        visibility_window: timedelta = VISIBILITY_WINDOW,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        account_limits: RiskLimits | None = None,
        reader: VenueReader | None = None,
    ) -> None:
        self._client = client
        self._reader = reader or VenueReader(client)
        self._account_limits = account_limits or RiskLimits()
        self._records = self.records = Records(sessionmaker)
        self._lookup_tries = lookup_tries
        self._lookup_pause_s = lookup_pause_s
        self._confirm_tries = confirm_tries
        self._window = visibility_window
        self._restamp_after_s = restamp_after_s(visibility_window)
        self._now = now
        # symbol → (when read, its risk-limit ladder): a public read, kept TIERS_MAX_AGE_S.
        self._tiers: dict[str, tuple[float, list[RiskTier]]] = {}  # float-ok: monotonic time
        self._tier_reads: dict[str, asyncio.Future[None]] = {}

    @property
    def visibility_window(self) -> timedelta:
        """How long the exchange may take to show an order we sent."""
        return self._window

    # --- place ----------------------------------------------------------------------------

    @activity.defn(name="place_order")
    async def place_order(self, req: OrderRequest) -> OrderSnapshot:
        with translated():
            claimed = time.monotonic()  # no later than the claim's stamp (PostgreSQL's now())
            claim = await self._records.claim_order(req, self._account_limits)
            stamp = ClaimStamp(claim.stamp, claimed) if claim.created else None
            resend = not claim.created or activity.info().attempt > 1
            if resend and not claim.released:
                # Past the deadline one look only: nothing will be sent, and the trade's
                # settle_orders does the patient looking (a local activity's retries may
                # outlive its schedule-to-close, so an attempt must end promptly).
                tries = 1 if self._past_deadline(req) else self._lookup_tries
                found = await self._lookup(req.client_id, claim.exchange_order_id, tries=tries)
                if found is not None:
                    log.info("order %s found at the exchange: adopted, not re-sent", req.client_id)
                    return await self._record(req.trade_id, req, found, adopted=True)
            if not claim.created:
                taking = time.monotonic()
                settled = await self._take_over(req, claim)
                if isinstance(settled, OrderSnapshot):
                    return settled
                stamp = ClaimStamp(settled, taking)
            assert stamp is not None and stamp.at is not None
            try:
                return await self._send_claimed(req, claim, stamp, resend)
            except asyncio.CancelledError:
                # Cancelled before the send began (CancelledBeforeSend: in its turn; any other
                # cancellation that got here came before `_send`, see `_send_claimed`):
                # nothing left this process, so the next attempt may send at once. Shielded,
                # so the cancellation does not cut the release short.
                if stamp.unsent:
                    await asyncio.shield(self._records.release_claim(req.client_id, stamp.at))
                raise

    async def _send_claimed(self, req: OrderRequest, claim: Claim, stamp: ClaimStamp,
                            resend: bool) -> OrderSnapshot:
        """The checks before a claimed order's send, the send and its answer. `stamp.unsent`
        stays True until the request may have left this process."""
        try:
            self._check_deadline(req)
            if req.leg is Leg.ENTRY:
                # Our clock is too far from the exchange's (exchange/clock.py): a new
                # position would be timed and signed by a clock we cannot trust.
                skewed = self._client.clock.refusal()
                if skewed is not None:
                    # The last answer may be old (reads can come from a cache): refuse
                    # only on a fresh one, so a fixed clock trades again at once.
                    await self._client.tickers([req.symbol])
                    skewed = self._client.clock.refusal()
                if skewed is not None:
                    raise refuse(Failure.CLOCK_SKEWED, skewed)
            if resend:
                await self._check_slippage(req)
            if claim.held_on_side is not None and req.target_qty is not None:
                why = self._beyond_tier(req, claim.held_on_side)
                if why is not None:
                    raise refuse(Failure.RISK_LIMIT_EXCEEDED, why)
            if not claim.created and req.leg is Leg.ENTRY:
                # Claimed by an attempt that died before sending: the state may have
                # changed since that claim's gate (docs/design.md#risk).
                why = await self._records.opening_refusal(req.trade_id)
                if why is not None:
                    raise refuse(Failure.RISK_REFUSED, why)
        except ApplicationError as refusal:
            await self._not_sent(req, stamp, refusal)
            raise
        try:
            placed = await self._send(req, stamp)
        except _Unsent as unsent:
            if unsent.settle:
                await self._not_sent(req, stamp, unsent.refusal)
            raise unsent.refusal from None
        except DuplicateClientId:
            return await self._adopt_existing(req)
        except OutcomeUnknown:
            found = await self._lookup(req.client_id, None)
            if found is None:
                raise  # retryable: the next attempt looks it up before any re-send
            return await self._record(req.trade_id, req, found, adopted=True)
        except Rejected as exc:
            return await self._rejected(req, exc)
        if claim.alert_received_at is not None:  # the trade's first entry order is out
            metrics.first_entry_sent(claim.alert_received_at, stamp.sent_at or self._now())
        found = await self._lookup(None, placed.order_id)
        if found is None:
            snap = _unseen(req, placed.order_id)
            await self._records.save_order(req.trade_id, req.symbol, snap)
            return snap
        return await self._record(req.trade_id, req, found)

    async def _take_over(self, req: OrderRequest, claim: Claim) -> OrderSnapshot | datetime:
        """An earlier attempt claimed this id and may have sent it, and the exchange does not
        show it. A stamp: that silence is conclusive, and the claim is this attempt's now, with
        this stamp (a refusal may say "not sent", a re-send may go). A snapshot: the row's own
        answer (the order was settled already). Otherwise: look again, retryably."""
        if claim.status is OrderStatus.SENDING and claim.exchange_order_id is None:
            stamp = await self._records.take_over_claim(req.client_id, self._window)
            if stamp is not None:
                return stamp
        row = await self._records.order_row(req.client_id)
        assert row is not None
        if row.status != OrderStatus.SENDING.value:
            return row_snapshot(row)
        unseen = (f"order {req.client_id} was sent less than {self._seconds} s ago and the "
                  "exchange does not show it yet")
        if self._past_deadline(req):
            # This placement is over; the trade itself finds the order out before it ends
            # (settle_orders), without the alert's bound. The row stays SENDING.
            raise refuse(Failure.ALERT_TOO_OLD, f"{unseen}; not re-sending it: the alert is "
                         "older than the strategy's max alert age")
        raise try_again(Failure.NOT_FOUND_YET, f"{unseen}; looking again before any re-send")

    @property
    def _seconds(self) -> str:
        return f"{self._window.total_seconds():g}"  # float-ok: time or rate, not money

    async def _send(self, req: OrderRequest, stamp: ClaimStamp):  # returns a PlacedOrder
        async def before_send() -> None:
            """The order's turn has come, maybe long after its claim (a queue behind the
            request budget): nothing goes past the alert's deadline, and the claim's window
            must count from this send, not from the claim (docs/design.md#late-sends)."""
            if self._past_deadline(req):
                raise _Unsent(refuse(
                    Failure.ALERT_TOO_OLD,
                    f"not sending {req.client_id}: its turn in the exchange's request budget "
                    f"came after the alert's max age (deadline {req.send_deadline.isoformat()})"))
            if not await still_ours(self._records, req.client_id, stamp, self._restamp_after_s):
                raise _Unsent(try_again(
                    Failure.NOT_FOUND_YET,
                    f"order {req.client_id}: another attempt took its claim while this one "
                    "waited for the exchange's request budget; not sending it"), settle=False)
            stamp.sent_at = self._now()

        return await self._client.place_order(
            symbol=req.symbol,
            side=req.side,
            qty=req.qty,
            order_type=req.order_type,
            price=req.price,
            effect=req.effect,
            trade_side=req.trade_side,
            position_id=req.position_id,
            reduce_only=req.reduce_only or None,
            client_id=req.client_id,
            before_send=before_send,
        )

    async def _adopt_existing(self, req: OrderRequest) -> OrderSnapshot:
        found = await self._lookup(req.client_id, None)
        if found is None:
            raise try_again(
                Failure.NOT_FOUND_YET,
                f"client id {req.client_id} exists at the exchange (30042) but is not visible "
                "yet; looking again",
            )
        return await self._record(req.trade_id, req, found, adopted=True)

    async def _rejected(self, req: OrderRequest, exc: Rejected) -> OrderSnapshot:
        snap = _unseen(req, None).model_copy(
            update={"status": OrderStatus.REJECTED, "error": str(exc)}
        )
        await self._records.save_order(req.trade_id, req.symbol, snap)
        if req.effect is Effect.POST_ONLY and exc.code in POST_ONLY_REJECT_CODES:
            return snap  # a post-only that would take: the chase re-prices it
        raise exc

    async def _not_sent(self, req: OrderRequest, stamp: ClaimStamp, refusal: ApplicationError) -> None:
        """Settle this attempt's claim REJECTED "not sent: <refusal>" (nothing was sent under
        it). When another attempt took the claim meanwhile, that one decides: look again."""
        if not await self._records.settle_unsent(req.client_id, stamp.at,
                                                 f"not sent: {refusal.message}"):
            raise try_again(Failure.NOT_FOUND_YET, f"order {req.client_id}: another attempt "
                            "took its claim; this one neither sent nor settled it") from None

    def _beyond_tier(self, req: OrderRequest, held: Decimal) -> str | None:
        """Why the entry would take its position past BitUnix's risk-limit tier for its
        leverage (docs/bitunix.md#risk-limit-tiers), checked before the send rather than learnt
        from a 20002. `held`: the notional the other open trades hold on its side (its claim
        read it). Only from a ladder already at hand: the order path never waits for a read
        (a claimed order whose send waits on a slow read can only be looked for, never re-sent,
        for the visibility window). A symbol's ladder is read in the background on its first
        entry and kept an hour; until then the exchange's own 20002 decides."""
        price = req.price or req.slippage_anchor
        if price is None or not req.leverage or req.target_qty is None:
            return None
        tiers = self._tiers_at_hand(req.symbol)
        if not tiers:
            return None
        return tier_refusal(tiers, req.leverage, held + req.target_qty * price, req.symbol)

    def _tiers_at_hand(self, symbol: str) -> list[RiskTier]:
        """The symbol's ladder if read within TIERS_MAX_AGE_S; otherwise [] and one read started
        in the background (one per symbol at a time)."""
        cached = self._tiers.get(symbol)
        fresh = cached is not None and time.monotonic() - cached[0] < TIERS_MAX_AGE_S
        reading = self._tier_reads.get(symbol)
        if not fresh and (reading is None or reading.done()):
            self._tier_reads[symbol] = asyncio.ensure_future(self._read_tiers(symbol))
        return cached[1] if cached is not None and fresh else []

    async def _read_tiers(self, symbol: str) -> None:
        try:
            tiers = await self._client.position_tiers(symbol)
        except ExchangeError as exc:
            log.warning("risk-limit tiers of %s not read (%s): the exchange decides", symbol, exc)
            return
        self._tiers[symbol] = (time.monotonic(), tiers)

    def _past_deadline(self, req: OrderRequest) -> bool:
        return req.send_deadline is not None and self._now() > req.send_deadline

    def _check_deadline(self, req: OrderRequest) -> None:
        if self._past_deadline(req):
            raise refuse(
                Failure.ALERT_TOO_OLD,
                f"not sending {req.client_id}: the alert is older than the strategy's max alert "
                f"age (deadline {req.send_deadline.isoformat()})",
            )

    async def _check_slippage(self, req: OrderRequest) -> None:
        """Before a late market send: the price must still be within the strategy's slippage
        bound of the alert's price."""
        if req.order_type is not OrderType.MARKET or req.slippage_anchor is None:
            return
        if req.max_slippage_bps is None:
            return
        # Shared with the other re-checks and entries on the symbol within a second: in a
        # candle close under BitUnix's limits every late re-send checks, and depth has 10/s.
        book = await self._reader.book(req.symbol, self._now())
        price = book.best_ask if req.fill_side is Side.BUY else book.best_bid
        if price is None:
            return
        bound = req.slippage_anchor * req.max_slippage_bps / BPS
        worse = price - req.slippage_anchor if req.fill_side is Side.BUY else req.slippage_anchor - price
        if worse > bound:
            raise refuse(
                Failure.SLIPPAGE_EXCEEDED,
                f"not re-sending {req.client_id}: the price {format(price, 'f')} is beyond "
                f"{format(req.max_slippage_bps, 'f')} bps of the alert's {format(req.slippage_anchor, 'f')}",
            )

    # --- read -----------------------------------------------------------------------------

    async def _lookup(self, client_id: str | None, order_id: str | None, *,
                      tries: int | None = None) -> Order | None:
        """The order, looked up by exchange id (when known) or client id, patiently: 20007 just
        after a placement may only mean "not visible yet"."""
        tries = tries or self._lookup_tries
        for attempt in range(tries):
            try:
                if order_id is not None:
                    return await self._client.order_detail(order_id=order_id)
                return await self._client.order_detail(client_id=client_id)
            except NotFoundYet:
                if attempt + 1 < tries:
                    await asyncio.sleep(self._lookup_pause_s)
        return None

    async def _record(
        self, trade_id: int, req: OrderRequest | OrderRef, order: Order, *, adopted: bool = False,
        leg: Leg | None = None, fill_side: Side | None = None,
    ) -> OrderSnapshot:
        if isinstance(req, OrderRequest):
            leg, fill_side = req.leg, req.fill_side
        assert leg is not None and fill_side is not None
        snap = snapshot_from_order(
            order, client_id=req.client_id, leg=leg, fill_side=fill_side, adopted=adopted
        )
        row_id, before = await self._records.save_order(trade_id, order.symbol, snap)
        # BitUnix's documented order detail has no avgPrice: the average is then the fills'
        # (docs/design.md#protection), read on every record until it is known.
        unpriced = snap.avg_price is None and snap.filled_qty > 0
        if snap.filled_qty > before or unpriced:
            fills = await self._fills_of(order, patient=unpriced)
            await self._records.save_fills(row_id, fills)
            if unpriced:
                snap = snap.model_copy(update={"avg_price": _average_price(order, fills)})
                if snap.avg_price is not None:
                    await self._records.save_order(trade_id, order.symbol, snap)
        return snap

    async def _fills_of(self, order: Order, *, patient: bool) -> list[Fill]:
        """The order's fills; `patient`: look again (briefly) until they cover its filled
        quantity, as fills may show a moment after the order does."""
        fills: list[Fill] = []
        for attempt in range(self._lookup_tries if patient else 1):
            fills = await self._client.history_trades(order.symbol, order_id=order.order_id, limit=100)
            if sum((f.qty for f in fills if f.order_id == order.order_id), Decimal(0)) >= order.filled_qty:
                break
            if attempt + 1 < self._lookup_tries:
                await asyncio.sleep(self._lookup_pause_s)
        return fills

    @activity.defn(name="sync_order")
    async def sync_order(self, ref: OrderRef) -> OrderSnapshot:
        """Re-read one order and mirror it (row and fills)."""
        with translated():
            row = await self._records.order_row(ref.client_id)
            if row is None:
                raise refuse(Failure.ORDER_ROW_MISSING, f"no order row for {ref.client_id}")
            order_id = ref.order_id or row.exchange_order_id
            found = await self._lookup(None if order_id else ref.client_id, order_id)
            if found is None:
                raise try_again(Failure.NOT_FOUND_YET, f"order {ref.client_id} not visible yet")
            return await self._record(
                ref.trade_id, ref, found, leg=Leg(row.leg), fill_side=Side(row.side)
            )

    # --- cancel ---------------------------------------------------------------------------

    @activity.defn(name="cancel_order")
    async def cancel_order(self, ref: OrderRef) -> OrderSnapshot:
        """Cancel and return the order once its detail shows a terminal status: a code 0 from
        cancel_orders proves nothing, and its failureList may say the order had filled."""
        with translated():
            row = await self._records.order_row(ref.client_id)
            if row is None:
                raise refuse(Failure.ORDER_ROW_MISSING, f"no order row for {ref.client_id}")
            leg, fill_side = Leg(row.leg), Side(row.side)
            order_id = ref.order_id or row.exchange_order_id
            found = await self._lookup(None if order_id else ref.client_id, order_id)
            if found is None:
                if row.status == OrderStatus.SENDING.value and order_id is None:
                    # Maybe still on its way: never placed only once the exchange's silence
                    # about it is conclusive.
                    error = (RELEASED if row.updated_at == NEVER_SENT
                             else NEVER_PLACED.format(window=self._seconds))
                    if not await self._records.reject_unplaced(ref.client_id, self._window, error):
                        raise try_again(
                            Failure.NOT_FOUND_YET,
                            f"order {ref.client_id} was sent less than {self._seconds} s ago and "
                            "the exchange does not show it yet; looking again",
                        )
                    row.status, row.error = OrderStatus.REJECTED.value, error
                if row.status == OrderStatus.REJECTED.value:
                    return row_snapshot(row)
                raise try_again(Failure.NOT_FOUND_YET, f"order {ref.client_id} not visible yet")
            if not found.status.is_terminal:
                result = await self._client.cancel_orders(ref.symbol, order_ids=[found.order_id])
                for failure in result.failed:
                    log.info("cancel of %s answered in failureList: %s", ref.client_id, failure.error)
                found = await self._confirm_terminal(found.order_id)
            return await self._record(ref.trade_id, ref, found, leg=leg, fill_side=fill_side)

    # --- settle ---------------------------------------------------------------------------

    @activity.defn(name="settle_orders")
    async def settle_orders(self, req: SettleRequest) -> SettleResult:
        """What became of every order the trade claimed on the leg, but those it knows: a row
        that is terminal already is the answer; any other is looked up and cancelled until
        terminal, exactly as `cancel_order` (patiently, while it may still show up)."""
        with translated():
            out: list[OrderSnapshot] = []
            for row in await self._records.claimed_orders(req.trade_id, req.leg):
                if row.client_order_id in req.known:
                    continue
                if OrderStatus(row.status).is_terminal:
                    out.append(row_snapshot(row))
                    continue
                out.append(await self.cancel_order(OrderRef(
                    trade_id=req.trade_id, client_id=row.client_order_id, symbol=req.symbol,
                    order_id=row.exchange_order_id,
                )))
            return SettleResult(orders=out)

    async def _confirm_terminal(self, order_id: str) -> Order:
        pause = 0.05
        last: Order | None = None
        for _ in range(self._confirm_tries):
            last = await self._client.order_detail(order_id=order_id)
            if last.status.is_terminal:
                return last
            await asyncio.sleep(pause)
            pause = min(pause * 2, 1.0)
        raise try_again(
            Failure.CANCEL_NOT_CONFIRMED,
            f"order {order_id} is still {last.status.value if last else 'unknown'} after the "
            "cancel; cancelling again",
        )


def _average_price(order: Order, fills: list[Fill]) -> Decimal | None:
    """The order's average fill price from its fills; a limit order with none visible yet
    filled at its price (or better); None when nothing says (the trade then warns)."""
    own = [f for f in fills if f.order_id == order.order_id and f.qty > 0]
    qty = sum((f.qty for f in own), Decimal(0))
    if qty > 0:
        return sum((f.qty * f.price for f in own), Decimal(0)) / qty
    if order.order_type is OrderType.LIMIT and order.price is not None:
        return order.price
    log.warning("order %s has no average price: no avgPrice and no fill visible", order.order_id)
    return None


def _unseen(req: OrderRequest, order_id: str | None) -> OrderSnapshot:
    """The order as we sent it, before the exchange showed it."""
    return OrderSnapshot(
        client_id=req.client_id,
        order_id=order_id,
        leg=req.leg,
        fill_side=req.fill_side,
        order_type=req.order_type,
        qty=req.qty,
        price=req.price,
        status=OrderStatus.NEW if order_id else OrderStatus.SENDING,
    )


def row_snapshot(row) -> OrderSnapshot:  # row: a db.models.Order
    return OrderSnapshot(
        client_id=row.client_order_id,
        order_id=row.exchange_order_id,
        leg=Leg(row.leg),
        fill_side=Side(row.side),
        order_type=OrderType(row.order_type),
        qty=row.qty,
        price=row.price,
        status=OrderStatus(row.status),
        filled_qty=row.filled_qty,
        avg_price=row.avg_price,
        fee=row.fee,
        error=row.error,
    )
