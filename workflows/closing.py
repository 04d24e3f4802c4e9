"""Closing a trade's own quantity with reduce-only orders (docs/design.md#ownership and
docs/design.md#protection).

`close_trade` is one exit attempt: it closes the trade's open quantity, capped by what the
position still holds, with the strategy's exit order type: market, or a chase (a `limit` exit
is a chase that never re-prices) whose leftover goes to market.

The TP/SL during an exit: a position-level TP/SL (the trade owns the whole position) stays in
place while the exit is sent, since nothing it closes can belong to another trade. An
order-level TP/SL (other trades share the position) also stays while a chase or limit exit
rests, which can take long (a limit is re-placed only when the book moves): the chase pauses
whenever the TP/SL covers more than the trade still owns (part of the exit filled), and the same
TP/SL is resized to what is left; once the exit has filled it is cancelled at once. Left pending
beside a filled exit it would close the same quantity again, out of another trade's share; so
it is cancelled before a market close (which fills at once), and a TP/SL that fires while the
exit rests stops the chase, which never closes more than the trade still owns.

`close_part` is one attempt at a partial exit (docs/design.md#exits): a part of the trade's
quantity closed at market, the TP/SL resized down first, the trade TRACKING throughout.

An attempt that leaves quantity open (the exchange rejected the close, a domain error, an order
that filled nothing) cancels what it left working, places the TP/SL again for what is left and
hands the trade back to tracking (workflows/tracking.py), TRACKING with a warning, which tries
the exit again every `exit_retry_s`: a trade never ends while it owns quantity.
"""

from __future__ import annotations

from decimal import Decimal
from functools import partial

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.contract import OrderRequest, ProtectionLevel, ProtectionRequest
    from trading.chase import MAX_CHASES, STOPPED, ChasePlan
    from trading.errors import TradingError
    from trading.partial import part_to_close
    from trading.sizing import close_parts
    from trading.types import EntryType, Leg, OrderType, TradeStatus
    from workflows import exits, protection
    from workflows.chase import run_chase
    from workflows.fast_chase import SUB_SECOND
    from workflows.ledger import TradeLedger
    from workflows.messages import CloseRequest
    from workflows.policies import ACTIVITY_FAILURES, failure_message
    from workflows.reconcile import reconcile
    from workflows.run import TradeRun

# Trades that began an exit before exits were retried replay the earlier code
# (`_close_once`); every new exit records this marker and runs `close_trade`.
EXIT_RETRIES = "exit-retries-keep-the-trade"
# Exits that began before an order-level TP/SL stayed through a chase replay the earlier
# commands (the TP/SL cancelled before every round).
EXIT_KEEPS_TPSL = "exit-keeps-order-tpsl-while-chasing"
MAX_ROUNDS = 30  # rounds of one attempt that each closed something
EXIT_RETRY_MAX_S = 30  # a failing exit is tried again at least this often
EXIT_FAILED = "exit failed"  # the start of the warning a failing exit keeps up to date
RETRY_PAUSE_S = 2  # the earlier code's pause (replay only)
# A TP/SL found gone when an exit cancels it: its fate asked before the exit order (new
# commands, which a history recorded before them replays without).
ASKS_TPSL_FATE = "exit-asks-gone-tpsl-fate"
# An exit that finds no position while the trade counts quantity is a failed attempt, not a
# close (new commands, which a history recorded before them replays without).
WAITS_FOR_OWNED = "exit-waits-for-owned-quantity"
# A partial exit (docs/design.md#exits): new commands, which only a trade given one runs.
PARTIAL_CLOSE = "exits-partial-close"
# A market exit that filled everything the trade owns ends without a read to confirm it (new
# commands: a history recorded before them replays the read).
EXIT_DONE_WHEN_FILLED = "exit-done-when-filled"
PARTIAL_FAILED = "partial exit failed"  # the start of the warning a failing one keeps up to date


def exit_retry_s(run: TradeRun) -> int:
    """How long a failed exit waits before the next attempt: the trade's tracking interval,
    at most EXIT_RETRY_MAX_S."""
    return min(run.strategy.tracking_interval_s, EXIT_RETRY_MAX_S)


