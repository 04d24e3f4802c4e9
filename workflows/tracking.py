"""Tracking a trade until its quantity is closed (docs/design.md#ownership and
docs/design.md#tracking-and-the-account-watcher).

Checks (workflows/reconcile.py) run when the account watcher signals a change, and on the
trade's own (long) durable timer, so a missed signal only delays one. Exit alerts, cancels
with flatten and refused protection close the trade's own quantity (workflows/closing.py);
partial exits, queued in the inbox, close part of it one after the other while no whole exit
is pending.
An exit that could not close everything stays pending in the inbox and is tried again every
`exit_retry_s` (meanwhile the trade is TRACKING, protected and warned): tracking ends only
when the trade owns nothing. While its TP/SL is unknown (workflows/reconcile.py) the trade
checks again every TPSL_RECHECK_S; before it ends, a close recorded at a TP/SL's trigger price
gets a few more looks for its fills, and a TP/SL placement whose outcome stayed unknown is
settled (its TP/SL, if it exists, cancelled).
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from trading.types import Leg, TradeStatus
    from workflows import protection, trailing
    from workflows.closing import close_part, close_trade, exit_retry_s
    from workflows.reconcile import (
        SECOND_READ_S,
        TPSL_RECHECK_S,
        final_estimates,
        follow,
        reconcile,
        shortfall_pending,
    )
    from workflows.run import LOCAL_TRACKING_START, TradeRun

CONTINUE_AS_NEW = "continue_as_new"
ENDED = "ended"
# A check on the trade's own timer (a fallback: nothing signalled it) may use exchange reads
# up to half its interval old, shared with the other trades checking about then
# (activities/timer_reads.py: one account snapshot, whatever the symbol): however many trades
# are open, their timers cost at most one snapshot per this age. At least TIMER_READ_MAX_AGE_MS
# (a trade checking every 2 s, as while its TP/SL is unknown, reads as before), at most
# TIMER_READ_AGE_CAP_MS (a missed signal is still noticed within its interval and 10 s).
TIMER_READ_MAX_AGE_MS = 2_000
TIMER_READ_AGE_CAP_MS = 10_000
# Looks for the fills of a close recorded at its TP/SL's trigger price, TPSL_RECHECK_S apart,
# before a trade that owns nothing ends.
ESTIMATE_LOOKS = 10
# The row is recorded again when the TP/SL or the position id changes: new record_trade calls
# that a history recorded before them replays without.
RECORDS_PROTECTION = "records-protection-changes"

Exit = tuple[str, TradeStatus, Leg]  # why, how the trade ends, the closing orders' leg


async def track(run: TradeRun) -> str:
    """Track until the quantity is closed (ENDED) or the history should start afresh."""
    failing = run.memory.exit_retry_at is not None
    run.set(TradeStatus.TRACKING, None if failing else "tracking")
    # Three calls in a row, in the worker that runs the trade's task: no task-queue round trip
    # and workflow task each (the cost of a trade: issue 24). Its TP/SL placement stays a
    # task-queue activity.
    run.local_start = workflow.patched(LOCAL_TRACKING_START)
    try:
        await run.record()
        kept = recorded(run)
        await follow(run)
        if recorded(run) != kept and (run.local_start or workflow.patched(RECORDS_PROTECTION)):
            await run.record()  # its TP/SL and position, for a run that may have to resume it
    finally:
        run.local_start = False
    while True:
        if await _until_closed(run) == CONTINUE_AS_NEW:
            return CONTINUE_AS_NEW
        await final_estimates(run, ESTIMATE_LOOKS)
        if run.ledger.open_qty == 0:
            break  # (else an estimate was withdrawn: the quantity is the trade's again)
    await protection.settle_claims(run)
    return ENDED


async def _until_closed(run: TradeRun) -> str:
    kept = recorded(run)
    cadence = trailing.Cadence()
    while run.ledger.open_qty > 0:
        exit_ = pending_exit(run)
        unknown = run.memory.tpsl_unknown_since is not None
        # A partial exit runs only when no whole exit is pending (docs/design.md#exits).
        part = run.inbox.partials[0] if exit_ is None and run.inbox.partials else None
        if part is not None and _retry_due(run) and not unknown:
            # Done, or superseded by a whole exit meanwhile: on to the next partial exit, or
            # the whole exit (it may be what this one turned into).
            if await close_part(run, part) or not run.inbox.partials:
                run.memory.exit_retry_at = None
                kept = recorded(run)
                continue
            run.memory.exit_retry_at = workflow.now() + timedelta(seconds=exit_retry_s(run))
        if exit_ is not None and _retry_due(run) and not unknown:
            # A lost TP/SL placement's TP/SL must not stay live beside the exit.
            await protection.settle_claims(run)
            if await close_trade(run, *exit_):
                break
            run.memory.exit_retry_at = workflow.now() + timedelta(seconds=exit_retry_s(run))
        if should_continue_as_new(run):
            return CONTINUE_AS_NEW
        waiting = exit_ is not None or part is not None
        if waiting and unknown:
            # Whether the TP/SL closed the quantity already is not known yet: an exit now
            # would close it a second time, out of another trade's share. The exit waits for
            # the answer (TPSL_UNKNOWN_BOUND_S at most); a plain timer, as the pending exit
            # would end `run.wait` at once.
            await workflow.sleep(TPSL_RECHECK_S)
            before = (run.ledger.open_qty, run.ledger.fees)
            await reconcile(run, await run.refresh())
        elif not waiting:
            trail = trailing.trail_of(run)
            every = check_every(run)
            woken = await run.wait(every if trail is None else cadence.wait_s(every))
            before = (run.ledger.open_qty, run.ledger.fees)
            if trail is None or woken or cadence.follow_due(every):
                await follow(run, max_age_ms=0 if woken else timer_read_age_ms(every))
                cadence.followed()
            if trail is not None and cadence.check_due() and run.ledger.open_qty > 0:
                # A trailing trade reads its price on a short timer of its own
                # (workflows/trailing.py); the exchange is followed on the strategy's.
                await trailing.check(run, trail, cadence)
        else:
            # The failed exit's TP/SL was placed by the attempt; until the next one, only
            # notice what the exchange did (a TP/SL that fired, a liquidation).
            await _until_retry(run)
            before = (run.ledger.open_qty, run.ledger.fees)
            await reconcile(run, await run.refresh())
        if (run.ledger.open_qty, run.ledger.fees) != before:
            await run.record()
        elif recorded(run) != kept and workflow.patched(RECORDS_PROTECTION):
            await run.record()
        kept = recorded(run)
    return ENDED


def recorded(run: TradeRun) -> tuple[object, ...]:
    """What the trade row must follow: the quantities and fees, and since RECORDS_PROTECTION
    its TP/SL (prices, order) and position id, which a resumed run reads back
    (docs/design.md#resuming-a-trade)."""
    led, wanted = run.ledger, run.protection
    order = led.protection.order_id if led.protection is not None else None
    return (led.open_qty, led.fees, wanted.tp, wanted.sl, order, led.position_id)


def check_every(run: TradeRun) -> int:
    """The trade's own timer: the strategy's interval; sooner while its TP/SL is in neither of
    the exchange's lists (TPSL_RECHECK_S: nothing is placed in its stead until that is clear)
    or while the position shows less than the trade owns with no close confirmed
    (SECOND_READ_S: the shortfall is recorded or gone within its bound even for a trade that
    checks rarely; workflows/reconcile.py SHORTFALL_CONFIRM_S)."""
    interval = run.strategy.tracking_interval_s
    if run.memory.tpsl_unknown_since is not None:
        interval = min(interval, TPSL_RECHECK_S)
    if shortfall_pending(run):
        interval = min(interval, SECOND_READ_S)
    return interval


def timer_read_age_ms(every_s: int) -> int:
    """How old the exchange reads of a check on a timer of `every_s` seconds may be."""
    return max(TIMER_READ_MAX_AGE_MS, min(TIMER_READ_AGE_CAP_MS, every_s * 500))


def pending_exit(run: TradeRun) -> Exit | None:
    """The exit the inbox asks for (it stays there until the trade owns nothing); a cancel
    without flatten is acted on here (it keeps the TP/SL) and cleared."""
    inbox = run.inbox
    if inbox.close is not None:
        return inbox.close.reason, TradeStatus.CLOSED, Leg.EXIT
    if inbox.cancel is not None:
        if inbox.cancel.flatten:
            return "cancelled with flatten", TradeStatus.CANCELLED, Leg.FLATTEN
        inbox.cancel = None
        run.set(phase="tracking (cancel without flatten keeps the TP/SL)")
    if inbox.flatten is not None:
        return inbox.flatten, TradeStatus.CLOSED, Leg.FLATTEN
    return None


def _retry_due(run: TradeRun) -> bool:
    at = run.memory.exit_retry_at
    return at is None or workflow.now() >= at


async def _until_retry(run: TradeRun) -> None:
    """Wait for the failed exit's next attempt, or less when the exchange changed. The pending
    exit itself does not end the wait (that would retry at once, again and again)."""
    inbox, at = run.inbox, run.memory.exit_retry_at
    assert at is not None
    left = (at - workflow.now()).total_seconds()
    if left > 0 and not inbox.exchange_changed:
        try:
            await workflow.wait_condition(lambda: inbox.exchange_changed,
                                          timeout=timedelta(seconds=left))
        except TimeoutError:
            pass
    inbox.exchange_changed = False


def should_continue_as_new(run: TradeRun) -> bool:
    info = workflow.info()
    return (
        info.is_continue_as_new_suggested()
        or info.get_current_history_length() >= run.inp.continue_as_new_after
    )
