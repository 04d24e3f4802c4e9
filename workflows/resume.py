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
    from activities.contract import BooksRequest
    from trading.errors import TradingError
    from trading.types import TradeStatus
    from workflows.messages import CloseRequest
    from workflows.protection import pct_price, trigger
    from workflows.run import TradeEnded, TradeRun
    from workflows.state import Protection


class NotResumed(Exception):
    """The run leaves the trade as it found it (its row says why it cannot be resumed)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


# The client id sequence a resumed run starts past the highest its rows show: an activity of the
# earlier run still executing may claim a few more before it stops.
SEQ_MARGIN = 1000


async def resume(run: TradeRun) -> None:
    """Rebuild the trade from its rows; TradeEnded when it owns nothing any more, NotResumed
    when it has ended already or cannot be told apart from other trades' quantity."""
    r = run.inp.resume
    assert r is not None
    where = f" (incident #{r.incident_id})" if r.incident_id is not None else ""
    run.set(phase=f"resuming{where}: reading its books")
    books = await run.calls.read_books(BooksRequest(trade_id=run.inp.trade_id,
                                                    symbol=run.inp.symbol))
    if not books.found:
        raise NotResumed("resumed, but the trade has no row")
    if books.status is not None and TradeStatus(books.status).is_final:
        # Ended between the decision to resume and now: its books are final, left alone.
        raise NotResumed(f"resumed, but the trade has ended ({books.status})")
    led = run.ledger
    for snap in books.orders:
        led.apply(snap)
    if led.open_qty > 0 and books.position_id is None:
        # Which position its quantity is in was never recorded: tracking "the position on
        # its side" could take another trade's (docs/design.md#resuming-a-trade).
        raise NotResumed("its position id was never recorded; an operator decides")
    led.seq = max(led.seq, books.seq + SEQ_MARGIN)  # never a client id the earlier run used
    led.position_id = books.position_id  # that position, never whichever is open now
    led.last_seen_ms = books.last_seen_ms  # closing fills are looked for from then
    led.protection = books.protection
    run.memory.placed_any = True
    run.state.target_qty, run.state.leverage = books.target_qty, books.leverage
    rules = await run.rules_now(force=False, local=False)
    venue = await run.venue_now()
    run.state.leverage = books.leverage  # what the trade recorded (venue_now read the account's)
    if books.tp is not None or books.sl is not None:
        run.memory.protection = Protection(tp=books.tp, sl=books.sl, override=True)
    elif books.wanted_protection:
        # It was protected, and its prices are lost: a stop r.stop_pct from the mark, as an
        # adoption gets, rather than none.
        try:
            stop = trigger(rules, run.inp.side,
                           pct_price(venue.mark_price, r.stop_pct, run.inp.side,
                                     take_profit=False),
                           take_profit=False, reference=venue.mark_price)
        except TradingError as exc:
            run.inbox.flatten = f"resumed, and its stop cannot be placed ({exc.message})"
        else:
            run.memory.protection = Protection(sl=stop, override=True)
            run.warn(f"resumed without its TP/SL prices: protected by a stop {r.stop_pct} % "
                     "from the mark")
    # What the earlier run left working is stopped (its fills taken in by the cancel): the
    # entry's time is over, and an exit in progress is asked again below, never doubled.
    await run.cancel_working()
    if books.status == TradeStatus.CLOSING.value and run.inbox.close is None:
        run.inbox.close = CloseRequest(reason="resumed while it was closing")
    run.warn(f"resumed by {r.by}{where}: its workflow was gone")
    if r.exit_plan_dropped:
        run.warn("resumed without its exit plan (take-profit ladder, trailing stop: which levels "
                 "filled and where the trail stood went with the workflow): its stop protects "
                 "it; set them again with `tradewire trades set-exits`")
    if led.open_qty == 0:
        status = TradeStatus.CLOSED if led.closed_qty > 0 else TradeStatus.CANCELLED
        raise TradeEnded(status, "resumed: it owned nothing any more")