async def close_trade(run: TradeRun, reason: str, final: TradeStatus, leg: Leg) -> bool:
    """One exit attempt. True: the trade owns nothing any more (it may finish as `final`).
    False: quantity is left; the trade is TRACKING again with its TP/SL and a warning, and the
    exit stays pending for the caller to try again later."""
    if not workflow.patched(EXIT_RETRIES):
        if final is TradeStatus.CANCELLED:
            run.inbox.cancel = None  # as the earlier tracking did before closing
        await _close_once(run, reason, final, leg)
        return True
    run.memory.final_status = final
    run.set(TradeStatus.CLOSING, f"closing: {reason}")
    await run.record()
    await run.cancel_working(Leg.ENTRY)
    # No take-profit level rests beside the exit: it would close the quantity twice.
    await exits.cancel_ladder(run)
    exit_type = EntryType.MARKET if leg is Leg.FLATTEN else run.strategy.exit_entry_type
    failure = f"quantity still open after {MAX_ROUNDS} rounds"
    for _ in range(MAX_ROUNDS):
        out = await reconcile(run, await run.refresh())
        if run.ledger.open_qty == 0:
            return True
        if out.position is None:
            if not workflow.patched(WAITS_FOR_OWNED):
                return True
            # Nothing at the exchange to close, yet the trade counts quantity: what closed it
            # is not recorded yet (a shortfall being confirmed). Counted as a failed attempt,
            # so the next one waits its turn (returning "closed" here spun the tracking loop).
            failure = "the position is gone while the trade still counts quantity: waiting " \
                      "for what closed it to be recorded"
            break
        before = run.ledger.open_qty
        # The marker only where the commands differ: a market exit's stay as they were.
        watched = watched_chase(run, exit_type) and workflow.patched(EXIT_KEEPS_TPSL)
        if not await _clear_protection(run, out.position.qty, keep_order_level=watched):
            # The TP/SL was gone when cancelled: it may have fired since the read above. What
            # it closed is recorded before any exit order, or the exit would close it again,
            # out of another trade's share.
            if workflow.patched(ASKS_TPSL_FATE):
                out = await reconcile(run, await run.refresh())
                if run.ledger.open_qty == 0 or out.position is None:
                    return True
                if run.memory.tpsl_unknown_since is not None:
                    failure = "the TP/SL may have fired just now: the exit waits to know"
                    break
                before = run.ledger.open_qty
            else:
                run.ledger.protection = None
        try:
            if exit_type is not EntryType.MARKET:
                if watched:
                    await chase_keeping_protection(run, leg, exit_type)
                else:
                    await chase_close(run, leg, exit_type)
                exit_type = EntryType.MARKET  # whatever the chase left, at market
                continue
            await market_close(run, leg, out.position.qty)
        except ACTIVITY_FAILURES as err:
            failure = failure_message(err)
            break
        except TradingError as err:
            failure = err.message
            break
        if run.ledger.open_qty >= before:
            failure = "the closing order filled nothing"
            break
        if run.ledger.open_qty == 0 and not run.ledger.estimates \
                and workflow.patched(EXIT_DONE_WHEN_FILLED):
            # The close filled all the trade owns, by its own fills: a read to confirm it cost
            # each trade of a many-trade exit one more call (what is estimated is confirmed
            # after the exit, workflows/tracking.py `final_estimates`).
            return True
    await run.cancel_working(leg)  # no exit order stays working beside the TP/SL
    out = await reconcile(run, await run.refresh())
    if run.ledger.open_qty == 0 or (out.position is None and not workflow.patched(WAITS_FOR_OWNED)):
        return True
    await _exit_failed(run, reason, failure, out.position.qty if out.position else None)
    return False


def watched_chase(run: TradeRun, exit_type: EntryType) -> bool:
    """A chase or limit exit whose every round the workflow sees (a durable chase), so it can
    keep an order-level TP/SL sized to what the trade owns. A sub-second chase runs inside
    one activity, and a market close fills at once: their TP/SL goes first, as before."""
    return exit_type is not EntryType.MARKET and run.strategy.chase_interval_s >= SUB_SECOND


async def _clear_protection(run: TradeRun, position_qty: Decimal, *,
                            keep_order_level: bool = False) -> bool:
    """Before an exit order: keep a position-level TP/SL while the trade owns the whole
    position, and an order-level one when `keep_order_level` (a watched chase keeps it sized);
    cancel any other (an order-level TP/SL would close the quantity twice). False: the TP/SL
    was gone when cancelled (kept in the ledger for its fate to be asked)."""
    async with run.protection_lock:  # after any `set_protection` accepted before CLOSING
        p = run.ledger.protection
        if p is None:
            return True
        if p.level is ProtectionLevel.POSITION and position_qty <= run.ledger.open_qty:
            return True
        if p.level is ProtectionLevel.ORDER and keep_order_level:
            return True
        return await run.unprotect(keep_if_gone=True)


