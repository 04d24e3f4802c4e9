"""One check of a trade at the exchange: re-read its orders, position and TP/SL
(`refresh_trade`), then reconcile. Quantity that left the position without an order of ours
(our TP/SL fired, a liquidation, a manual close) is recorded as closed at the exchange's closing
fills, and the TP/SL is kept sized to what the trade still owns."""

from __future__ import annotations

from decimal import Decimal

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.contract import ProtectionLevel
    from activities.contract_tracking import (
        ExternalCloseRequest,
        ExternalCloseResult,
        RefreshResult,
    )
    from trading.types import Leg
    from workflows import protection
    from workflows.run import TradeRun


# A position read that misses fills the same check saw is read again this much later before
# anything is inferred from it (BitUnix's positions may lag its orders).
SECOND_READ_S = 2
# The second read is new: a history recorded before it replays without it.
READS_AGAIN = "reconcile-reads-again"
# A shortfall (the position shows less than the trade owns) that no closing fill explains is
# recorded as a close only once reads have shown it this long with no entry of the trade
# working: BitUnix's positions may lag its orders by more than SECOND_READ_S, and a close
# recorded from a lagging read is irreversible (the trade owns less than it holds: quantity
# no trade protects). Real closes show closing fills and are recorded at once.
SHORTFALL_CONFIRM_S = 15
# Confirming a shortfall before recording it is new: earlier histories replay without it.
CONFIRMS_SHORTFALL = "reconcile-confirms-shortfall"
LEFT_WITHOUT_US = "part of the trade's quantity left the position without an order of ours"


async def follow(run: TradeRun, *, max_age_ms: int = 0) -> RefreshResult:
    """One check: refresh, reconcile, keep the TP/SL in line. `max_age_ms` > 0 (a check on
    the trade's own timer): exchange reads that much older, shared with other trades, do."""
    out = await reconcile(run, await run.refresh(max_age_ms))
    await protection.ensure(run, position_qty(run, out))
    return out


def position_qty(run: TradeRun, out: RefreshResult) -> Decimal | None:
    """The position's quantity the TP/SL is fitted to: the read's, unless it shows less than
    the trade owns with no close recorded for it (a read that lags our own fills). Then the
    position holds at least what the open trades own by their orders: taken from the read
    alone, a trade beside another would think it owns the whole position and place a
    position-level TP/SL the exchange refuses (and flatten)."""
    pos = out.position
    if pos is None:
        return None
    qty = pos.qty
    if qty < run.ledger.open_qty and out.owned_qty is not None and workflow.patched(
        CONFIRMS_SHORTFALL
    ):
        qty = max(qty, out.owned_qty)
        run.venue.position_qty = qty  # what an update of the TP/SL fits it to as well
    return qty


async def reconcile(run: TradeRun, out: RefreshResult, *, second_read: bool = False) -> RefreshResult:
    """Compare the position with what the trade owns; returns the refresh it settled on (a
    second one when the first could not be trusted)."""
    led = run.ledger
    pos = out.position
    if pos is not None and led.position_id is None and led.filled_qty > 0:
        led.position_id = pos.position_id
    if out.unowned_qty is not None:
        run.warn("the exchange position holds more than the open trades own: quantity no "
                 "trade tracks or protects (see the worker log)")
    if led.open_qty == 0 or led.position_id is None:
        return out
    prot = led.protection
    gone = pos is None or pos.position_id != led.position_id
    if (gone or pos.qty < led.open_qty) and unsettled(run, out) and workflow.patched(READS_AGAIN):
        # Less at the exchange than owned while a close of ours is working, or an entry just
        # filled: the position may already show a fill the order sync before it did not (our
        # own exit), or not yet one it did (our entry). Never infer a close from that
        # snapshot: read again a little later, and while a close still works, leave it to a
        # later check (a real close cancels our reduce-only orders; then it is inferred).
        if not second_read:
            await workflow.sleep(SECOND_READ_S)
            return await reconcile(run, await run.refresh(), second_read=True)
        if closing_now(run):
            return out
    if gone:
        # The position we were in is gone: its end is the end of every trade on it.
        res = await external(run, Leg.TRIGGERED if prot else Leg.EXTERNAL, led.open_qty,
                             protection_client_id=prot.client_id if prot else None)
        led.protection = None
        if res.snapshot is None or res.snapshot.leg is not Leg.TRIGGERED:
            run.warn("the exchange position was closed outside this trade (liquidation or a "
                     "manual close)")
        return out
    if prot is not None and not out.protection_pending:
        # Gone from the pending list: did it fire (its own history says), and for how much?
        qty = led.open_qty if prot.level is ProtectionLevel.POSITION else min(prot.qty, led.open_qty)
        res = await external(run, Leg.TRIGGERED, qty, require_fills=True,
                             protection_client_id=prot.client_id,
                             protection_order_id=prot.order_id or None)
        if not res.still_pending:
            led.protection = None
            if res.snapshot is None:
                run.warn("the TP/SL disappeared without closing anything; placing it again")
    if pos.qty < led.open_qty:
        if not workflow.patched(CONFIRMS_SHORTFALL):
            await external(run, Leg.EXTERNAL, led.open_qty - pos.qty)
            run.warn(LEFT_WITHOUT_US)
        elif not await shortfall_settled(run, out, led.open_qty - pos.qty):
            # Unexplained yet: the search for closing fills keeps starting from the last
            # read that showed all of our quantity.
            return out
    led.shortfall_since_ms = None
    led.last_seen_ms = out.now_ms
    return out


