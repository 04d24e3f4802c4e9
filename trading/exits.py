"""A trade's exit plan (docs/design.md#exits): a take-profit ladder, where the stop goes after
each take-profit, and a trailing stop. What an alert or a strategy asks for, checked for shape
here; the prices and quantities it turns into, for one trade, are computed by the pure functions
of this module and applied by the workflow (workflows/exits.py).

Pydantic models, carried in the trade's input and memory (Decimal stays exact).
"""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, model_validator

from trading.precision import PriceKind, conform_trigger
from trading.rules import PairRules
from trading.types import PositionSide, StopType

HUNDRED = Decimal(100)
MAX_TP_LEVELS = 6
# BitUnix's standard futures taker fee; the account's own is TRADEWIRE_TAKER_FEE_RATE, which a
# trade learns with its entry's read (a trade that never read it, an adopted one, uses this).
DEFAULT_TAKER_FEE_RATE = Decimal("0.0006")


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SlAfterTp(StrEnum):
    """Where the stop moves once a take-profit level has filled."""

    NONE = "none"  # it stays where it is
    BREAKEVEN = "breakeven"  # the average entry price plus the fees (a stop hit there loses nothing)
    PREVIOUS_TP = "previous_tp"  # the previous level's price (break-even after the first)


class TakeProfit(Frozen):
    """One level of the ladder: a price or a percent from the average entry price, and the share
    of the trade's filled quantity it closes (None: an equal part of what the levels with a
    share leave)."""

    price: Decimal | None = Field(default=None, gt=0)
    pct: Decimal | None = Field(default=None, gt=0, lt=1000)
    qty_pct: Decimal | None = Field(default=None, gt=0, le=100)
    sl_after: SlAfterTp = SlAfterTp.NONE

    @model_validator(mode="after")
    def _price_or_pct(self) -> TakeProfit:
        if (self.price is None) == (self.pct is None):
            raise ValueError("each take-profit level needs exactly one of price and pct")
        return self


class Trailing(Frozen):
    """A stop that follows the best price since the trade (or the activation) by `pct` percent,
    never moving back; it starts once the price reached the activation (a percent from the
    average entry price, or a price), at once without one."""

    pct: Decimal = Field(gt=0, lt=100)
    activation_pct: Decimal | None = Field(default=None, gt=0, lt=1000)
    activation_price: Decimal | None = Field(default=None, gt=0)
    price_type: StopType | None = None  # None: what the strategy's stop watches (stop_type)

    @model_validator(mode="after")
    def _one_activation(self) -> Trailing:
        if self.activation_pct is not None and self.activation_price is not None:
            raise ValueError("give trail_activation_pct or trail_activation_price, not both")
        return self


class ExitPlan(Frozen):
    """The exits a trade wants besides its stop-loss: up to MAX_TP_LEVELS take-profits and a
    trailing stop. Empty: the trade's single `tp`/`tp_pct` (if any) is its take-profit."""

    tps: tuple[TakeProfit, ...] = Field(default=(), max_length=MAX_TP_LEVELS)
    trail: Trailing | None = None

    @model_validator(mode="after")
    def _shares(self) -> ExitPlan:
        shares = [tp.qty_pct for tp in self.tps if tp.qty_pct is not None]
        if sum(shares, Decimal(0)) > HUNDRED:
            raise ValueError(f"the take-profit shares (qty_pct) add up to {sum(shares)} %, "
                             "more than 100 %")
        return self

    @property
    def empty(self) -> bool:
        return not self.tps and self.trail is None


# --- take-profit ladder -----------------------------------------------------------------------
# Pure: the workflow (workflows/exits.py) feeds these the trade's quantities and prices.

ZERO = Decimal(0)


