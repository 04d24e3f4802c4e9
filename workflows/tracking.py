"""Tracking a trade until its quantity is closed (docs/design.md#ownership and
docs/design.md#tracking-and-the-account-watcher).

Checks (workflows/reconcile.py) run when the account watcher signals a change, and on the
trade's own (long) durable timer, so a missed signal only delays one. Exit alerts, cancels
with flatten and refused protection close the trade's own quantity (workflows/closing.py).
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from trading.types import Leg, TradeStatus
    from workflows.closing import close_trade
    from workflows.reconcile import follow
    from workflows.run import TradeRun

CONTINUE_AS_NEW = "continue_as_new"
ENDED = "ended"
# A check on the trade's own timer (a fallback: nothing signalled it) may use exchange reads
# this old, shared with the other trades checking about then: however many trades are open,
# their timers cost at most one read of each kind per this interval.
TIMER_READ_MAX_AGE_MS = 2_000


async def track(run: TradeRun) -> str:
    """Track until the quantity is closed (ENDED) or the history should start afresh."""
    run.set(TradeStatus.TRACKING, "tracking")
    await run.record()
    await follow(run)
    while run.ledger.open_qty > 0:
        inbox = run.inbox
        if inbox.close is not None:
            await close_trade(run, inbox.close.reason, TradeStatus.CLOSED, Leg.EXIT)
            break
        if inbox.cancel is not None:
            flatten, inbox.cancel = inbox.cancel.flatten, None
            if flatten:
                await close_trade(run, "cancelled with flatten", TradeStatus.CANCELLED, Leg.FLATTEN)
                break
            run.set(phase="tracking (cancel without flatten keeps the TP/SL)")
        if inbox.flatten is not None:
            await close_trade(run, inbox.flatten, TradeStatus.CLOSED, Leg.FLATTEN)
            break
        if should_continue_as_new(run):
            return CONTINUE_AS_NEW
        woken = await run.wait(run.strategy.tracking_interval_s)
        before = (run.ledger.open_qty, run.ledger.fees)
        await follow(run, max_age_ms=0 if woken else TIMER_READ_MAX_AGE_MS)
        if (run.ledger.open_qty, run.ledger.fees) != before:
            await run.record()
    return ENDED


def should_continue_as_new(run: TradeRun) -> bool:
    info = workflow.info()
    return (
        info.is_continue_as_new_suggested()
        or info.get_current_history_length() >= run.inp.continue_as_new_after
    )
