"""Closing a trade's own quantity with reduce-only orders (docs/design.md#ownership).

The TP/SL is cancelled first (an order-level TP/SL left behind would later close another
trade's quantity), then the trade's open quantity, capped by what the position still holds,
is closed with the strategy's exit order type: market, or a chase (a `limit` exit is a chase
that never re-prices) that falls back to market, because an exit never gives up.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.contract import OrderRequest
    from trading.chase import ChasePlan
    from trading.sizing import close_parts
    from trading.types import EntryType, Leg, OrderType, TradeStatus
    from workflows.chase import run_chase
    from workflows.policies import ACTIVITY_FAILURES, failure_message
    from workflows.reconcile import reconcile
    from workflows.run import TradeRun

RETRY_PAUSE_S = 2
MAX_ROUNDS = 30


async def close_trade(run: TradeRun, reason: str, final: TradeStatus, leg: Leg) -> None:
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
                exit_type = EntryType.MARKET  # whatever the chase left, at market
        except ACTIVITY_FAILURES as err:
            run.warn(f"closing order failed ({failure_message(err)}); trying again")
            await run.wait(RETRY_PAUSE_S)
    if run.ledger.open_qty > 0:
        run.warn("the trade's quantity could not be closed; it stays tracked")
        run.memory.final_status = TradeStatus.TRACKING


async def market_close(run: TradeRun, leg: Leg, position_qty) -> None:
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