async def _exit_failed(run: TradeRun, reason: str, failure: str,
                       position_qty: Decimal | None) -> None:
    """The attempt left quantity open: protect what is left, say so, keep tracking."""
    every = exit_retry_s(run)
    run.set(TradeStatus.TRACKING, f"exit failing ({reason}): {failure}; next try in {every} s")
    if not run.protection.disabled:
        try:
            # Raising, not `refused()`: a refusal now must not disable or flatten for good,
            # the next attempt places it again.
            await protection.ensure(run, position_qty, raise_refusal=True)
        except (ApplicationError, TradingError) as err:
            run.warn(f"TP/SL not placed again after a failed exit ({err.message}); "
                     "tried again with the exit")
    kept = "with its TP/SL" if run.ledger.protection is not None else "WITHOUT a TP/SL"
    run.state.warnings = [w for w in run.state.warnings if not w.startswith(EXIT_FAILED)]
    run.warn(f"{EXIT_FAILED} ({failure}): the trade stays tracked {kept} and the exit is "
             f"tried again every {every} s")
    await run.record()


async def close_part(run: TradeRun, req: CloseRequest) -> bool:
    """One attempt at the partial exit `req`, the first of `run.inbox.partials`
    (docs/design.md#exits). It closes its part of the trade's own quantity at market and
    leaves the trade TRACKING, its TP/SL resized to what it still owns. True: done (closed,
    refused with a warning, or handed on as a whole exit when it comes to everything);
    False: quantity of the part is still open, the request stays first (now as the base
    quantity still to close) and is tried again after `exit_retry_s`."""
    workflow.patched(PARTIAL_CLOSE)  # new commands, run only by a trade given a partial exit
    assert run.rules is not None
    inbox, led = run.inbox, run.ledger
    run.set(TradeStatus.TRACKING, f"closing part: {req.reason}")
    # A lost TP/SL placement's TP/SL, live at its old size, would close more than the trade
    # keeps: settled first, as before a whole exit.
    await protection.settle_claims(run)
    out = await reconcile(run, await run.refresh())
    owned = led.open_qty
    if owned == 0:
        _part_done(run, req)
        return True
    if out.position is None:
        return await _part_failed(run, req, req, "the position is gone while the trade still "
                                  "counts quantity: waiting for what closed it to be recorded")
    try:
        part = part_to_close(run.rules, owned, qty=req.qty, pct=req.pct)
    except TradingError as err:
        run.warn(f"partial exit refused ({err.message})")
        _part_done(run, req)
        await run.record()
        return True
    if part is None:  # it comes to everything: the whole exit, with its retries
        inbox.partials.clear()
        if inbox.close is None:
            inbox.close = CloseRequest(reason=req.reason, signal_id=req.signal_id)
        return True
    # From now on the part is a base quantity: a retry closes what is left of it, not a
    # percent of a quantity this attempt already reduced.
    asked = req.model_copy(update={"qty": part, "pct": None})
    left_after = owned - part
    failure = ""
    # The take-profit levels rest reduce-only for what the trade owned: beside the part's
    # order they would hold more than the trade keeps (in one-way mode, another trade's
    # quantity). Cancelled first (a level that filled meanwhile counts toward the part), and
    # placed again for the rest by `protection.ensure` below.
    await exits.cancel_ladder(run)
    # The TP/SL covers the rest before the part's order goes (docs/design.md#exits).
    if not await _shrink_protection(run, out.position.qty, left_after):
        out = await reconcile(run, await run.refresh())  # it may have fired: what did it close?
        if run.memory.tpsl_unknown_since is not None:
            failure = "the TP/SL may have fired just now: the partial exit waits to know"
    if not failure and out.position is not None and led.open_qty > left_after:
        try:
            await market_close(run, Leg.EXIT, out.position.qty, led.open_qty - left_after)
        except ACTIVITY_FAILURES as err:
            failure = failure_message(err)
        except TradingError as err:
            failure = err.message
    out = await reconcile(run, await run.refresh())
    run.set(TradeStatus.TRACKING, "tracking")
    done = led.open_qty <= left_after
    try:
        await protection.ensure(run, out.position.qty if out.position else None,
                                raise_refusal=True)
    except (ApplicationError, TradingError) as err:
        if done:
            # The position may have changed since the read (another trade on it closed, so
            # this one's order-level TP/SL is now refused as large as the position): read
            # again; a refusal now is the strategy's to answer, as after any fill.
            out = await reconcile(run, await run.refresh())
            await protection.ensure(run, out.position.qty if out.position else None)
        else:
            # As after a failed whole exit: a refusal now (the symbol stopped, say) neither
            # disables the TP/SL for good nor flattens; the next attempt places it again.
            run.warn(f"TP/SL not placed again after a failed partial exit ({err.message}); "
                     "tried again with the partial exit")
    p = led.protection
    if p is not None and p.level is ProtectionLevel.POSITION and p.qty != led.open_qty:
        # A position-level TP/SL closes the whole position, all of it the trade's: it covers
        # what the trade keeps without a request; the view says so (docs/design.md#exits).
        led.protection = p.model_copy(update={"qty": led.open_qty})
        run.refresh_state()
    if done:
        _part_done(run, req)
        await run.record()
        return True
    rest = asked.model_copy(update={"qty": led.open_qty - left_after})
    return await _part_failed(run, req, rest, failure or "the closing order filled nothing")


