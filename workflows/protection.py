"""Keeping a trade's TP/SL right (docs/design.md#protection), from the workflow's side.

Sized to the trade's own open quantity, placed after the first fill and resized after each
later fill. Order-level (`tpsl/place_order`) while the position holds more than this trade
owns; position-level while the trade owns the whole position (the paper exchange, like our
reading of BitUnix's 30038, refuses an order-level TP/SL as large as the position).

A placement that fails for another reason than a refusal (its retries ran out after a lost
answer) may still have created its TP/SL: it stays an unsettled claim in the ledger, handed to
the next placement (which adopts or cancels its TP/SL) or settled before an exit and before the
trade ends, so the trade never has two live TP/SLs (issue 19, gap B).
"""

from __future__ import annotations

from decimal import Decimal

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.contract import ClaimsRequest, Failure, ProtectionLevel, ProtectionRequest
    from trading.errors import TradingError, show
    from trading.exits import tighter
    from trading.precision import PriceKind, conform_trigger
    from trading.rules import PairRules
    from trading.types import Leg, OnProtectionRefused, PositionSide, TradeStatus
    from workflows import exits
    from workflows.contract import TradeInput
    from workflows.messages import ProtectionUpdate
    from workflows.policies import (
        ACTIVITY_FAILURES,
        failure_message,
        failure_type,
    )
    from workflows.run import TradeRun

HUNDRED = Decimal(100)
# A TP/SL placement whose outcome stayed unknown is kept as a claim (new: histories recorded
# before it replay without the claim, and without the call that settles it).
KEEPS_CLAIMS = "tpsl-claims-kept"


def desired_level(own_qty: Decimal, position_qty: Decimal) -> ProtectionLevel:
    return ProtectionLevel.POSITION if own_qty >= position_qty else ProtectionLevel.ORDER


def pct_price(entry: Decimal, pct: Decimal, side: PositionSide, *, take_profit: bool) -> Decimal:
    """`pct` percent away from `entry`, on the profit side for a TP, the loss side for an SL."""
    up = take_profit == (side is PositionSide.LONG)
    return entry * (HUNDRED + pct) / HUNDRED if up else entry * (HUNDRED - pct) / HUNDRED


def trigger(rules: PairRules, side: PositionSide, price: Decimal | None, *, take_profit: bool,
            reference: Decimal | None = None) -> Decimal | None:
    if price is None:
        return None
    kind = PriceKind.TAKE_PROFIT if take_profit else PriceKind.STOP_LOSS
    return conform_trigger(rules, kind=kind, position_side=side, price=price,
                           reference_price=reference)


def targets(run: TradeRun) -> tuple[Decimal | None, Decimal | None]:
    """The TP/SL the trade wants now: an update's prices, else the alert's absolute prices,
    else its percentages from the average entry price; the SL tightened to the trailing stop's
    (workflows/trailing.py: None unless the trade trails). With a take-profit ladder the TP/SL
    carries only the stop (the levels take the profits), moved by the filled levels (the
    tightest stop wins)."""
    tp, sl = _targets(run)
    if not exits.has_ladder(run):
        return tp, sl
    moved = exits.stop(run, sl)
    if moved is not None and moved != sl and run.rules is not None:
        moved = trigger(run.rules, run.inp.side, moved, take_profit=False)
        mark, long = run.venue.mark, run.inp.side is PositionSide.LONG
        placed = run.ledger.protection.sl if run.ledger.protection is not None else None
        if placed != moved and mark is not None and (moved >= mark if long else moved <= mark):
            # The price is already past where the stop moves, before the stop got there (it
            # fell back between the level's fill and this check): the exchange would refuse
            # that stop, and a stop there would have fired. The trade closes what it owns at
            # market, as the stop would. (A stop already there is the exchange's to fire.)
            if run.inbox.flatten is None:
                run.warn(f"the stop after a take-profit ({show(moved)}) was crossed by the "
                         f"price ({show(mark)}): closing the rest at market")
                run.inbox.flatten = "stop after take-profit crossed"
            # Meanwhile the stop at the exchange stays where an earlier level moved it:
            # never back to the base stop (review finding M1).
            return None, tighter(run.inp.side, sl, placed)
    return None, moved


