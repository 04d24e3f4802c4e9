"""The take-profit ladder's orders, from the workflow's side (docs/design.md#exits).

Each level is a reduce-only GTC limit order (`Leg.TAKE_PROFIT`) of the trade's own quantity:
placed once the trade has filled (with its average entry price), resized (cancelled, confirmed
terminal, placed again for its unfilled part) when what the trade owns changes the sizes, and
cancelled the moment the trade owns nothing (its stop fired, an exit closed it): left resting,
a reduce-only order would close ANOTHER trade's quantity in one-way mode. The working orders
never hold more than the trade owns (trading.exits.level_orders). Their fills are the trade's
closes (Leg.TAKE_PROFIT closes), so the ledger counts them; the stop (the TP/SL order, which
carries only the SL with a ladder) is then resized by workflows/protection.py and moved as
`sl_after_tp` says (trading.exits.stop_after_levels).

Every level's client ids are kept in the trade's memory (`Exits.level_orders`) BEFORE the
order is sent: a placement whose answer is lost is settled (cancelled by its client id, its
fills taken in) at the next sync, never forgotten.

Everything here runs through `sync` (called by protection.ensure, so every caller keeps the
ladder and the stop right together) and `cancel_ladder` (before an exit closes at market and
before the trade ends). A trade without a ladder issues no command here.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.contract import Failure, OrderRef, OrderRequest, OrderSnapshot
    from trading.errors import TradingError
    from trading.exits import (
        DEFAULT_TAKER_FEE_RATE,
        ExitPlan,
        ladder_sizes,
        level_orders,
        level_price,
        stop_after_levels,
    )
    from trading.precision import PriceKind, conform_order, round_price
    from trading.rules import PairRules
    from trading.types import Leg, OrderType, PositionSide, TradeStatus
    from workflows.policies import ACTIVITY_FAILURES, failure_message, failure_type
    from workflows.state import ExitsView, LevelView, TradeMemory

if TYPE_CHECKING:
    from workflows.run import TradeRun

# The ladder's orders: new commands (histories recorded before them have no ladder, and a
# trade without one never asks this).
LADDER = "exits-ladder"
# Resting levels are cancelled while the stop's fate is unknown (new commands, which a history
# recorded before them replays without).
UNKNOWN_STOP_CANCELS = "exits-ladder-unknown-stop-cancels"
# A ladder that replaces a single TP waits for the TP/SL order to drop it.
LADDER_AFTER_TP = "exits-ladder-after-tp"
ZERO = Decimal(0)
NOT_IN_LINE = "take-profit ladder not in line yet"  # a warning, until a sync succeeds


def plan_of(memory: TradeMemory) -> ExitPlan | None:
    plan = memory.exits.plan
    return plan if plan is not None and plan.tps else None


def has_ladder(run: TradeRun) -> bool:
    return plan_of(run.memory) is not None


def ever_laddered(run: TradeRun) -> bool:
    """The trade has a ladder, or had one (an update may have removed it: its orders go)."""
    return has_ladder(run) or any(run.memory.exits.level_orders)


def fee_rate(run: TradeRun) -> Decimal:
    return run.venue.taker_fee_rate if run.venue.taker_fee_rate is not None \
        else DEFAULT_TAKER_FEE_RATE


# --- what the ladder wants (pure reads of the memory) ----------------------------------------


def _level_ids(memory: TradeMemory, count: int) -> list[list[str]]:
    """Each level's client ids (a read: the memory is padded only by `_padded_ids`)."""
    ids = memory.exits.level_orders
    return ids[:count] + [[] for _ in range(count - len(ids))]


def _padded_ids(memory: TradeMemory, count: int) -> list[list[str]]:
    """The memory's own lists, one per level, to record a placement in."""
    ids = memory.exits.level_orders
    while len(ids) < count:
        ids.append([])
    return ids


def level_fills(memory: TradeMemory, count: int) -> tuple[Decimal, ...]:
    """What each level's orders have filled, by the ledger."""
    orders = memory.ledger.orders
    return tuple(sum((orders[c].filled_qty for c in ids if c in orders), ZERO)
                 for ids in _level_ids(memory, count)[:count])


def basis(memory: TradeMemory, fills: tuple[Decimal, ...]) -> Decimal:
    """The quantity the ladder shares out: what the trade filled less what other closes took
    (a partial exit shrinks every level with it)."""
    led = memory.ledger
    return max(led.filled_qty - (led.closed_qty - sum(fills, ZERO)), ZERO)


def sizes(memory: TradeMemory, rules: PairRules) -> tuple[Decimal, ...]:
    plan = plan_of(memory)
    assert plan is not None
    fills = level_fills(memory, len(plan.tps))
    return ladder_sizes(basis(memory, fills), plan.tps, rules.qty_step, rules.min_qty)


