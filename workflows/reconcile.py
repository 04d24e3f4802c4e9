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


async def follow(run: TradeRun, *, max_age_ms: int = 0) -> RefreshResult:
    """One check: refresh, reconcile, keep the TP/SL in line. `max_age_ms` > 0 (a check on
    the trade's own timer): exchange reads that much older, shared with other trades, do."""
    out = await reconcile(run, await run.refresh(max_age_ms))
    await protection.ensure(run, out.position.qty if out.position else None)
    return out


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
        await external(run, Leg.EXTERNAL, led.open_qty - pos.qty)
        run.warn("part of the trade's quantity left the position without an order of ours")
    led.last_seen_ms = out.now_ms
    return out


def unsettled(run: TradeRun, out: RefreshResult) -> bool:
    """A close of the trade is working, or this check saw an entry fill: a position read next
    to them may be ahead of or behind the orders."""
    return closing_now(run) or filled_now(out)


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
