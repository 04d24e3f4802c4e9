"""Update `set_exits` (docs/design.md#exits): check a move of a trade's exits and work out what
the trade wants after it, before the update is accepted.

`check` is the update's validator and its handler's first step: it raises ExitsRefused (the
refusal the caller sees, with nothing accepted and nothing in the workflow's history) or
answers the `Wanted` exits: the new plan, merged field by field over the trade's (what the
update leaves out is kept), and the TP/SL the TP/SL order carries. No command, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from pydantic import BaseModel, ConfigDict, ValidationError
from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from trading.errors import TradingError
    from trading.exits import ExitPlan, SlAfterTp, TakeProfit, Trailing, tighter
    from trading.types import TradeStatus
    from workflows.messages import ExitsUpdate, ProtectionUpdate
    from workflows.protection import pct_price, trigger, validate_update
    from workflows.run import TradeRun
    from workflows.state import ExitsView, ProtectionView

REMOVABLE = ("tps", "trail")
TRAIL_EXTRAS = ("trail_activation_pct", "trail_activation_price", "trail_price")


class ExitsRefused(ValueError):
    """The update is refused; a client sees the class name as the failure's type."""


class TradeNotOpen(ExitsRefused):
    """The trade is closing or has ended: there is nothing to move."""


@dataclass(frozen=True)
class Wanted:
    """What the trade wants once the update is applied."""

    plan: ExitPlan | None
    tp: Decimal | None
    sl: Decimal | None
    moves_tpsl: bool  # the TP/SL order's prices are the update's (set_protection's override)


class ExitsAnswer(BaseModel):
    """What `set_exits` and query `exits` answer: the plan, the live view of it, the TP/SL."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    plan: ExitPlan | None = None
    exits: ExitsView | None = None
    protection: ProtectionView = ProtectionView()


def answer(run: TradeRun) -> ExitsAnswer:
    return ExitsAnswer(plan=run.memory.exits.plan, exits=run.state.exits,
                       protection=run.state.protection)


def check(run: TradeRun, upd: ExitsUpdate) -> Wanted:
    """The exits the trade wants after `upd`, or ExitsRefused saying why it is refused."""
    status = run.state.status
    if status.is_final or status is TradeStatus.CLOSING:
        raise TradeNotOpen(f"the trade is {status.value}; its exits cannot be moved")
    unknown = [r for r in upd.remove if r not in REMOVABLE]
    if unknown:
        raise ExitsRefused(f"remove takes {' and '.join(REMOVABLE)}, not {', '.join(unknown)}")
    given = {k for k, v in upd.model_dump(exclude={"remove"}).items() if v is not None}
    if not given and not upd.remove:
        raise ExitsRefused("give at least one of sl, tp, tps, sl_after_tp, trail_pct "
                           "(or remove tps/trail)")
    if upd.tps is not None and "tps" in upd.remove:
        raise ExitsRefused("contradictory: tps given and removed")
    if upd.tp is not None and upd.tps is not None:
        raise ExitsRefused("contradictory fields tps and tp: give the ladder or one TP")
    if upd.trail_pct is not None and "trail" in upd.remove:
        raise ExitsRefused("contradictory: trail_pct given and the trail removed")
    if run.rules is None:
        raise ExitsRefused("the trade has not resolved its pair rules yet; try again shortly")

    plan = run.memory.exits.plan or ExitPlan()
    levels = merged_levels(plan, upd)
    trail = merged_trail(plan.trail, upd)
    try:
        new = ExitPlan(tps=levels, trail=trail)
    except ValidationError as exc:
        raise ExitsRefused(_first(exc)) from None
    _check_sides(run, new.tps)
    done = [i for i, filled in enumerate(run.memory.exits.levels_done) if filled]
    if upd.tps is not None:
        # A level's fill and the stop it moved belong to that level: a new ladder keeps every
        # filled level as it was (review finding C2: they are carried by position).
        for i in done:
            if i >= len(new.tps) or _bare(new.tps[i]) != _bare(plan.tps[i]):
                raise ExitsRefused(f"take-profit level {i + 1} has filled: a new ladder keeps it "
                                   "as it is (change the levels after it)")
    if run.inbox.partials:
        raise ExitsRefused("a partial exit is in progress; try again once it is done")

    moves_tpsl = upd.tp is not None or upd.sl is not None
    tp, sl = run.protection.tp, run.protection.sl
    if moves_tpsl:
        try:
            tp, sl = validate_update(run, ProtectionUpdate(tp=upd.tp, sl=upd.sl),
                                     ladder_kept=bool(new.tps))
        except ValueError as exc:
            raise ExitsRefused(str(exc)) from None
    if new.tps:
        # A ladder's levels are orders of their own: the TP/SL order carries only the stop.
        moves_tpsl, tp = moves_tpsl or tp is not None, None
    elif done and plan.tps:
        # The ladder goes after a level moved the stop: the stop stays where it was moved
        # (never back to the alert's; review finding M6).
        moves_tpsl, sl = True, tighter(run.inp.side, sl, run.protection.sl)
    return Wanted(plan=None if new.empty else new, tp=tp, sl=sl, moves_tpsl=moves_tpsl)


def _bare(level: TakeProfit) -> TakeProfit:
    """A level without where its stop goes (which an update may change)."""
    return level.model_copy(update={"sl_after": SlAfterTp.NONE})


def merged_levels(plan: ExitPlan, upd: ExitsUpdate) -> tuple[TakeProfit, ...]:
    """The ladder after the update: the update's levels, none (removed, or one `tp` instead),
    or the trade's; each with its `sl_after_tp` (the update's, else the level's own, else the
    trade's for the same rung)."""
    if "tps" in upd.remove or upd.tp is not None:
        levels: tuple[TakeProfit, ...] = ()
    elif upd.tps is not None:
        old = plan.tps
        levels = tuple(t.model_copy(update={"sl_after": old[i].sl_after})
                       if t.sl_after is SlAfterTp.NONE and i < len(old) else t
                       for i, t in enumerate(upd.tps))
    else:
        levels = plan.tps
    after = upd.sl_after_tp
    if after is None:
        return levels
    if not levels:
        raise ExitsRefused("sl_after_tp needs a take-profit ladder (tps)")
    afters = after if isinstance(after, tuple) else (after,) * len(levels)
    if len(afters) != len(levels):
        raise ExitsRefused(f"sl_after_tp as a list needs one entry per tps level ({len(afters)} "
                         f"given for {len(levels)} levels)")
    return tuple(t.model_copy(update={"sl_after": a}) for t, a in zip(levels, afters, strict=True))


