"""Before and during the entry: resolve rules, read the account, set leverage, size, enter.

The reads and the first placement run as local activities: in the process that started the
workflow they make the eager fast path (no task-queue round trip before the order leaves).
A rule rejection from the exchange triggers one forced refresh of the pair's rules and one
re-validation; anything else that fails before a fill ends the trade REFUSED or FAILED, but only
once every order it claimed is settled (`settle_entry`): an order found filled is tracked.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.contract import (
        Failure,
        OrderRequest,
        SettleRequest,
        SymbolConfigRequest,
        VenueQuery,
        VenueSnapshot,
    )
    from trading.chase import MAX_CHASES, SLIPPAGE, ChasePlan, remainder
    from trading.errors import TradingError
    from trading.ids import sequence_of
    from trading.orders import check_one_way_entry
    from trading.precision import conform_order
    from trading.risk import RiskLimits, check_leverage, strategy_scope
    from trading.rules import PairRules
    from trading.sizing import EntrySize, RiskInputs, SizingInstruction, entry_quantity
    from trading.types import ChaseFallback, EntryType, Leg, OrderType, Side, TradeStatus
    from workflows.chase import run_chase
    from workflows.policies import (
        ACTIVITY_FAILURES,
        ending_for,
        failure_message,
        failure_type,
    )
    from workflows.reconcile import follow
    from workflows.run import TradeEnded, TradeRun

CHECKS_LEVERAGE = "risk-checks-leverage"


async def prepare(run: TradeRun) -> EntrySize:
    """Rules, position mode, one-way check, leverage, size: the target quantity."""
    run.set(TradeStatus.PENDING, "resolving rules")
    if workflow.now() > run.alert_deadline:
        raise TradeEnded(
            TradeStatus.REFUSED, f"the alert is older than the strategy's max alert age "
            f"({run.strategy.max_alert_age_s} s): not sending anything",
        )
    # Rules and venue side by side: the rules most often come from the process's memory, the
    # venue reads from recent alerts or the webhook's warm-up (activities/venue_reads.py).
    sizing = run.inp.sizing or run.strategy.sizing
    rules, venue = await asyncio.gather(
        run.rules_now(force=False, local=True),
        run.calls.read_venue(
            VenueQuery(trade_id=run.inp.trade_id, symbol=run.inp.symbol, side=run.inp.side,
                       not_before=run.inp.received_at,
                       # A size from the account's margin or equity: read after the alert.
                       fresh_account=sizing.size_pct is not None or sizing.risk_pct is not None),
            window=run.entry_window(),
        ),
    )
    run.venue.mode, run.venue.mark = venue.position_mode, venue.mark_price
    run.venue.available = venue.available
    run.venue.taker_fee_rate = venue.taker_fee_rate
    run.state.position_mode, run.state.mark_price = venue.position_mode, venue.mark_price
    _guard(lambda: check_one_way_entry(venue.position_mode, symbol=run.inp.symbol,
                                        entry=run.inp.side,
                                        open_trade_sides=venue.other_trade_sides))
    run.state.leverage = venue.leverage
    wanted = run.inp.leverage or run.strategy.leverage
    _check_leverage(run, rules, wanted if wanted is not None else venue.leverage)
    mode = run.strategy.margin_mode
    if (wanted is not None and wanted != venue.leverage) or (
        mode is not None and mode != venue.margin_mode
    ):
        run.set(phase="setting leverage")
        cfg = await run.calls.configure_symbol(
            SymbolConfigRequest(symbol=run.inp.symbol, leverage=wanted,
                                margin_mode=run.strategy.margin_mode, trade_id=run.inp.trade_id),
            window=run.entry_window(),
        )
        run.state.leverage = cfg.leverage
        if cfg.note:
            run.warn(cfg.note)
    instruction = SizingInstruction(size=sizing.size, size_usdt=sizing.size_usdt,
                                    size_pct=sizing.size_pct, risk_pct=sizing.risk_pct)
    entry_type = run.entry_type
    order_type = OrderType.MARKET if entry_type is EntryType.MARKET else OrderType.LIMIT
    # risk_pct: sized so that the alert's stop-loss loses that share of the equity, fees in.
    risk = None if sizing.risk_pct is None else RiskInputs(
        equity=venue.equity, side=run.inp.side, fee_rate=venue.taker_fee_rate,
        sl=run.inp.sl, sl_pct=run.inp.sl_pct)
    size = _guard(lambda: entry_quantity(
        rules, instruction, order_type=order_type, price=_sizing_price(run, venue),
        leverage=run.state.leverage, available_margin=venue.available, risk=risk,
        notional_floor=run.strategy.notional_floor, allow_split=run.strategy.allow_split,
    ))
    run.state.target_qty = size.total
    return size


def _check_leverage(run: TradeRun, rules: PairRules, leverage: int) -> None:
    """Before the leverage is set: within the pair's maximum and the strategy's max_leverage
    (docs/design.md#risk). A trade refused here was refused later (by the exchange, or never)
    in the code before this check, hence the patch, asked only when it refuses."""
    limits = RiskLimits(max_leverage=run.strategy.max_leverage)
    try:
        check_leverage(limits, strategy_scope(run.strategy.name), leverage, rules.max_leverage,
                       run.inp.symbol)
    except TradingError as exc:
        if workflow.patched(CHECKS_LEVERAGE):
            raise TradeEnded(TradeStatus.REFUSED, exc.message) from exc


def _sizing_price(run: TradeRun, venue: VenueSnapshot) -> Decimal:
    fill_side = run.inp.side.entry_side
    if run.entry_type is EntryType.LIMIT and run.inp.reference_price is not None:
        return run.inp.reference_price
    if run.entry_type is EntryType.MARKET:
        best = venue.best_ask if fill_side is Side.BUY else venue.best_bid
    else:
        best = venue.best_bid if fill_side is Side.BUY else venue.best_ask
    return best or venue.mark_price


def _guard(check):  # check: a pure domain call that may refuse the trade
    try:
        return check()
    except TradingError as exc:
        raise TradeEnded(TradeStatus.REFUSED, exc.message) from exc


async def enter(run: TradeRun, size: EntrySize) -> None:
    """Send the entry; returns when it is done (filled, stopped or given up)."""
    run.set(TradeStatus.ENTERING, f"entering ({run.entry_type.value})")
    if run.interrupted():
        return
    if run.entry_type is EntryType.CHASE:
        await chase_entry(run, size.total)
        return
    order_type = OrderType.MARKET if run.entry_type is EntryType.MARKET else OrderType.LIMIT
    price = run.inp.reference_price if order_type is OrderType.LIMIT else None
    if order_type is OrderType.LIMIT and price is None:
        raise TradeEnded(TradeStatus.REFUSED, "a limit entry needs the alert's price")
    for qty in size.parts:
        snap = await place_entry(run, qty, order_type, price)
        if order_type is OrderType.MARKET:
            await run.settle(snap)
    # A filled entry is recorded as tracking begins (the next call); a resting one now.
    if run.ledger.working(Leg.ENTRY):
        await run.record()
    while run.ledger.working(Leg.ENTRY) and not run.interrupted():
        await run.wait(run.strategy.tracking_interval_s)
        await follow(run)


async def place_entry(run: TradeRun, qty: Decimal, order_type: OrderType,
                      price: Decimal | None):  # returns an OrderSnapshot
    """Conform and place one entry order; after a rule rejection, refresh the rules once and
    try again with the re-validated order (a new client id: the old order was refused)."""
    for attempt in (1, 2):
        assert run.rules is not None
        fields = run.fields(opening=True)
        conformed = _guard(lambda f=fields: conform_order(
            run.rules, fill_side=f.fill_side, qty=qty, order_type=order_type, price=price,
            mark_price=run.venue.mark, reducing=False, notional_floor=run.strategy.notional_floor,
        ))
        req = OrderRequest(
            trade_id=run.inp.trade_id, client_id=run.ledger.next_client_id(Leg.ENTRY),
            leg=Leg.ENTRY, symbol=run.inp.symbol, side=fields.side, fill_side=fields.fill_side,
            trade_side=fields.trade_side, reduce_only=fields.reduce_only,
            position_id=fields.position_id, order_type=order_type,
            qty=conformed.qty, price=conformed.price, send_deadline=run.alert_deadline,
            slippage_anchor=run.inp.reference_price or run.venue.mark,
            max_slippage_bps=run.strategy.max_slippage_bps,
            **run.risk_fields(),
        )
        try:
            snap = await run.place(req, local=not run.memory.placed_any, entry=True)
        except ACTIVITY_FAILURES as err:
            if failure_type(err) == Failure.RULE_REJECTED and attempt == 1:
                run.warn(f"the exchange refused the order for a rule ({failure_message(err)}); "
                         "refreshing the pair's rules once")
                await run.rules_now(force=True, local=False)
                continue
            raise
        finally:
            run.memory.placed_any = True
        if snap.adopted and snap.qty != conformed.qty and run.state.target_qty is not None:
            # An order this trade sent before (a run of this task that died after sending it)
            # under this client id: its size is the trade's first decision, which stands.
            # Only what the trade shows and records changes (no command depends on the
            # target), so no patch is needed.
            run.state.target_qty += snap.qty - conformed.qty
            run.warn(f"the entry sent earlier under this order id was for {format(snap.qty, 'f')}"
                     f" (sized again now: {format(conformed.qty, 'f')}); that order stands")
        return snap
    raise AssertionError("unreachable")


async def chase_entry(run: TradeRun, target: Decimal) -> None:
    s = run.strategy
    reason = await run_chase(run, ChasePlan(
        leg=Leg.ENTRY, opening=True, target=target, anchor=run.inp.reference_price,
        max_chases=s.max_chases, interval_s=s.chase_interval_s,
        max_slippage_bps=s.max_slippage_bps, stop=run.interrupted,
    ))
    assert run.rules is not None
    left = remainder(target, run.ledger.filled_qty, step=run.rules.qty_step,
                     min_qty=run.rules.min_qty, opening=True)
    dropped = target - run.ledger.filled_qty - left
    if dropped > 0 and run.ledger.filled_qty > 0:
        run.warn(f"a remainder of {format(dropped, 'f')} below the pair's minimum was dropped")
    if reason not in (MAX_CHASES, SLIPPAGE) or left <= 0:
        return
    why = "the price moved beyond the slippage bound" if reason == SLIPPAGE else (
        f"{run.state.chases} re-prices did not fill it")
    if s.chase_fallback is ChaseFallback.GIVE_UP:
        run.warn(f"chase gave up: {why}")
        if run.ledger.filled_qty == 0:
            raise TradeEnded(TradeStatus.FAILED, f"chase gave up: {why}")
        return
    run.warn(f"chase fell back to market: {why}")
    try:
        snap = await place_entry(run, left, OrderType.MARKET, None)
    except TradeEnded as ended:
        if run.ledger.filled_qty == 0:
            raise
        run.warn(f"market fallback refused: {ended.message}")
        return
    await run.settle(snap)


def failed_before_fill(err: Exception) -> TradeEnded:
    kind = failure_type(err)
    return TradeEnded(ending_for(kind), failure_message(err))


def fate_unknown(run: TradeRun, *, activity_failed: bool) -> bool:
    """Whether the trade may have claimed an entry order it does not know the end of: an
    activity failed (a placement among them, perhaps), an entry order is working, or the
    ledger is empty (a process that died after sending the first order leaves nothing in the
    history: only its `order` row knows)."""
    return activity_failed or not run.ledger.orders or bool(run.ledger.working(Leg.ENTRY))


async def settle_entry(run: TradeRun) -> None:
    """Before an entry that failed or was refused decides how the trade ends: find out what
    became of every entry order it claimed, cancel the working ones (a fill that wins the
    cancel counts), and take in what filled (docs/design.md#late-sends). Never bounded by the
    alert's age; an order the exchange does not show yet is looked for until its silence is
    conclusive. When something filled, the trade is made ready to track it."""
    led = run.ledger
    known = [o.client_id for o in led.orders.values() if o.leg is Leg.ENTRY and o.is_terminal]
    out = await run.calls.settle_orders(SettleRequest(
        trade_id=run.inp.trade_id, symbol=run.inp.symbol, leg=Leg.ENTRY, known=known,
    ))
    for snap in out.orders:
        run.apply(snap)
        led.seq = max(led.seq, sequence_of(snap.client_id))  # its id is never handed out again
    if led.filled_qty == 0:
        return
    # Found after prepare() stopped short (the alert was too old when the workflow ran again):
    # what tracking needs, read now without the alert's bound.
    if run.rules is None:
        await run.rules_now(force=False, local=False)
    if run.venue.mode is None:
        await run.venue_now()
