"""One check of a trade at the exchange: re-read its orders, position and TP/SL
(`refresh_trade`), then reconcile. Quantity that left the position without an order of ours
(our TP/SL fired, a liquidation, a manual close) is recorded as closed at the exchange's closing
fills, and the TP/SL is kept sized to what the trade still owns.

A TP/SL gone from the pending list is asked after (activities/tracking.py): fired (its history
says FILLED: recorded, at its trigger price until its close's fills are listed, which then
replace that estimate), ended without firing (placed again), or unknown (in neither list, and
the position does not rule out that it fired). An unknown TP/SL stays the trade's TP/SL: none
is placed beside it, as on a shared position a new one would sit on the other trades'
quantity. It is looked at again every TPSL_RECHECK_S; past TPSL_UNKNOWN_BOUND_S the position
decides (issue 19, gap A)."""

from __future__ import annotations

from datetime import timedelta
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
# A trade that filled but never saw its position records its quantity as closed outside it
# (new commands, which a history recorded before them replays without).
UNPOSITIONED = "reconcile-unpositioned-fill"
LEFT_WITHOUT_US = "part of the trade's quantity left the position without an order of ours"
# A TP/SL in neither of the exchange's lists is looked at again this often (seconds) ...
TPSL_RECHECK_S = 2
# ... and for this long: a history that lags, or another trade's close not recorded yet, has
# shown by then. Past it the position decides (fired for what it lacks, else placed again):
# the trade is not left without a TP/SL on a guess for longer.
TPSL_UNKNOWN_BOUND_S = 20
# Estimates refined by the trade: calls a history recorded before them replays without.
REFINES_ESTIMATES = "tpsl-estimates-refined"
UNKNOWN_PHASE = "TP/SL in neither of the exchange's lists yet"
# A trade whose position id came from a read that still listed a position closed just before
# its entry filled (found by the fault runs, seed 5113) follows the position its quantity is
# in: a new check, which a history recorded before it replays without.
FOLLOWS_ITS_POSITION = "reconcile-follows-its-position"
# A shortfall beside resting take-profit levels is looked at for closing fills (new commands,
# for trades with a ladder only: no earlier history has a level).
LADDER_SHORTFALL = "reconcile-shortfall-beside-levels"


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
    if led.estimates and workflow.patched(REFINES_ESTIMATES):
        await refine_estimates(run)
    if led.open_qty > 0 and led.position_id is None and pos is None and not led.working() \
            and workflow.patched(UNPOSITIONED):
        # Filled, and never saw its position: it was gone before the trade looked (another
        # trade's position-level TP/SL closed it with the rest, say, while this entry's answer
        # was lost). Its quantity is not at the exchange: closed outside the trade, confirmed
        # as any shortfall is (closing fills, or the bound), never tracked for ever.
        if led.last_seen_ms is None:
            led.last_seen_ms = int(run.inp.received_at.timestamp() * 1000)  # float-ok: ms
        if await shortfall_settled(run, out, led.open_qty):
            led.shortfall_since_ms = None
        return out
    if led.open_qty == 0 or led.position_id is None:
        return out
    prot = led.protection
    if prot is None or out.protection_pending:
        _known(run)
    gone = pos is None or pos.position_id != led.position_id
    if gone and pos is not None and holds_what_is_owned(led.open_qty, pos.qty, out.owned_qty) \
            and workflow.patched(FOLLOWS_ITS_POSITION):
        # Another position of our symbol and side, holding at least what every open trade
        # on it owns: our quantity is there. The id we had came from a read that lagged (a
        # position closed just before our entry filled was still listed), so nothing of ours
        # closed: follow this one. (A real close leaves a new position short of what we own.)
        workflow.logger.warning("following position %s: position %s, read before, is not "
                                "where the trade's quantity is", pos.position_id, led.position_id)
        led.position_id = pos.position_id
        gone = False
    if (gone or pos.qty < led.open_qty) and unsettled(run, out) and workflow.patched(READS_AGAIN):
        # Less at the exchange than owned while a close of ours is working, or an entry just
        # filled: the position may already show a fill the order sync before it did not (our
        # own exit), or not yet one it did (our entry). Never infer a close from that
        # snapshot: read again a little later, and while a close still works, leave it to a
        # later check (a real close cancels our reduce-only orders; then it is inferred).
        if not second_read:
            await workflow.sleep(SECOND_READ_S)
            return await reconcile(run, await run.refresh(), second_read=True)
        if closing_now(run) and (gone or not levels_only(run)):
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
    unknown = False
    if prot is not None and not out.protection_pending:
        # Gone from the pending list: did it fire (its own history says), and for how much?
        qty = led.open_qty if prot.level is ProtectionLevel.POSITION else min(prot.qty, led.open_qty)
        decide = unknown_too_long(run)
        res = await external(run, Leg.TRIGGERED, qty, require_fills=True,
                             protection_client_id=prot.client_id,
                             protection_order_id=prot.order_id or None,
                             tp=prot.tp, sl=prot.sl, decide=decide)
        unknown = res.unknown
        if unknown:
            _still_unknown(run, prot.order_id)
        elif not res.still_pending:
            led.protection = None
            _known(run)
            if res.snapshot is None:
                run.warn("the TP/SL disappeared without closing anything; placing it again")
            elif decide:
                run.warn(f"the TP/SL {prot.order_id} was in neither of the exchange's lists for "
                         f"{TPSL_UNKNOWN_BOUND_S} s while the position lacked quantity the open "
                         f"trades own: taken as fired for {res.snapshot.filled_qty} at its "
                         "trigger price (its close's fills replace that if they are listed)")
    # (While our TP/SL is unknown, what the position lacks is first its to explain, and our
    # quantity may have left already: closing fills are still searched from before it went
    # missing.)
    if pos.qty < led.open_qty and not unknown:
        if not workflow.patched(CONFIRMS_SHORTFALL):
            await external(run, Leg.EXTERNAL, led.open_qty - pos.qty)
            run.warn(LEFT_WITHOUT_US)
        elif not await shortfall_settled(run, out, led.open_qty - pos.qty):
            # Unexplained yet: the search for closing fills keeps starting from the last
            # read that showed all of our quantity.
            return out
    if not unknown:
        led.shortfall_since_ms = None
        led.last_seen_ms = out.now_ms
    return out


