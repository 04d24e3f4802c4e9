"""TP/SL orders of a trade: place (or adopt), move/resize, cancel (docs/design.md#protection).

BitUnix gives TP/SL orders no client id, so the `order` row (keyed by our deterministic client
id) is committed before the first send, placements on one position run one at a time (a
PostgreSQL advisory lock on the position id), and every send is preceded by a look at the
position's pending TP/SL orders: a matching one that no row records yet is adopted. That covers
a retry of a placement whose answer was lost, and as well a later placement under a new client
id after the retries of such a placement ran out (review finding 8).

When the TP/SL wanted changed meanwhile (a further fill, `set_protection`), the lost one no
longer matches the new placement. The trade then hands over its unsettled claims (what each
lost placement asked for): each claim's TP/SL, recognised by what it asked for and recorded by
no row, is adopted for the new placement and moved, or cancelled, and its row settled, before
anything is sent (issue 19, gap B).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import AsyncIterator
from datetime import timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity

from activities.contract import (
    ClaimsRequest,
    Failure,
    OrderRequest,
    OrderSnapshot,
    ProtectionCancelled,
    ProtectionClaim,
    ProtectionLevel,
    ProtectionRef,
    ProtectionRequest,
    ProtectionSnapshot,
)
from activities.contract_tracking import Done
from activities.errors import protection_refused, refuse, translated, try_again
from activities.late_sends import ClaimStamp, restamp_after_s, still_ours
from activities.orders import VISIBILITY_WINDOW
from activities.records import Records
from exchange.client import BitunixClient
from exchange.errors import NotFoundYet, OutcomeUnknown, PositionNotFound, Rejected
from exchange.models import TpslOrder
from trading.types import Leg, OrderStatus, OrderType, PositionSide

log = logging.getLogger("activities.protection")


class ProtectionActivities:
    def __init__(
        self,
        client: BitunixClient,
        sessionmaker: async_sessionmaker[AsyncSession],
        *,
        adopt_tries: int = 4,
        adopt_pause_s: float = 0.25,  # float-ok: time or rate, not money
        visibility_window: timedelta = VISIBILITY_WINDOW,
    ) -> None:
        self._client = client
        self._sessionmaker = sessionmaker
        self._records = Records(sessionmaker)
        self._adopt_tries = adopt_tries
        self._adopt_pause_s = adopt_pause_s
        self._window = visibility_window
        self._restamp_after_s = restamp_after_s(visibility_window)

    @contextlib.asynccontextmanager
    async def _one_at_a_time(self, position_id: str) -> AsyncIterator[None]:
        """TP/SL placements on one position never overlap, so an adoption can tell ours apart."""
        async with self._sessionmaker() as session:
            key = {"k": f"tpsl:{position_id}"}
            await session.execute(text("SELECT pg_advisory_lock(hashtext(:k))"), key)
            try:
                yield
            finally:
                await session.execute(text("SELECT pg_advisory_unlock(hashtext(:k))"), key)
                await session.commit()

    @activity.defn(name="place_protection")
    async def place_protection(self, req: ProtectionRequest) -> ProtectionSnapshot:
        with translated():
            async with self._one_at_a_time(req.position_id):
                if req.order_id is not None:
                    return await self._modify(req)
                if req.earlier:
                    kept = await self._settle_earlier(req)
                    if kept is not None:
                        return kept
                claimed = time.monotonic()  # no later than the claim's stamp
                claim = await self._records.claim_order(_row_request(req))
                if not claim.created and claim.exchange_order_id is not None:
                    # An earlier attempt of this placement placed the TP/SL and recorded it,
                    # and its answer never reached the trade (its worker died after the save;
                    # Temporal gave up on it while it waited for its turn). That is this
                    # placement's outcome: the look below leaves out what a row records, so
                    # it would send a second one. Whether it is still pending is the trade's
                    # check to find out, as for any TP/SL it placed.
                    log.info("TP/SL %s was placed and recorded by an earlier attempt (%s): "
                             "not sent again", req.client_id, claim.exchange_order_id)
                    return ProtectionSnapshot(
                        client_id=req.client_id, order_id=claim.exchange_order_id,
                        level=req.level, qty=req.qty, tp=req.tp, sl=req.sl, adopted=True)
                # Moved to now before a late send. An earlier attempt's claim is of an age this
                # one does not know: its send moves it in any case.
                stamp = (ClaimStamp(claim.stamp, claimed if claim.created else -math.inf)
                         if claim.status is OrderStatus.SENDING and claim.stamp is not None
                         and claim.exchange_order_id is None else None)
                # Look before every send: an earlier attempt, or an earlier placement of this
                # trade whose answer never came, may have created it. A re-send looks as long
                # as a lost answer does, as the lists may show a new TP/SL late.
                resend = not claim.created or activity.info().attempt > 1
                adopted = await self._adopt(req, tries=self._adopt_tries if resend else 1)
                if adopted is not None:
                    return adopted
                try:
                    order_id = await self._send(req, stamp)
                except OutcomeUnknown:
                    adopted = await self._adopt(req, tries=self._adopt_tries)
                    if adopted is None:
                        raise  # retryable: the next attempt lists and adopts before re-sending
                    return adopted
                except PositionNotFound as exc:
                    # Found by the fault runs (seed 5113): the position id came from a read
                    # that still listed a position closed just before this trade's entry
                    # filled. Not a refusal of the TP/SL: flattening on it would close a
                    # position for nothing. The trade reads its position again.
                    await self._save(req, None, OrderStatus.REJECTED, error=str(exc))
                    raise refuse(Failure.POSITION_NOT_FOUND,
                                 f"the exchange has no open position {req.position_id}: {exc}; "
                                 "the TP/SL is placed on the position the next check reads") from exc
                except Rejected as exc:
                    await self._save(req, None, OrderStatus.REJECTED, error=str(exc))
                    raise protection_refused(exc) from exc
                return await self._save(req, order_id, OrderStatus.NEW)

    async def _send(self, req: ProtectionRequest, stamp: ClaimStamp | None) -> str:
        async def before_send() -> None:
            """Its turn in the request budget has come, maybe long after the claim: the claim's
            window must count from this send (docs/design.md#late-sends), or the trade's next
            placement could settle it as never placed and send a second TP/SL meanwhile."""
            if stamp is None:
                return
            if not await still_ours(self._records, req.client_id, stamp, self._restamp_after_s):
                raise try_again(
                    Failure.NOT_FOUND_YET,
                    f"TP/SL {req.client_id}: its claim was settled or taken over while this "
                    "placement waited for the exchange's request budget; not sending it")

        if req.level is ProtectionLevel.POSITION:
            return await self._client.place_position_tpsl(
                symbol=req.symbol, position_id=req.position_id,
                tp_price=req.tp, tp_stop_type=req.stop_type if req.tp else None,
                sl_price=req.sl, sl_stop_type=req.stop_type if req.sl else None,
                before_send=before_send,
            )
        return await self._client.place_tpsl_order(
            symbol=req.symbol, position_id=req.position_id,
            tp_price=req.tp, tp_stop_type=req.stop_type if req.tp else None,
            tp_order_type=OrderType.MARKET if req.tp else None, tp_qty=req.qty if req.tp else None,
            sl_price=req.sl, sl_stop_type=req.stop_type if req.sl else None,
            sl_order_type=OrderType.MARKET if req.sl else None, sl_qty=req.qty if req.sl else None,
            before_send=before_send,
        )

    async def _modify(self, req: ProtectionRequest) -> ProtectionSnapshot:
        try:
            await self._send_modify(req)
        except (Rejected, NotFoundYet) as exc:
            raise protection_refused(exc) from exc  # type: ignore[arg-type]
        assert req.order_id is not None
        return await self._save(req, req.order_id, OrderStatus.NEW)

    async def _send_modify(self, req: ProtectionRequest) -> None:
        assert req.order_id is not None
        if req.level is ProtectionLevel.POSITION:
            await self._client.modify_position_tpsl(
                symbol=req.symbol, position_id=req.position_id,
                tp_price=req.tp, tp_stop_type=req.stop_type if req.tp else None,
                sl_price=req.sl, sl_stop_type=req.stop_type if req.sl else None,
            )
            return
        await self._client.modify_tpsl_order(
            order_id=req.order_id,
            tp_price=req.tp, tp_stop_type=req.stop_type if req.tp else None,
            tp_order_type=OrderType.MARKET if req.tp else None,
            tp_qty=req.qty if req.tp else None,
            sl_price=req.sl, sl_stop_type=req.stop_type if req.sl else None,
            sl_order_type=OrderType.MARKET if req.sl else None,
            sl_qty=req.qty if req.sl else None,
        )

    # --- the trade's unsettled claims (placements whose outcome stayed unknown) -----------

    async def _settle_earlier(self, req: ProtectionRequest) -> ProtectionSnapshot | None:
        """Settle every claim in `req.earlier`: the first TP/SL found that can carry `req`
        (same position and level) is adopted and moved to `req` (returned); any other is
        cancelled. Raises, retryably, while a claim may still be created unseen."""
        kept: ProtectionSnapshot | None = None
        for claim, order in await self._claimed_orders(req.symbol, req.earlier):
            if kept is None and claim.position_id == req.position_id and claim.level is req.level:
                kept = await self._take_over(req, claim, order)
                if kept is not None:
                    continue
            await self._cancel_claimed(req.trade_id, req.symbol, req.position_side, claim, order)
        return kept

    async def _claimed_orders(
        self, symbol: str, claims: list[ProtectionClaim]
    ) -> list[tuple[ProtectionClaim, TpslOrder]]:
        """The pending TP/SL of each claim that has one. A claim's TP/SL is the one its row
        records (an earlier attempt of this settling found it), else a pending TP/SL on its
        position that matches what it asked for and no open trade's row records: BitUnix's
        TP/SLs carry no client id. Each TP/SL answers one claim, so a twin of another trade's
        (the same prices and size, equally unrecorded) is never taken twice. A claim with no
        TP/SL is settled here: never claimed, already settled, or never placed."""
        recorded = await self._records.recorded_exchange_ids(symbol, Leg.PROTECTION)
        pending = await self._client.all_pending_tpsl_orders(symbol)
        found: list[tuple[ProtectionClaim, TpslOrder]] = []
        for claim in claims:
            row = await self._records.order_row(claim.client_id)
            if row is None or row.status not in (OrderStatus.SENDING.value, OrderStatus.NEW.value):
                continue  # nothing was sent under it, or it is settled already
            if row.exchange_order_id is not None:
                order = next((o for o in pending if o.id == row.exchange_order_id), None)
            else:
                order = next((o for o in pending if o.id not in recorded
                              and o.position_id == claim.position_id and _matches(o, claim)),
                             None)
            if order is not None:
                recorded.add(order.id)
                found.append((claim, order))
            elif row.exchange_order_id is None:
                await self._not_placed(claim)
        return found

    async def _not_placed(self, claim: ProtectionClaim) -> None:
        """A claim whose TP/SL no list shows: settled as never placed once nothing was sent
        under it for the visibility window; until then a new TP/SL may still appear, and
        nothing is placed beside it."""
        error = (f"not placed: no pending TP/SL matched it {self._window.total_seconds():g} s "
                 "after its send")
        if await self._records.reject_unplaced(claim.client_id, self._window, error):
            log.info("TP/SL claim %s: nothing at the exchange; settled as not placed",
                     claim.client_id)
            return
        row = await self._records.order_row(claim.client_id)
        if row is not None and row.status == OrderStatus.SENDING.value:
            raise try_again(
                Failure.NOT_FOUND_YET,
                f"an earlier TP/SL placement of this trade ({claim.client_id}) was sent moments "
                "ago and is not listed yet; not placing another beside it",
            )

    async def _take_over(self, req: ProtectionRequest, claim: ProtectionClaim,
                         order: TpslOrder) -> ProtectionSnapshot | None:
        """The claim's TP/SL carries `req` from now on: recorded under the claim's row first
        (a retry finds it by id), then moved to what `req` wants. None: the exchange refused
        the move (the caller cancels it, and a new one is placed)."""
        log.info("TP/SL %s of claim %s found at the exchange: adopted for %s", order.id,
                 claim.client_id, req.client_id)
        found = req.model_copy(update={"client_id": claim.client_id, "order_id": order.id,
                                       "qty": claim.qty, "tp": claim.tp, "sl": claim.sl})
        await self._save(found, order.id, OrderStatus.NEW, adopted=True)
        wanted = req.model_copy(update={"client_id": claim.client_id, "order_id": order.id})
        if not _matches(order, wanted):
            try:
                await self._send_modify(wanted)
            except (Rejected, NotFoundYet) as exc:
                log.warning("TP/SL %s could not be moved (%s): cancelled instead", order.id, exc)
                return None
        return await self._save(wanted, order.id, OrderStatus.NEW, adopted=True)

    async def _cancel_claimed(self, trade_id: int, symbol: str, side: PositionSide,
                              claim: ProtectionClaim, order: TpslOrder) -> None:
        log.info("TP/SL %s of claim %s found at the exchange: cancelled", order.id,
                 claim.client_id)
        await self._cancel_tpsl(symbol, order.id)
        await self._records.save_order(trade_id, symbol, OrderSnapshot(
            client_id=claim.client_id, order_id=order.id, leg=Leg.PROTECTION,
            fill_side=side.exit_side, order_type=OrderType.MARKET, qty=claim.qty, price=None,
            status=OrderStatus.CANCELED, adopted=True,
            error="a placement whose answer was lost: its TP/SL was cancelled when settled",
        ), reduce_only=True)

    @activity.defn(name="settle_protection_claims")
    async def settle_protection_claims(self, req: ClaimsRequest) -> Done:
        """Cancel the TP/SL of each unsettled claim (the trade is about to close its
        quantity, or ends): none may stay live after it, able to close another trade's share."""
        with translated():
            for position_id in dict.fromkeys(c.position_id for c in req.claims):
                async with self._one_at_a_time(position_id):
                    claims = [c for c in req.claims if c.position_id == position_id]
                    for claim, order in await self._claimed_orders(req.symbol, claims):
                        await self._cancel_claimed(req.trade_id, req.symbol, req.position_side,
                                                   claim, order)
            return Done()

    async def _adopt(self, req: ProtectionRequest, *, tries: int) -> ProtectionSnapshot | None:
        """A pending TP/SL on the position that matches `req` and no row records yet."""
        for attempt in range(tries):
            recorded = await self._records.recorded_exchange_ids(req.symbol, Leg.PROTECTION)
            pending = await self._client.all_pending_tpsl_orders(req.symbol, req.position_id)
            for order in pending:
                if order.id not in recorded and _matches(order, req):
                    log.info("TP/SL %s found at the exchange: adopted, not re-sent", order.id)
                    return await self._save(req, order.id, OrderStatus.NEW, adopted=True)
            if attempt + 1 < tries:
                await asyncio.sleep(self._adopt_pause_s)
        return None

    async def _save(
        self, req: ProtectionRequest, order_id: str | None, status: OrderStatus, *,
        adopted: bool = False, error: str | None = None,
    ) -> ProtectionSnapshot:
        row = OrderSnapshot(
            client_id=req.client_id, order_id=order_id, leg=Leg.PROTECTION,
            fill_side=req.position_side.exit_side, order_type=OrderType.MARKET, qty=req.qty,
            price=None, status=status, adopted=adopted, error=error,
        )
        await self._records.save_order(req.trade_id, req.symbol, row, reduce_only=True)
        return ProtectionSnapshot(
            client_id=req.client_id, order_id=order_id or "", level=req.level, qty=req.qty,
            tp=req.tp, sl=req.sl, adopted=adopted,
        )

    @activity.defn(name="cancel_protection")
    async def cancel_protection(self, ref: ProtectionRef) -> ProtectionCancelled:
        """Cancel a TP/SL order; one that is already gone (fired, cancelled with its position)
        counts as cancelled, and the answer says it was gone (its row is left for the trade's
        reconciliation, which asks its history what it did)."""
        with translated():
            was_pending = await self._cancel_tpsl(ref.symbol, ref.order_id)
            row = await self._records.order_row(ref.client_id)
            if was_pending and row is not None and row.status == OrderStatus.NEW.value:
                await self._records.set_order_status(ref.client_id, OrderStatus.CANCELED)
            return ProtectionCancelled(was_pending=was_pending)


    async def _cancel_tpsl(self, symbol: str, order_id: str) -> bool:
        """Cancel a TP/SL; one that is no longer pending (fired, cancelled) counts as done.
        True: it was pending and is cancelled; False: it was gone already."""
        try:
            await self._client.cancel_tpsl_order(symbol, order_id)
        except (Rejected, NotFoundYet) as exc:
            # Every page: one beyond the first is as live as any (review finding 7).
            pending = await self._client.all_pending_tpsl_orders(symbol)
            if any(o.id == order_id for o in pending):
                raise try_again(
                    Failure.CANCEL_NOT_CONFIRMED,
                    f"TP/SL {order_id} is still pending after a refused cancel: {exc}",
                ) from exc
            return False
        return True


def _row_request(req: ProtectionRequest) -> OrderRequest:
    exit_side = req.position_side.exit_side
    return OrderRequest(
        trade_id=req.trade_id, client_id=req.client_id, leg=Leg.PROTECTION, symbol=req.symbol,
        side=exit_side, fill_side=exit_side, reduce_only=True, order_type=OrderType.MARKET,
        qty=req.qty,
    )


def _matches(order: TpslOrder, req: ProtectionRequest | ProtectionClaim) -> bool:
    """Whether the TP/SL carries what `req` asks for (its prices, and its size unless it is
    position-level)."""
    if order.tp_price != req.tp or order.sl_price != req.sl:
        return False
    if req.level is ProtectionLevel.POSITION:
        return order.tp_qty is None and order.sl_qty is None
    return (req.tp is None or order.tp_qty == req.qty) and (req.sl is None or order.sl_qty == req.qty)
