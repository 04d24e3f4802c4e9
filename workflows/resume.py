"""A new run for a trade whose workflow is gone (docs/design.md#resuming-a-trade).

A workflow can be gone while its trade still owns quantity: terminated by hand in the Temporal
UI, or ended by a bug. Its rows still say everything it did (each order was written before its
send and after each answer), so a new run under the same workflow id rebuilds the ledger from
them (`read_books`), carries on the client id sequence past every id it used, keeps the TP/SL
that protects it at the exchange, stops whatever it had working (the entry phase is long over;
an exit in progress is asked again), and then tracks like any trade.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.contract import BooksRequest, VenueQuery
    from trading.types import TradeStatus
    from workflows.messages import CloseRequest
    from workflows.run import TradeEnded, TradeRun
    from workflows.state import Protection


async def resume(run: TradeRun) -> None:
    """Rebuild the trade from its rows; TradeEnded when it owns nothing any more."""
    r = run.inp.resume
    assert r is not None
    where = f" (incident #{r.incident_id})" if r.incident_id is not None else ""
    run.set(phase=f"resuming{where}: reading its books")
    books = await run.calls.read_books(BooksRequest(trade_id=run.inp.trade_id,
                                                    symbol=run.inp.symbol))
    if not books.found:
        raise TradeEnded(TradeStatus.FAILED, "resumed, but the trade has no row")
    led = run.ledger
    for snap in books.orders:
        led.apply(snap)
    led.seq = max(led.seq, books.seq)  # never a client id the earlier run used
    led.protection = books.protection
    if books.tp is not None or books.sl is not None:
        run.memory.protection = Protection(tp=books.tp, sl=books.sl, override=True)
    run.memory.placed_any = True
    run.state.target_qty, run.state.leverage = books.target_qty, books.leverage
    await run.rules_now(force=False, local=False)
    venue = await run.calls.read_venue(
        VenueQuery(trade_id=run.inp.trade_id, symbol=run.inp.symbol, side=run.inp.side,
                   not_before=run.inp.received_at),
        window=None,
    )
    run.venue.mode, run.venue.mark = venue.position_mode, venue.mark_price
    run.state.position_mode, run.state.mark_price = venue.position_mode, venue.mark_price
    # What the earlier run left working is stopped (its fills taken in by the cancel): the
    # entry's time is over, and an exit in progress is asked again below, never doubled.
    await run.cancel_working()
    if books.status == TradeStatus.CLOSING.value and run.inbox.close is None:
        run.inbox.close = CloseRequest(reason="resumed while it was closing")
    run.warn(f"resumed by {r.by}{where}: its workflow was gone")
    if led.open_qty == 0:
        status = TradeStatus.CLOSED if led.closed_qty > 0 else TradeStatus.CANCELLED
        raise TradeEnded(status, "resumed: it owned nothing any more")