def holds_what_is_owned(own: Decimal, held: Decimal, owned_by_all: Decimal | None) -> bool:
    """Whether a position holding `held` holds what the open trades own on it (`owned_by_all`,
    this trade's `own` among it; the trade's own when the total is not known)."""
    return held >= max(own, owned_by_all if owned_by_all is not None else own)


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
    if levels_only(run):
        # Only take-profit levels work: what the position lacks may be their
        # own fill that the order reads do not show yet, which no bound can tell apart. Only
        # closing fills of no order of ours (above) are recorded while they work.
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


def levels_only(run: TradeRun) -> bool:
    """The trade's working closes are take-profit levels only, resting (docs/design.md#exits):
    a shortfall that a second read still shows beside them is looked at for closing fills of
    no order of ours (a partial close by hand, recorded at once), never taken on the bound,
    and never when the position is gone (the exchange cancels the levels with it: that check
    comes once they are ended). New commands, for a trade with a ladder only."""
    working = [o for o in run.ledger.working() if o.leg.closes]
    return bool(working) and all(o.leg is Leg.TAKE_PROFIT for o in working) \
        and workflow.patched(LADDER_SHORTFALL)


def filled_now(out: RefreshResult) -> bool:
    """This check synced an opening order of the trade that has fills (its quantity may not
    show in a position read taken moments later)."""
    return any(not o.leg.closes and o.filled_qty > 0 for o in out.orders)