def _targets(run: TradeRun) -> tuple[Decimal | None, Decimal | None]:
    trail_stop = run.memory.exits.trail_stop
    if run.protection.override or run.rules is None:
        return run.protection.tp, tighter(run.inp.side, run.protection.sl, trail_stop)
    inp, side, entry = run.inp, run.inp.side, run.ledger.avg_entry_price
    tp, sl = inp.tp, inp.sl
    if tp is None and inp.tp_pct is not None and entry is not None:
        tp = pct_price(entry, inp.tp_pct, side, take_profit=True)
    if sl is None and inp.sl_pct is not None and entry is not None:
        sl = pct_price(entry, inp.sl_pct, side, take_profit=False)
    return (trigger(run.rules, side, tp, take_profit=True),
            tighter(side, trigger(run.rules, side, sl, take_profit=False), trail_stop))


def unresolved(inp: TradeInput, entry: Decimal | None) -> list[str]:
    """The percentages the trade wants that cannot be turned into prices yet (no average
    entry price), by field name."""
    if entry is not None:
        return []
    return [name for name, pct, price in (("tp_pct", inp.tp_pct, inp.tp),
                                          ("sl_pct", inp.sl_pct, inp.sl))
            if pct is not None and price is None]


def validate_update(run: TradeRun, upd: ProtectionUpdate, *, ladder_kept: bool = True,
                    ) -> tuple[Decimal | None, Decimal | None]:
    """The update's prices on the grid, or ValueError: each on the right side of the last
    known price (a long's TP above, SL below) and the trade not finished. `ladder_kept`:
    the trade's take-profit ladder stays (`set_protection`; `set_exits` may replace it by the
    one TP it gives)."""
    if run.state.status.is_final or run.state.status is TradeStatus.CLOSING:
        raise ValueError(f"the trade is {run.state.status.value}; nothing to protect")
    if upd.tp is None and upd.sl is None:
        raise ValueError("give tp and/or sl")
    if run.inbox.partials:
        # Its order is sized to what the trade keeps: a move now would size the TP/SL and the
        # levels for the quantity before the part (docs/design.md#exits).
        raise ValueError("a partial exit is in progress; try again once it is done")
    if upd.tp is not None and ladder_kept and exits.has_ladder(run):
        # Its TP/SL carries only the stop: a single TP beside the levels would close them twice.
        raise ValueError("the trade has a take-profit ladder: change its levels (tps), not tp")
    if run.rules is None:
        raise ValueError("the trade has not resolved its pair rules yet; try again shortly")
    side = run.inp.side
    try:
        tp = trigger(run.rules, side, upd.tp, take_profit=True, reference=run.venue.mark)
        sl = trigger(run.rules, side, upd.sl, take_profit=False, reference=run.venue.mark)
    except TradingError as exc:  # a rule, or a price at or below zero
        raise ValueError(exc.message) from exc
    wanted = run.protection
    return (tp if upd.tp is not None else wanted.tp), (sl if upd.sl is not None else wanted.sl)


