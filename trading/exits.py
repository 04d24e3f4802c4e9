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