def prices(memory: TradeMemory, rules: PairRules | None,
           side: PositionSide) -> tuple[Decimal | None, ...]:
    """Each level's price on the tick (a percent from the average entry price; None before
    there is one, or without the pair's rules)."""
    plan = plan_of(memory)
    assert plan is not None
    entry = memory.ledger.avg_entry_price
    out: list[Decimal | None] = []
    for tp in plan.tps:
        raw = level_price(tp, entry, side is PositionSide.LONG)
        if raw is None or rules is None:
            out.append(raw if rules is None else None)
            continue
        try:
            out.append(round_price(rules, raw, fill_side=side.exit_side, kind=PriceKind.LIMIT))
        except TradingError:
            out.append(None)
    return tuple(out)


def mark_done(memory: TradeMemory, rules: PairRules) -> tuple[bool, ...]:
    """Which levels have filled (kept: the stop a level moved never moves back)."""
    plan = plan_of(memory)
    assert plan is not None
    n = len(plan.tps)
    done = memory.exits.levels_done
    while len(done) < n:
        done.append(False)
    fills, wanted = level_fills(memory, n), sizes(memory, rules)
    for i in range(n):
        # Filled, or filled but for less than the pair's minimum (that rest cannot be placed).
        if not done[i] and wanted[i] > 0 and fills[i] > 0 and \
                wanted[i] - fills[i] < rules.min_qty:
            done[i] = True
    return tuple(done[:n])


def stop(run: TradeRun, base_sl: Decimal | None) -> Decimal | None:
    """The stop the trade wants with its ladder: `base_sl` moved by the filled levels."""
    plan = plan_of(run.memory)
    if plan is None or run.rules is None:
        return base_sl
    done = mark_done(run.memory, run.rules)
    return stop_after_levels(base_sl, plan.tps, prices(run.memory, run.rules, run.inp.side), done,
                             run.ledger.avg_entry_price, fee_rate(run),
                             run.inp.side is PositionSide.LONG)


def view(memory: TradeMemory, rules: PairRules | None, side: PositionSide,
         current: ExitsView | None) -> ExitsView | None:
    """The ladder as the `state` query shows it (each level, what filled, the current stop);
    the trail's part of `current` is kept (it is not the ladder's)."""
    plan = plan_of(memory)
    if plan is None:  # no ladder (an update may have removed it, and the trail: not shown)
        if current is None:
            return None
        whole = memory.exits.plan
        trailing = whole is not None and whole.trail is not None
        return current.model_copy(update={"levels": [], **({} if trailing else {"trail": None})})
    n = len(plan.tps)
    fills = level_fills(memory, n)
    wanted = sizes(memory, rules) if rules is not None else (ZERO,) * n
    at = prices(memory, rules, side)
    done = memory.exits.levels_done + [False] * n
    ids = _level_ids(memory, n)
    orders = memory.ledger.orders
    led, status = memory.ledger, memory.state.status
    ended = status.is_final or status is TradeStatus.CLOSING or (
        led.filled_qty > 0 and led.open_qty == 0)
    levels = []
    for i in range(n):
        working = any(c in orders and not orders[c].is_terminal for c in ids[i])
        status = ("filled" if done[i] else "working" if working
                  else "cancelled" if ended else "waiting")
        levels.append(LevelView(price=at[i], qty=wanted[i], filled_qty=fills[i], status=status))
    # The trail's part is the trail's (workflows/trailing.py), shown while the plan has one.
    trail = current.trail if current is not None and plan.trail is not None else None
    return ExitsView(levels=levels, stop=memory.protection.sl, trail=trail)


# --- the orders ----------------------------------------------------------------------------


async def sync(run: TradeRun) -> None:
    """Bring the ladder's orders in line with what the trade owns (protection.ensure calls it
    first, under the protection lock). Failures are warned and tried again at the next check:
    the stop covers every quantity the ladder does not."""
    if not ever_laddered(run) or not workflow.patched(LADDER):
        return
    try:
        await _sync(run)
    except ACTIVITY_FAILURES as err:
        run.warn(f"{NOT_IN_LINE} ({failure_message(err)}); tried again at the next check")
    else:
        run.state.warnings = [w for w in run.state.warnings if not w.startswith(NOT_IN_LINE)]
    run.refresh_state()