async def _shrink_protection(run: TradeRun, position_qty: Decimal, left_after: Decimal) -> bool:
    """Before a partial exit's order. An order-level TP/SL is resized down to what the trade
    keeps (the same order, modified): left as it is, it would close the trade's whole old
    quantity beside the part, out of another trade's share; resized first, the rest stays
    protected throughout, and should it fire before the part's order, the two close no more
    than the trade owns. One the exchange will not resize is cancelled (placed again after the
    order). A position-level TP/SL stays: it closes the position, all of it the trade's.
    False: the TP/SL was gone when cancelled (it may have fired)."""
    async with run.protection_lock:
        led = run.ledger
        p = led.protection
        if p is None:
            return True
        if p.level is ProtectionLevel.POSITION and position_qty <= led.open_qty:
            return True
        if p.level is ProtectionLevel.ORDER and led.position_id is not None:
            try:
                led.protection = await run.protect(ProtectionRequest(
                    trade_id=run.inp.trade_id, client_id=p.client_id, symbol=run.inp.symbol,
                    position_side=run.inp.side, position_id=led.position_id, level=p.level,
                    qty=left_after, tp=p.tp, sl=p.sl, stop_type=run.strategy.stop_type,
                    order_id=p.order_id,
                ))
                run.refresh_state()
                return True
            except ACTIVITY_FAILURES as err:
                run.warn(f"TP/SL not resized before the partial exit ({failure_message(err)}): "
                         "cancelled, placed again after it")
        return await run.unprotect(keep_if_gone=True)


def _part_done(run: TradeRun, req: CloseRequest) -> None:
    partials = run.inbox.partials
    if partials and partials[0] is req:
        partials.pop(0)
    run.state.warnings = [w for w in run.state.warnings if not w.startswith(PARTIAL_FAILED)]
    run.set(TradeStatus.TRACKING, "tracking")


async def _part_failed(run: TradeRun, req: CloseRequest, rest: CloseRequest,
                       failure: str) -> bool:
    partials = run.inbox.partials
    if partials and partials[0] is req:
        partials[0] = rest
    every = exit_retry_s(run)
    run.set(TradeStatus.TRACKING, f"partial exit failing ({req.reason}): {failure}; "
            f"next try in {every} s")
    run.state.warnings = [w for w in run.state.warnings if not w.startswith(PARTIAL_FAILED)]
    run.warn(f"{PARTIAL_FAILED} ({failure}): tried again every {every} s")
    await run.record()
    return False


async def market_close(run: TradeRun, leg: Leg, position_qty: Decimal,
                       qty: Decimal | None = None) -> None:
    """Close `qty` of the trade's own quantity (None: all it owns) at market."""
    assert run.rules is not None
    fields = run.fields(opening=False)
    own = run.ledger.open_qty if qty is None else min(qty, run.ledger.open_qty)
    for qty in close_parts(run.rules, own, position_qty, OrderType.MARKET):
        snap = await run.place(OrderRequest(
            trade_id=run.inp.trade_id, client_id=run.ledger.next_client_id(leg), leg=leg,
            symbol=run.inp.symbol, side=fields.side, fill_side=fields.fill_side,
            trade_side=fields.trade_side, reduce_only=fields.reduce_only,
            position_id=fields.position_id, order_type=OrderType.MARKET, qty=qty,
        ))
        await run.settle(snap)


async def chase_close(run: TradeRun, leg: Leg, exit_type: EntryType) -> None:
    s = run.strategy
    target = run.ledger.leg_filled(leg) + run.ledger.open_qty
    await run_chase(run, ChasePlan(
        leg=leg, opening=False, target=target, anchor=None,
        max_chases=s.max_chases if exit_type is EntryType.CHASE else 0,
        interval_s=s.chase_interval_s, max_slippage_bps=s.max_slippage_bps,
        stop=lambda: False,
    ))