async def ensure(run: TradeRun, position_qty: Decimal | None, *, raise_refusal: bool = False) -> None:
    """Bring the TP/SL in line with what the trade owns; on refusal, follow the strategy
    (or raise, for an update, so its caller sees why)."""
    async with run.protection_lock:
        await exits.sync(run)  # the ladder first: its fills change what the stop covers
        qty, led = run.ledger.open_qty, run.ledger
        try:
            tp, sl = targets(run)
        except TradingError as exc:
            # A price the domain refuses (at or below zero, or zero on the tick) must never
            # escape: it would fail the workflow task forever (docs/design.md#protection).
            if qty > 0 and led.position_id is not None:
                _cannot_compute(run, exc.message, raise_refusal=raise_refusal)
            return
        run.protection.tp, run.protection.sl = tp, sl
        missing = [] if run.protection.override else unresolved(run.inp, led.avg_entry_price)
        if qty > 0 and missing:
            run.warn(f"{' and '.join(missing)} not resolved: the exchange reported no average "
                     "entry price for the trade's fills, so that TP/SL is NOT placed")
        if qty == 0 or (tp is None and sl is None) or led.position_id is None:
            return
        if run.protection.disabled and not raise_refusal:
            return
        if run.state.status is TradeStatus.CLOSING:
            return  # the close cancelled the TP/SL on purpose
        if run.memory.tpsl_unknown_since is not None:
            # Whether the TP/SL fired is not known yet (workflows/reconcile.py): moving,
            # resizing or replacing it now could put one over another trade's quantity.
            if raise_refusal:
                raise ApplicationError(
                    "the trade's TP/SL is in neither of the exchange's lists yet (did it fire?); "
                    "try again in a few seconds", type=Failure.NOT_FOUND_YET, non_retryable=True)
            return
        level = desired_level(qty, position_qty if position_qty is not None else qty)
        cur = led.protection
        if cur is not None and cur.level is level and cur.tp == tp and cur.sl == sl and (
            level is ProtectionLevel.POSITION or cur.qty == qty
        ):
            return
        keep = cur is not None and cur.level is level
        req: ProtectionRequest | None = None
        try:
            if cur is not None and not keep:
                await run.unprotect()
            req = ProtectionRequest(
                trade_id=run.inp.trade_id,
                client_id=cur.client_id if keep and cur else led.next_client_id(Leg.PROTECTION),
                symbol=run.inp.symbol, position_side=run.inp.side, position_id=led.position_id,
                level=level, qty=qty, tp=tp, sl=sl, stop_type=run.strategy.stop_type,
                order_id=cur.order_id if keep and cur else None,
                earlier=[] if keep else list(led.unsettled),
            )
            carried_tp = cur is not None and cur.tp is not None
            led.protection = await run.protect(req)
            _settled(run, req)
            if carried_tp and led.protection.tp is None and exits.has_ladder(run):
                # A ladder replacing a single TP: its levels are placed only now that the old
                # TP no longer rests beside them (review finding M5).
                await exits.sync(run)
            run.refresh_state()
        except ACTIVITY_FAILURES as err:
            if req is not None and req.order_id is None:
                _unsettled(run, req, failure_type(err))
            message = failure_message(err)
            if raise_refusal:
                raise ApplicationError(message, type=failure_type(err), non_retryable=True) from err
            if failure_type(err) != Failure.PROTECTION_REFUSED:
                run.warn(f"TP/SL not placed yet ({message}); retrying at the next check")
                return
            refused(run, message)


def _settled(run: TradeRun, req: ProtectionRequest) -> None:
    """The placement succeeded: it settled every claim it was handed."""
    led = run.ledger
    led.unsettled = [c for c in led.unsettled if c not in req.earlier]


def _unsettled(run: TradeRun, req: ProtectionRequest, kind: str) -> None:
    """A new placement failed. Refused: the exchange answered (nothing was created), and the
    claims handed to it were settled before it sent. Otherwise its outcome is unknown: its
    TP/SL may exist, recorded by no row, so it is kept as a claim."""
    led = run.ledger
    if kind in (Failure.PROTECTION_REFUSED, Failure.POSITION_NOT_FOUND):
        _settled(run, req)
    elif workflow.patched(KEEPS_CLAIMS) and all(c.client_id != req.client_id
                                                for c in led.unsettled):
        led.unsettled.append(req.claim())


async def settle_claims(run: TradeRun) -> None:
    """Cancel the TP/SL of every unsettled claim, if it exists (before an exit, and before
    the trade ends): a TP/SL left live would close the trade's quantity twice, or another
    trade's."""
    led = run.ledger
    if not led.unsettled:
        return
    await run.calls.settle_protection_claims(ClaimsRequest(
        trade_id=run.inp.trade_id, symbol=run.inp.symbol, position_side=run.inp.side,
        claims=list(led.unsettled),
    ))
    led.unsettled = []


def _cannot_compute(run: TradeRun, message: str, *, raise_refusal: bool) -> None:
    """A TP/SL that cannot be computed is refused like one the exchange refuses."""
    if raise_refusal:
        raise ApplicationError(message, type=Failure.PROTECTION_REFUSED, non_retryable=True)
    if run.state.status is TradeStatus.CLOSING or run.protection.disabled:
        return  # closing on purpose, or already tracking unprotected with the warning
    refused(run, message)


def refused(run: TradeRun, message: str) -> None:
    """A refused TP/SL never fails a trade with fills: flatten it, or track it unprotected
    with a visible warning, as the strategy says."""
    if run.strategy.on_protection_refused is OnProtectionRefused.FLATTEN:
        run.warn(f"TP/SL refused ({message}): closing the trade's quantity")
        run.inbox.flatten = "protection refused"
    else:
        run.warn(f"TP/SL refused ({message}): tracking WITHOUT protection")
        run.protection.disabled = True


def describe(tp: Decimal | None, sl: Decimal | None) -> str:
    return f"TP {show(tp) if tp is not None else '-'} / SL {show(sl) if sl is not None else '-'}"
