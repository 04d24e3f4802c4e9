"""A chase whose interval is under a second: durable timers fire no faster than about a second on
Temporal (docs/design.md#sub-second-chase), so the rounds run inside one heartbeating activity
(activities/fast_chase.py) and the workflow only starts it, stops it on a message, and takes in its
orders. TP/SL follow once it returns (the chase itself lasts seconds)."""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import CancelledError

with workflow.unsafe.imports_passed_through():
    from activities.contract import Failure
    from activities.contract_tracking import CollectRequest, FastChaseRequest
    from trading.chase import STOPPED, ChasePlan
    from trading.ids import client_order_id
    from workflows.policies import ACTIVITY_FAILURES, failure_type
    from workflows.run import TradeRun

SUB_SECOND = 1
RISK_REFUSALS = "fast-chase-risk-refusals"


async def run_fast_chase(run: TradeRun, plan: ChasePlan) -> str:
    rules = run.rules
    assert rules is not None
    fields = run.fields(opening=plan.opening)
    first = run.ledger.reserve(plan.max_chases + 1)
    req = FastChaseRequest(
        trade_id=run.inp.trade_id, workflow_id=run.workflow_id,
        client_id_namespace=run.inp.client_id_namespace, symbol=run.inp.symbol, leg=plan.leg,
        opening=plan.opening, side=fields.side, fill_side=fields.fill_side,
        trade_side=fields.trade_side, reduce_only=fields.reduce_only,
        position_id=fields.position_id, target_qty=plan.target,
        already_filled=run.ledger.leg_filled(plan.leg), first_seq=first,
        interval_s=plan.interval_s, max_chases=plan.max_chases,
        max_slippage_bps=plan.max_slippage_bps, anchor_price=plan.anchor,
        qty_step=rules.qty_step, price_tick=rules.price_tick, min_qty=rules.min_qty,
        send_deadline=run.alert_deadline if plan.opening else None,
        leverage=run.state.leverage if plan.opening else None,
        available_margin=run.venue.available if plan.opening else None,
    )
    run.set(phase="chasing (sub-second)")
    handle = run.calls.start_fast_chase(req)
    await workflow.wait_condition(lambda: handle.done() or plan.stop())
    if not handle.done():
        handle.cancel()
    try:
        result = await handle
    except (CancelledError, *ACTIVITY_FAILURES) as err:
        ids = [client_order_id(run.workflow_id, plan.leg.letter, first + i,
                               namespace=run.inp.client_id_namespace)
               for i in range(plan.max_chases + 1)]
        left = await run.calls.collect_orders(
            CollectRequest(trade_id=run.inp.trade_id, symbol=run.inp.symbol, client_ids=ids)
        )
        for snap in left.orders:
            run.apply(snap)
        run.state.chases += max(len(left.orders) - 1, 0)
        # A risk rail refused an order (a limit at the first claim, a halt at a re-price): the
        # entry ends as a refused placement does in the chase of the workflow, with the reason
        # (REFUSED when nothing filled), not as a chase that stopped. Behind a patch: before
        # it such a chase ended FAILED ("the entry filled nothing").
        if failure_type(err) == Failure.RISK_REFUSED and workflow.patched(RISK_REFUSALS):
            raise
        return STOPPED
    for snap in result.orders:
        run.apply(snap)
    run.state.chases += result.chases
    return result.stop_reason