def merged_trail(old: Trailing | None, upd: ExitsUpdate) -> Trailing | None:
    """The trailing stop after the update: removed, new, or the trade's with the fields the
    update gives (an activation given replaces the other kind)."""
    if "trail" in upd.remove:
        return None
    extras = {k: getattr(upd, k) for k in TRAIL_EXTRAS if getattr(upd, k) is not None}
    if upd.trail_pct is None and not extras:
        return old
    if upd.trail_pct is None and old is None:
        raise ExitsRefused(f"{next(iter(extras))} needs a trailing stop: give trail_pct")
    fields = old.model_dump() if old is not None else {}
    if upd.trail_pct is not None:
        fields["pct"] = upd.trail_pct
    if upd.trail_activation_pct is not None:
        fields |= {"activation_pct": upd.trail_activation_pct, "activation_price": None}
    if upd.trail_activation_price is not None:
        fields |= {"activation_price": upd.trail_activation_price, "activation_pct": None}
    if upd.trail_price is not None:
        fields["price_type"] = upd.trail_price
    try:
        return Trailing(**fields)
    except ValidationError as exc:
        raise ExitsRefused(_first(exc)) from None


def _check_sides(run: TradeRun, levels: tuple[TakeProfit, ...]) -> None:
    """Every level's price (a percent once the entry price is known) on the profit side of
    the last known price, and a valid trigger on the pair's grid: a long's levels above, a
    short's below. A level already filled is not placed again, so it is not checked."""
    side, mark, entry = run.inp.side, run.venue.mark, run.ledger.avg_entry_price
    done = _filled_levels(run)
    for n, tp in enumerate(levels, start=1):
        if n - 1 in done:
            continue
        price = tp.price
        if price is None and entry is not None and tp.pct is not None:
            price = pct_price(entry, tp.pct, side, take_profit=True)
        if price is None:
            continue
        try:  # on the grid, and on the profit side of the last known price (when known)
            trigger(run.rules, side, price, take_profit=True, reference=mark)  # type: ignore[arg-type]
        except TradingError as exc:
            raise ExitsRefused(f"take-profit level {n}: {exc.message}") from None


def _filled_levels(run: TradeRun) -> set[int]:
    view = run.state.exits
    return {i for i, lv in enumerate(view.levels) if lv.status == "filled"} if view else set()


def _first(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err.get("loc", ()))
    msg = str(err.get("msg", exc)).removeprefix("Value error, ")
    return f"{where}: {msg}" if where else msg
