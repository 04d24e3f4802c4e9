"""The chase: a post-only limit at the best passive price, re-priced while the market moves
(docs/design.md#entry-and-chase).

Each round waits `interval` (a durable timer, or a fill/exchange signal), re-reads the order
and the book; when the best price moved it cancels, and only once the order detail shows the
old order terminal does it place the remainder (target minus the fills of every order of
this leg), so a chase can never overfill. A post-only order that comes back rejected or
cancelled at once is re-priced, not failed. It stops after `max_chases` re-prices or when the
price is beyond `max_slippage_bps` from the anchor (the alert's price).
"""

from __future__ import annotations

from decimal import Decimal

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.contract import OrderRequest, OrderSnapshot
    from trading.chase import (
        FILLED,
        MAX_CHASES,
        SLIPPAGE,
        STOPPED,
        ChasePlan,
        beyond_slippage,
        passive_price,
        remainder,
    )
    from trading.types import Effect, OrderType, Side
    from workflows.fast_chase import SUB_SECOND, run_fast_chase
    from workflows.reconcile import follow
    from workflows.run import TradeRun

async def run_chase(run: TradeRun, plan: ChasePlan) -> str:
    """Chase until filled, stopped, out of re-prices or beyond the slippage bound; the last
    working order is cancelled (and confirmed terminal) before returning the reason."""
    if plan.interval_s < SUB_SECOND:
        return await run_fast_chase(run, plan)
    rules = run.rules
    assert rules is not None
    fields = run.fields(opening=plan.opening)
    order: OrderSnapshot | None = None
    reason = FILLED
    while True:
        left = remainder(plan.target, run.ledger.leg_filled(plan.leg), step=rules.qty_step,
                         min_qty=rules.min_qty, opening=plan.opening)
        if left == 0:
            reason = FILLED
            break
        if plan.stop():
            reason = STOPPED
            break
        if order is None or order.is_terminal:
            if order is not None:  # this is a re-price
                if run.state.chases >= plan.max_chases:
                    reason = MAX_CHASES
                    break
                run.state.chases += 1
            price = await _price_now(run, fields.fill_side)
            if price is None:
                await run.wait(plan.interval_s)
                continue
            if beyond_slippage(price, plan.anchor, plan.max_slippage_bps, fields.fill_side):
                reason = SLIPPAGE
                break
            run.set(phase=f"chasing at {price}")
            order = await run.place(_limit(run, plan, fields, left, price),
                                    local=not run.memory.placed_any, entry=plan.opening)
            run.memory.placed_any = True
            continue
        await run.wait(plan.interval_s)
        await follow(run)
        order = run.ledger.orders[order.client_id]
        if order.is_terminal:
            continue
        price = await _price_now(run, fields.fill_side)
        if price is None or price == order.price:
            continue
        order = await run.cancel(order)
    if order is not None and not order.is_terminal:
        await run.cancel(order)
    return reason


async def _price_now(run: TradeRun, fill_side: Side) -> Decimal | None:
    assert run.rules is not None
    book = await run.book()
    return passive_price(book.best_bid, book.best_ask, fill_side, run.rules.price_tick)


def _limit(run: TradeRun, plan: ChasePlan, fields, qty: Decimal, price: Decimal) -> OrderRequest:
    return OrderRequest(
        trade_id=run.inp.trade_id, client_id=run.ledger.next_client_id(plan.leg), leg=plan.leg,
        symbol=run.inp.symbol, side=fields.side, fill_side=fields.fill_side,
        trade_side=fields.trade_side, reduce_only=fields.reduce_only,
        position_id=fields.position_id, order_type=OrderType.LIMIT, effect=Effect.POST_ONLY,
        qty=qty, price=price,
        send_deadline=run.alert_deadline if plan.opening else None,
        **(run.risk_fields() if plan.opening else {}),
    )
