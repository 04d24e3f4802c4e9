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

from trading.types import StopType

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
