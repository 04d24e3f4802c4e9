"""A trade that adopts quantity no trade owns (docs/design.md#incident-policies).

Instead of sizing and sending an entry, it books an incident's unowned quantity as its own
(`adopt_quantity`: at most the gap the open trades leave at that moment), places a protective
stop `stop_pct` from the mark, and then is an ordinary trade: tracked until it owns nothing,
closed by an exit alert (when an operator gave it a strategy), `tradewire trades close`, or at
once when the policy (or the operator) says flatten.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.contract import AdoptRequest
    from trading.errors import TradingError
    from trading.types import Leg, TradeStatus
    from workflows.policies import ACTIVITY_FAILURES, failure_message
    from workflows.protection import pct_price, trigger
    from workflows.run import TradeEnded, TradeRun
    from workflows.state import Protection


async def adopt(run: TradeRun) -> None:
    """Take the quantity on, or raise TradeEnded (CANCELLED) when there is none to take."""
    a = run.inp.adopt
    assert a is not None
    run.set(TradeStatus.ENTERING, f"adopting unowned quantity (incident #{a.incident_id})")
    rules = await run.rules_now(force=False, local=False)
    venue = await run.venue_now()
    try:
        res = await run.calls.adopt_quantity(AdoptRequest(
            trade_id=run.inp.trade_id, client_id=run.ledger.next_client_id(Leg.ADOPTED),
            symbol=run.inp.symbol, side=run.inp.side, wanted=a.qty,
        ))
    except ACTIVITY_FAILURES as err:
        raise TradeEnded(TradeStatus.CANCELLED,
                         f"nothing adopted: {failure_message(err)}") from err
    if res.snapshot is None:
        raise TradeEnded(TradeStatus.CANCELLED, res.reason)
    run.apply(res.snapshot)
    run.memory.placed_any = True
    run.ledger.position_id = res.position_id or run.ledger.position_id
    run.state.target_qty = res.snapshot.filled_qty
    if res.reason:
        run.warn(res.reason)
    try:
        stop = trigger(rules, run.inp.side,
                       pct_price(venue.mark_price, a.stop_pct, run.inp.side, take_profit=False),
                       take_profit=False, reference=venue.mark_price)
    except TradingError as exc:
        # No valid stop: close rather than hold it unprotected.
        run.inbox.flatten = f"the adopted quantity's stop cannot be placed ({exc.message})"
    else:
        run.memory.protection = Protection(sl=stop, override=True)
    if a.close:
        run.inbox.flatten = f"incident #{a.incident_id}: flatten ({a.by})"