async def external(run: TradeRun, leg: Leg, qty: Decimal, *, require_fills: bool = False,
                   protection_client_id: str | None = None,
                   protection_order_id: str | None = None,
                   tp: Decimal | None = None, sl: Decimal | None = None,
                   decide: bool = False) -> ExternalCloseResult:
    """Record `qty` of ours as closed by the exchange (nothing when `require_fills` and no
    closing fill is found, or when the TP/SL `protection_order_id` did not fire). `tp`/`sl`:
    that TP/SL's own prices (default: the prices the trade wants)."""
    led = run.ledger
    assert run.venue.mode is not None
    req = ExternalCloseRequest(
        trade_id=run.inp.trade_id, client_id=led.next_client_id(leg), leg=leg,
        symbol=run.inp.symbol, side=run.inp.side, position_mode=run.venue.mode,
        position_id=led.position_id, qty=qty, since_ms=led.last_seen_ms or 0,
        require_fills=require_fills, fallback_price=run.venue.mark,
        protection_client_id=protection_client_id, protection_order_id=protection_order_id,
        tp=tp if protection_order_id else run.protection.tp,
        sl=sl if protection_order_id else run.protection.sl,
        decide=decide,
    )
    res = await run.external_close(req)
    if res.snapshot is not None:
        run.apply(res.snapshot)
    if res.estimated and res.snapshot is not None:
        # Asked again, as a refinement, until the close's fills replace the estimate.
        led.estimates[req.client_id] = req.model_copy(update={"refine": True, "decide": False})
    return res


def unknown_too_long(run: TradeRun) -> bool:
    """The trade's TP/SL has been unknown for TPSL_UNKNOWN_BOUND_S: time to decide."""
    since = run.memory.tpsl_unknown_since
    return since is not None and workflow.now() - since >= timedelta(seconds=TPSL_UNKNOWN_BOUND_S)


def _still_unknown(run: TradeRun, order_id: str) -> None:
    if run.memory.tpsl_unknown_since is None:
        run.memory.tpsl_unknown_since = workflow.now()
        workflow.logger.warning(
            "the TP/SL %s is in neither of the exchange's lists and the position does not rule "
            "out that it fired: kept, no other placed, looked at again every %s s", order_id,
            TPSL_RECHECK_S)
        run.set(phase=f"{UNKNOWN_PHASE} ({order_id}): looking again every {TPSL_RECHECK_S} s")


def _known(run: TradeRun) -> None:
    """The TP/SL's fate is known (or there is none to ask after)."""
    if run.memory.tpsl_unknown_since is None:
        return
    run.memory.tpsl_unknown_since = None
    if run.state.phase.startswith(UNKNOWN_PHASE):
        run.set(phase="tracking")


async def refine_estimates(run: TradeRun) -> None:
    """Ask after every close recorded at its TP/SL's trigger price: its fills, once listed,
    replace it in the same row (counted once); a history that says the TP/SL was cancelled
    withdraws it (the quantity is the trade's again, and is protected again)."""
    led = run.ledger
    for client_id, req in list(led.estimates.items()):
        res = await run.external_close(req)
        if res.snapshot is None:
            continue  # nothing listed yet: the estimate stands
        run.apply(res.snapshot)
        del led.estimates[client_id]
        if res.snapshot.filled_qty == 0:
            run.warn(f"the TP/SL {req.protection_order_id} was taken as fired, but its history "
                     "says it was cancelled: its quantity is the trade's again")


async def final_estimates(run: TradeRun, rounds: int) -> None:
    """Before a trade that owns nothing ends: give the estimates' fills `rounds` more looks,
    TPSL_RECHECK_S apart; an estimate still without fills stays, said in a warning."""
    led = run.ledger
    if not led.estimates or not workflow.patched(REFINES_ESTIMATES):
        return
    for left in range(rounds, 0, -1):
        await refine_estimates(run)
        if not led.estimates or led.open_qty > 0 or left == 1:
            break
        await workflow.sleep(TPSL_RECHECK_S)
    if led.open_qty > 0:
        return  # an estimate was withdrawn: the trade tracks on, and keeps asking
    for req in led.estimates.values():
        run.warn(f"the close by TP/SL {req.protection_order_id} is recorded at its trigger "
                 "price: the exchange listed no fill of it")
    led.estimates.clear()