def _floor(qty: Decimal, step: Decimal) -> Decimal:
    """`qty` down to a multiple of `step` (never below zero)."""
    if qty <= 0:
        return ZERO
    return (qty // step) * step


def ladder_sizes(filled_qty: Decimal, levels: tuple[TakeProfit, ...], step: Decimal,
                 min_qty: Decimal) -> tuple[Decimal, ...]:
    """What each level closes of the trade's `filled_qty` (docs/design.md#exits), one entry per
    level (0: merged into a neighbour). A level with a share takes it, conformed down to the
    step; the levels without one split what is left equally, the last of them taking the
    remainder; when every level has a share and they add up to 100 %, the last takes the
    remainder (what rounding left), else the rest is a runner. A level below `min_qty` is merged
    into the next (the last one into the previous). Never more than `filled_qty` in all."""
    if not levels or filled_qty <= 0:
        return tuple(ZERO for _ in levels)
    sizes = [_floor(filled_qty * tp.qty_pct / HUNDRED, step) if tp.qty_pct is not None else ZERO
             for tp in levels]
    free = [i for i, tp in enumerate(levels) if tp.qty_pct is None]
    shares = sum((tp.qty_pct for tp in levels if tp.qty_pct is not None), ZERO)
    rest = _floor(filled_qty - sum(sizes, ZERO), step)
    if free:
        part = _floor(rest / len(free), step)
        for i in free[:-1]:
            sizes[i] = part
        sizes[free[-1]] = _floor(rest - part * (len(free) - 1), step)
    elif shares == HUNDRED:
        sizes[-1] += rest
    # Merge what the exchange would refuse into the next level (the last into the previous).
    for i in range(len(sizes) - 1):
        if ZERO < sizes[i] < min_qty:
            sizes[i + 1] += sizes[i]
            sizes[i] = ZERO
    if ZERO < sizes[-1] < min_qty:
        kept = [i for i in range(len(sizes) - 1) if sizes[i] > 0]
        if kept:
            sizes[kept[-1]] += sizes[-1]
        sizes[-1] = ZERO
    return tuple(sizes)


def level_orders(sizes: tuple[Decimal, ...], level_filled: tuple[Decimal, ...],
                 open_qty: Decimal, min_qty: Decimal) -> tuple[Decimal, ...]:
    """What each level's working order should hold now: its size less what it filled, the far
    levels cut first so that the working orders never hold more than the trade owns
    (`open_qty`); a cut level below `min_qty` holds nothing (the stop covers it)."""
    wanted = [max(size - got, ZERO) for size, got in zip(sizes, level_filled, strict=True)]
    # What a partly filled level has left below the pair's minimum cannot be placed (the
    # exchange would refuse it at every check): the level is done, the stop covers the rest.
    wanted = [ZERO if ZERO < w < min_qty and got > 0 else w
              for w, got in zip(wanted, level_filled, strict=True)]
    excess = sum(wanted, ZERO) - max(open_qty, ZERO)
    for i in reversed(range(len(wanted))):
        if excess <= 0:
            break
        cut = min(wanted[i], excess)
        wanted[i] -= cut
        excess -= cut
        if ZERO < wanted[i] < min_qty:
            wanted[i] = ZERO  # the exchange would refuse it; the stop covers it
    return tuple(wanted)


def level_price(tp: TakeProfit, entry: Decimal | None, long: bool) -> Decimal | None:
    """A level's price before the tick: its own, or its percent from the average entry price
    on the profit side (None while there is no entry price)."""
    if tp.price is not None:
        return tp.price
    if entry is None:
        return None
    assert tp.pct is not None
    return entry * (HUNDRED + tp.pct) / HUNDRED if long else entry * (HUNDRED - tp.pct) / HUNDRED


def breakeven(entry: Decimal, fee_rate: Decimal, long: bool) -> Decimal:
    """The stop price at which closing loses nothing, both taker fees included: a long sold at
    b gets b·(1−f) for what cost entry·(1+f)."""
    one = Decimal(1)
    if long:
        return entry * (one + fee_rate) / (one - fee_rate)
    return entry * (one - fee_rate) / (one + fee_rate)


def stop_after_levels(base_sl: Decimal | None, levels: tuple[TakeProfit, ...],
                      prices: tuple[Decimal | None, ...], done: tuple[bool, ...],
                      entry: Decimal | None, fee_rate: Decimal, long: bool) -> Decimal | None:
    """The stop after the levels that are `done` (filled): each moves it as its `sl_after`
    says, to break-even or to the previous level's price (break-even for the first level); the
    tightest wins, and it is never looser than `base_sl` (the stop only moves in the trade's
    favour). Unchanged while no level is done or there is no entry price."""
    stop = base_sl
    for i, (tp, filled) in enumerate(zip(levels, done, strict=True)):
        if not filled or tp.sl_after is SlAfterTp.NONE or entry is None:
            continue
        wanted = breakeven(entry, fee_rate, long)
        if tp.sl_after is SlAfterTp.PREVIOUS_TP and i > 0 and prices[i - 1] is not None:
            wanted = prices[i - 1]
        if stop is None or (wanted > stop if long else wanted < stop):
            stop = wanted
    return stop


# --- trailing stop ---
# Pure: the workflow (workflows/trailing.py) feeds them the prices it reads and keeps what they
# return in the trade's memory (workflows/state.py `Exits`).

# A move is sent only when it tightens the exchange's stop by at least this share of the trail
# distance (or one tick, if more): a stop 1 % behind a price that ticks up moves in steps of
# 0.1 % of the price, not on every tick. The lag it adds is a tenth of the distance the trader
# chose to give away anyway, and it bounds the moves per price run, whatever the tick.
TRAIL_STEP_SHARE = Decimal("0.1")


def _favour(side: PositionSide, a: Decimal, b: Decimal) -> bool:
    """`a` is strictly better than `b` for a position on `side` (higher for a long)."""
    return a > b if side is PositionSide.LONG else a < b


def trail_activated(trail: Trailing, side: PositionSide, entry: Decimal | None,
                    price: Decimal) -> bool:
    """Whether `price` reaches the trail's activation: `activation_pct` from the average entry
    price in the trade's favour, or at/through `activation_price`; at once without either. A
    percent with no entry price yet does not activate (nothing to measure it from)."""
    if trail.activation_price is not None:
        level = trail.activation_price
    elif trail.activation_pct is not None:
        if entry is None:
            return False
        shift = entry * trail.activation_pct / HUNDRED
        level = entry + shift if side is PositionSide.LONG else entry - shift
    else:
        return True
    return price >= level if side is PositionSide.LONG else price <= level


def trail_best(side: PositionSide, best: Decimal | None, price: Decimal) -> Decimal:
    """The best price so far: it only ever moves in the trade's favour."""
    if best is None or _favour(side, price, best):
        return price
    return best


def trail_stop(rules: PairRules, trail: Trailing, side: PositionSide, best: Decimal) -> Decimal:
    """The stop the trail wants: `pct` percent behind the best price, on the pair's tick on the
    safe side (trading/precision.py conform_trigger: a long's stop rounded up, a short's down)."""
    back = HUNDRED - trail.pct if side is PositionSide.LONG else HUNDRED + trail.pct
    return conform_trigger(rules, kind=PriceKind.STOP_LOSS, position_side=side,
                           price=best * back / HUNDRED, reference_price=None)


def trail_min_step(rules: PairRules, trail: Trailing, best: Decimal) -> Decimal:
    """How much a move must tighten the exchange's stop to be worth a request:
    max(one tick, TRAIL_STEP_SHARE of the trail distance)."""
    return max(rules.price_tick, best * trail.pct / HUNDRED * TRAIL_STEP_SHARE)


def tighter(side: PositionSide, a: Decimal | None, b: Decimal | None) -> Decimal | None:
    """The tighter of two stops (the higher for a long); None when neither is set."""
    if a is None or b is None:
        return a if b is None else b
    return a if _favour(side, a, b) else b


def trail_worth_moving(side: PositionSide, current: Decimal | None, wanted: Decimal,
                       step: Decimal) -> bool:
    """Whether the exchange's stop (`current`; None: no stop yet) should move to `wanted`:
    only in the trade's favour, and by at least `step`."""
    if current is None:
        return True
    gain = wanted - current if side is PositionSide.LONG else current - wanted
    return gain >= step


def stop_crossed(side: PositionSide, price: Decimal, stop: Decimal) -> bool:
    """Whether `price` is at or through `stop` (a long's stop is hit from above)."""
    return price <= stop if side is PositionSide.LONG else price >= stop


class TrailPoint(Frozen):
    """Where the trail stands after a price: active yet, the best price since it became active,
    and the stop it wants (None until active)."""

    active: bool = False
    best: Decimal | None = None
    wanted: Decimal | None = None


def trail_advance(rules: PairRules, trail: Trailing, side: PositionSide, entry: Decimal | None,
                  point: TrailPoint, price: Decimal) -> TrailPoint:
    """One price read applied to the trail: activation first (once active it stays), then the
    best price, then the stop wanted from it, never looser than the one wanted before."""
    if not point.active and not trail_activated(trail, side, entry, price):
        return point
    best = trail_best(side, point.best, price)
    wanted = tighter(side, trail_stop(rules, trail, side, best), point.wanted)
    return TrailPoint(active=True, best=best, wanted=wanted)
