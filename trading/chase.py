"""The chase's arithmetic, pure, shared by the durable chase (workflows/chase.py) and the
sub-second one that runs inside a heartbeating activity (activities/fast_chase.py)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

from trading.precision import snap
from trading.types import Leg, Side

BPS = Decimal(10_000)

FILLED = "filled"
STOPPED = "stopped"
MAX_CHASES = "max_chases"
SLIPPAGE = "slippage"


def passive_price(best_bid: Decimal | None, best_ask: Decimal | None, fill_side: Side,
                  tick: Decimal) -> Decimal | None:
    """Where a post-only order rests at the front, on the tick, rounded to the passive side:
    the best bid for a buy (down), the best ask for a sell (up)."""
    if fill_side is Side.BUY:
        return None if best_bid is None else snap(best_bid, tick, ROUND_FLOOR)
    return None if best_ask is None else snap(best_ask, tick, ROUND_CEILING)


def beyond_slippage(price: Decimal, anchor: Decimal | None, bps: Decimal, fill_side: Side) -> bool:
    """True when `price` is worse than `anchor` by more than `bps` basis points."""
    if anchor is None:
        return False
    worse = price - anchor if fill_side is Side.BUY else anchor - price
    return worse * BPS > anchor * bps


def remainder(target: Decimal, filled: Decimal, *, step: Decimal, min_qty: Decimal,
              opening: bool) -> Decimal:
    """What is left to send, on the grid; zero when below one step (or, for an opening, below
    the pair's minimum: such a rest is dropped and reported, never rounded up)."""
    left = target - filled
    if left <= 0:
        return Decimal(0)
    rounded = snap(left, step, ROUND_FLOOR)
    if opening and rounded < min_qty:
        return Decimal(0)
    return rounded


@dataclass(frozen=True)
class ChasePlan:
    """One chase: of `leg`, opening or closing, up to `target` (the leg's filled total);
    `stop` says when a message ends it early."""

    leg: Leg
    opening: bool
    target: Decimal
    anchor: Decimal | None
    max_chases: int
    interval_s: Decimal
    max_slippage_bps: Decimal
    stop: Callable[[], bool]