async def _sync(run: TradeRun) -> None:
    await _settle_lost(run)
    led, rules = run.ledger, run.rules
    status = run.state.status
    if led.open_qty == 0 or status.is_final or status is TradeStatus.CLOSING \
            or not has_ladder(run):
        await _cancel_working(run)
        return
    if run.memory.tpsl_unknown_since is not None and workflow.patched(UNKNOWN_STOP_CANCELS):
        # Whether the stop fired is not known yet: if it did, the levels resting for the
        # quantity it closed would close another trade's (one-way mode). They are cancelled,
        # and placed again once the stop's fate is known (review finding M2).
        await _cancel_working(run)
        return
    if rules is None or led.avg_entry_price is None or led.position_id is None \
            or run.memory.tpsl_unknown_since is not None:
        # Nothing is placed while the stop's fate is unknown: it may have closed the
        # quantity these orders would close again (another trade's, in one-way mode).
        return
    carried = led.protection is not None and led.protection.tp is not None
    if carried and workflow.patched(LADDER_AFTER_TP):
        # The TP/SL order still carries a single TP (a ladder given by an update): the levels
        # wait until `protection.ensure` has taken it off (review finding M5).
        return
    plan = plan_of(run.memory)
    assert plan is not None
    n = len(plan.tps)
    ids = _padded_ids(run.memory, n)
    for dropped in ids[n:]:  # levels an update removed from the plan
        for snap in _working(run, dropped):
            await run.cancel(snap)
    at = prices(run.memory, rules, run.inp.side)
    want = _wanted(run, rules, n)
    for i in range(n):
        for snap in _working(run, ids[i]):
            if snap.qty - snap.filled_qty != want[i] or snap.price != at[i]:
                await run.cancel(snap)
    want = _wanted(run, rules, n)  # a cancel may have found fills
    if run.ledger.open_qty == 0:
        await _cancel_working(run)
        return
    for i in range(n):
        if want[i] > 0 and at[i] is not None and not _working(run, ids[i]):
            await _place(run, rules, i, want[i], at[i])


def _wanted(run: TradeRun, rules: PairRules, n: int) -> tuple[Decimal, ...]:
    mark_done(run.memory, rules)
    return level_orders(sizes(run.memory, rules), level_fills(run.memory, n),
                        run.ledger.open_qty, rules.min_qty)


def _working(run: TradeRun, client_ids: list[str]) -> list[OrderSnapshot]:
    orders = run.ledger.orders
    return [orders[c] for c in client_ids if c in orders and not orders[c].is_terminal]


async def _place(run: TradeRun, rules: PairRules, level: int, qty: Decimal,
                 price: Decimal) -> None:
    fields = run.fields(opening=False)
    try:
        conformed = conform_order(rules, fill_side=fields.fill_side, qty=qty,
                                  order_type=OrderType.LIMIT, price=price,
                                  mark_price=None, reducing=True)
    except TradingError as err:
        run.warn(f"take-profit level {level + 1} not placed: {err.message}")
        return
    client_id = run.ledger.next_client_id(Leg.TAKE_PROFIT)
    run.memory.exits.level_orders[level].append(client_id)  # before it is sent (module doc)
    await run.place(OrderRequest(
        trade_id=run.inp.trade_id, client_id=client_id, leg=Leg.TAKE_PROFIT,
        symbol=run.inp.symbol, side=fields.side, fill_side=fields.fill_side,
        trade_side=fields.trade_side, reduce_only=fields.reduce_only,
        position_id=fields.position_id, order_type=OrderType.LIMIT,
        qty=conformed.qty, price=conformed.price,
    ))


async def _settle_lost(run: TradeRun) -> None:
    """Placements whose answer never came: cancelled by client id (the activity finds the
    order, or rules it never placed), so what they filled is counted and none stays live."""
    led = run.ledger
    for ids in run.memory.exits.level_orders:
        for client_id in list(ids):
            if client_id in led.orders:
                continue
            try:
                run.apply(await run.calls.cancel_order(OrderRef(
                    trade_id=run.inp.trade_id, client_id=client_id, symbol=run.inp.symbol,
                    order_id=None,
                )))
            except ACTIVITY_FAILURES as err:
                if failure_type(err) != Failure.ORDER_ROW_MISSING:
                    raise
                ids.remove(client_id)  # never claimed, so never sent: nothing to settle


async def _cancel_working(run: TradeRun) -> None:
    for snap in run.ledger.working(Leg.TAKE_PROFIT):
        await run.cancel(snap)


async def cancel_ladder(run: TradeRun) -> None:
    """Cancel every order of the ladder (before an exit closes at market, and before the
    trade ends): nothing reduce-only of this trade stays resting. Under the protection lock,
    so an update's `protection.ensure` never places a level beside it (review finding M4)."""
    if not ever_laddered(run) or not workflow.patched(LADDER):
        return
    async with run.protection_lock:
        await _settle_lost(run)
        await _cancel_working(run)
    run.refresh_state()