async def shortfall_settled(run: TradeRun, out: RefreshResult, short: Decimal) -> bool:
    """The position shows `short` less than the trade owns and no close of ours works. It is
    recorded as closed outside the trade only once confirmed, since a close is never taken
    back: by closing fills that no trade recorded (at most their quantity, at once), or by
    reads showing it for SHORTFALL_CONFIRM_S with no entry of the trade working or just
    filled (priced at the last mark, as before). Until then the trade keeps owning, tracking
    and protecting it: a read that lags our entry's fills looks exactly like this, and one
    that catches up ends the shortfall with nothing recorded. True: nothing is unexplained."""
    led = run.ledger
    res = await external(run, Leg.EXTERNAL, short, require_fills=True)
    if res.snapshot is not None:
        run.warn(LEFT_WITHOUT_US)
        short -= res.snapshot.filled_qty
        if short <= 0:
            return True
    if entry_unsettled(run, out):
        # Our own entry's fills may be all that the read misses: the bound starts once
        # they are all in.
        led.shortfall_since_ms = None
        return False
    if led.shortfall_since_ms is None:
        led.shortfall_since_ms = out.now_ms
    if out.now_ms - led.shortfall_since_ms < SHORTFALL_CONFIRM_S * 1000:
        workflow.logger.info("the position shows %s less than the trade owns, and no closing "
                             "fill explains it: not a close yet", short)
        return False
    await external(run, Leg.EXTERNAL, short)
    run.warn(LEFT_WITHOUT_US)
    return True


def shortfall_pending(run: TradeRun) -> bool:
    """A shortfall is waiting for its bound: the trade should look again soon."""
    return run.ledger.shortfall_since_ms is not None


def unsettled(run: TradeRun, out: RefreshResult) -> bool:
    """A close of the trade is working, or this check saw an entry fill: a position read next
    to them may be ahead of or behind the orders."""
    return closing_now(run) or filled_now(out)


def entry_unsettled(run: TradeRun, out: RefreshResult) -> bool:
    """An entry order of the trade works, or this check saw one fill."""
    return bool(run.ledger.working(Leg.ENTRY)) or filled_now(out)


def closing_now(run: TradeRun) -> bool:
    return any(o.leg.closes for o in run.ledger.working())


def filled_now(out: RefreshResult) -> bool:
    """This check synced an opening order of the trade that has fills (its quantity may not
    show in a position read taken moments later)."""
    return any(not o.leg.closes and o.filled_qty > 0 for o in out.orders)


async def external(run: TradeRun, leg: Leg, qty: Decimal, *, require_fills: bool = False,
                   protection_client_id: str | None = None,
                   protection_order_id: str | None = None) -> ExternalCloseResult:
    """Record `qty` of ours as closed by the exchange (nothing when `require_fills` and no
    closing fill is found, or when the TP/SL `protection_order_id` did not fire)."""
    led = run.ledger
    assert led.position_id is not None and run.venue.mode is not None
    req = ExternalCloseRequest(
        trade_id=run.inp.trade_id, client_id=led.next_client_id(leg), leg=leg,
        symbol=run.inp.symbol, side=run.inp.side, position_mode=run.venue.mode,
        position_id=led.position_id, qty=qty, since_ms=led.last_seen_ms or 0,
        require_fills=require_fills, fallback_price=run.venue.mark,
        protection_client_id=protection_client_id, protection_order_id=protection_order_id,
        tp=run.protection.tp, sl=run.protection.sl,
    )
    res = await run.external_close(req)
    if res.snapshot is not None:
        run.apply(res.snapshot)
    return res
