"""Closing a trade's own quantity with reduce-only orders (docs/design.md#ownership and
docs/design.md#protection).

`close_trade` is one exit attempt: it closes the trade's open quantity, capped by what the
position still holds, with the strategy's exit order type: market, or a chase (a `limit` exit
is a chase that never re-prices) whose leftover goes to market.

The TP/SL during an exit: a position-level TP/SL (the trade owns the whole position) stays in
place while the exit is sent, since nothing it closes can belong to another trade; an
order-level TP/SL is cancelled first, since left pending beside a filled exit it would close
the same quantity again, out of another trade's share.

An attempt that leaves quantity open (the exchange rejected the close, a domain error, an order
that filled nothing) cancels what it left working, places the TP/SL again for what is left and
hands the trade back to tracking (workflows/tracking.py), TRACKING with a warning, which tries
the exit again every `exit_retry_s`: a trade never ends while it owns quantity.
"""

from __future__ import annotations

from decimal import Decimal

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.contract import OrderRequest, ProtectionLevel
    from trading.chase import ChasePlan
    from trading.errors import TradingError
    from trading.sizing import close_parts
    from trading.types import EntryType, Leg, OrderType, TradeStatus
    from workflows import protection
    from workflows.chase import run_chase
    from workflows.policies import ACTIVITY_FAILURES, failure_message
    from workflows.reconcile import reconcile
    from workflows.run import TradeRun

# Trades that began an exit before exits were retried replay the earlier code
# (`_close_once`); every new exit records this marker and runs `close_trade`.
EXIT_RETRIES = "exit-retries-keep-the-trade"
MAX_ROUNDS = 30  # rounds of one attempt that each closed something
EXIT_RETRY_MAX_S = 30  # a failing exit is tried again at least this often
EXIT_FAILED = "exit failed"  # the start of the warning a failing exit keeps up to date
RETRY_PAUSE_S = 2  # the earlier code's pause (replay only)


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
    exit_type = EntryType.MARKET if leg is Leg.FLATTEN else run.strategy.exit_entry_type
    failure = f"quantity still open after {MAX_ROUNDS} rounds"
    for _ in range(MAX_ROUNDS):
        out = await reconcile(run, await run.refresh())
        if run.ledger.open_qty == 0 or out.position is None:
            return True
        before = run.ledger.open_qty
        await _clear_protection(run, out.position.qty)
        try:
            if exit_type is not EntryType.MARKET:
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
    await run.cancel_working(leg)  # no exit order stays working beside the TP/SL
    out = await reconcile(run, await run.refresh())
    if run.ledger.open_qty == 0 or out.position is None:
        return True
    await _exit_failed(run, reason, failure, out.position.qty)
    return False


async def _clear_protection(run: TradeRun, position_qty: Decimal) -> None:
    """Before an exit order: keep a position-level TP/SL while the trade owns the whole
    position; cancel any other (an order-level TP/SL would close the quantity twice)."""
    async with run.protection_lock:  # after any `set_protection` accepted before CLOSING
        p = run.ledger.protection
        if p is None:
            return
        if p.level is ProtectionLevel.POSITION and position_qty <= run.ledger.open_qty:
            return
        await run.unprotect()


async def _exit_failed(run: TradeRun, reason: str, failure: str, position_qty: Decimal) -> None:
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


async def market_close(run: TradeRun, leg: Leg, position_qty: Decimal) -> None:
    assert run.rules is not None
    fields = run.fields(opening=False)
    for qty in close_parts(run.rules, run.ledger.open_qty, position_qty, OrderType.MARKET):
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