async def chase_keeping_protection(run: TradeRun, leg: Leg, exit_type: EntryType) -> None:
    """A chase (or limit) exit beside the trade's TP/SL, one resting order at a time.

    The order is cancelled (the chase pauses) when it could close more than the trade owns
    (its TP/SL fired, or a close from outside) or the TP/SL covers more than the trade owns
    (part of the exit filled); the TP/SL is then resized and the rest chased on. Before each
    re-priced order the trade reads the exchange afresh: a TP/SL that fired while the last
    order rested must stop the chase, not meet a new order for the same quantity. Once the
    exit has filled the TP/SL is cancelled at once: left pending it would close another
    trade's share."""
    s = run.strategy
    while True:
        target = run.ledger.leg_filled(leg) + run.ledger.open_qty
        reason = await run_chase(run, ChasePlan(
            leg=leg, opening=False, target=target, anchor=None, max_chases=0,
            interval_s=s.chase_interval_s, max_slippage_bps=s.max_slippage_bps,
            stop=partial(must_pause, run.ledger, leg, target),
        ))
        if run.ledger.open_qty == 0:
            await run.unprotect()
            return
        if reason == STOPPED:
            await _fit_protection(run)  # the same exit goes on, for less
            continue
        repriced = reason == MAX_CHASES and exit_type is EntryType.CHASE
        if not repriced or run.state.chases >= s.max_chases:
            return  # a limit never re-prices; whatever is left goes at market
        run.state.chases += 1
        await reconcile(run, await run.refresh())


def must_pause(led: TradeLedger, leg: Leg, target: Decimal) -> bool:
    """Whether a chase of `leg` up to `target` must stop before its order rests any longer:
    the trade owns less than the chase still means to close, or its order-level TP/SL covers
    more than the trade owns."""
    if led.open_qty < target - led.leg_filled(leg):
        return True
    p = led.protection
    return p is not None and p.level is ProtectionLevel.ORDER and p.qty > led.open_qty


async def _fit_protection(run: TradeRun) -> None:
    """Resize the order-level TP/SL to what the trade owns: the same order, modified, never a
    second one. One the exchange will not resize is cancelled rather than left covering more
    than the trade owns (an attempt that leaves quantity places it again, `_exit_failed`)."""
    async with run.protection_lock:
        led = run.ledger
        p, qty = led.protection, led.open_qty
        if p is None or p.level is not ProtectionLevel.ORDER or p.qty <= qty:
            return
        assert led.position_id is not None  # a TP/SL was placed on it
        try:
            led.protection = await run.protect(ProtectionRequest(
                trade_id=run.inp.trade_id, client_id=p.client_id, symbol=run.inp.symbol,
                position_side=run.inp.side, position_id=led.position_id, level=p.level, qty=qty,
                tp=p.tp, sl=p.sl, stop_type=run.strategy.stop_type, order_id=p.order_id,
            ))
        except ACTIVITY_FAILURES as err:
            run.warn(f"TP/SL not resized during the exit ({failure_message(err)}): cancelled "
                     "while the exit goes on")
            await run.unprotect()
        run.refresh_state()


async def _close_once(run: TradeRun, reason: str, final: TradeStatus, leg: Leg) -> None:
    """The exit before EXIT_RETRIES, kept only so that trades whose history holds it replay;
    remove once no such trade runs. It cancelled the TP/SL first and gave up after MAX_ROUNDS."""
    run.memory.final_status = final
    run.set(TradeStatus.CLOSING, f"closing: {reason}")
    await run.record()
    await run.cancel_working(Leg.ENTRY)
    await run.unprotect()
    exit_type = EntryType.MARKET if leg is Leg.FLATTEN else run.strategy.exit_entry_type
    for _ in range(MAX_ROUNDS):
        out = await run.refresh()
        await reconcile(run, out)
        if run.ledger.open_qty == 0 or out.position is None:
            return
        try:
            if exit_type is EntryType.MARKET:
                await market_close(run, leg, out.position.qty)
            else:
                await chase_close(run, leg, exit_type)
                exit_type = EntryType.MARKET
        except ACTIVITY_FAILURES as err:
            run.warn(f"closing order failed ({failure_message(err)}); trying again")
            await run.wait(RETRY_PAUSE_S)
    if run.ledger.open_qty > 0:
        run.warn("the trade's quantity could not be closed; it stays tracked")
        run.memory.final_status = TradeStatus.TRACKING
