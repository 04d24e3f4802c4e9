"""What a trade leg becomes in BitUnix's order fields, per position mode
(docs/bitunix.md#position-modes).

| leg         | HEDGE: side, tradeSide, reduceOnly, positionId | ONE_WAY: side, reduceOnly | fills |
|-------------|------------------------------------------------|---------------------------|-------|
| open long   | BUY,  OPEN,  false, -                          | BUY,  false               | BUY   |
| open short  | SELL, OPEN,  false, -                          | SELL, false               | SELL  |
| close long  | BUY,  CLOSE, false, the position's id          | SELL, true                | SELL  |
| close short | SELL, CLOSE, false, the position's id          | BUY,  true                | BUY   |

In hedge mode `side` names the position's direction, so it differs from the fill direction on a
close; rounding and the chase must use `fill_side`. In one-way mode no `tradeSide` is sent (the
docs make it a hedge-mode field) and no positionId (reduceOnly picks the position). Hedge closes
do not also send reduceOnly: `tradeSide=CLOSE` already reduces, and how BitUnix treats both at
once is undocumented.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from trading.errors import InvalidOrderRequest, OppositeTradeOpen
from trading.types import Intent, PositionMode, PositionSide, Side, TradeSide


@dataclass(frozen=True, slots=True)
class PositionChange:
    """One order's purpose: open (grow) or close (reduce) a position of `position_side`."""

    position_side: PositionSide
    opening: bool

    def __post_init__(self) -> None:
        # Accept the enum's value too (as it arrives from JSON), but nothing else.
        object.__setattr__(self, "position_side", PositionSide(self.position_side))
        if not isinstance(self.opening, bool):
            raise InvalidOrderRequest(f"PositionChange.opening must be a bool, got {self.opening!r}")


@dataclass(frozen=True, slots=True)
class OrderFields:
    """BitUnix's fields for one position change. `trade_side`/`position_id` None means: do not send."""

    side: Side
    trade_side: TradeSide | None
    reduce_only: bool
    position_id: str | None
    fill_side: Side


_INTENT_CHANGES: dict[Intent, tuple[PositionChange, ...]] = {
    Intent.OPEN_LONG: (PositionChange(PositionSide.LONG, opening=True),),
    Intent.OPEN_SHORT: (PositionChange(PositionSide.SHORT, opening=True),),
    Intent.CLOSE_LONG: (PositionChange(PositionSide.LONG, opening=False),),
    Intent.CLOSE_SHORT: (PositionChange(PositionSide.SHORT, opening=False),),
    # A reverse closes the old trade first, waits for it, then opens the new one
    # (docs/design.md#reverses).
    Intent.REVERSE_TO_LONG: (
        PositionChange(PositionSide.SHORT, opening=False),
        PositionChange(PositionSide.LONG, opening=True),
    ),
    Intent.REVERSE_TO_SHORT: (
        PositionChange(PositionSide.LONG, opening=False),
        PositionChange(PositionSide.SHORT, opening=True),
    ),
}


def changes_for_intent(intent: Intent) -> tuple[PositionChange, ...]:
    """The position changes an alert's intent consists of, in the order they must run."""
    return _INTENT_CHANGES[Intent(intent)]


def order_fields(
    change: PositionChange, mode: PositionMode, *, position_id: str | None = None
) -> OrderFields:
    """The table above. `position_id` is required for a HEDGE close and ignored otherwise."""
    mode = PositionMode(mode)
    side = change.position_side
    fill_side = side.entry_side if change.opening else side.exit_side
    if mode is PositionMode.HEDGE:
        if change.opening:
            return OrderFields(side.entry_side, TradeSide.OPEN, False, None, fill_side)
        if not position_id:
            raise InvalidOrderRequest(
                f"closing a {side.value} position in HEDGE mode needs its positionId; read the "
                "pending positions first"
            )
        return OrderFields(side.entry_side, TradeSide.CLOSE, False, position_id, fill_side)
    return OrderFields(fill_side, None, not change.opening, None, fill_side)


def check_one_way_entry(
    mode: PositionMode,
    *,
    symbol: str,
    entry: PositionSide,
    open_trade_sides: Iterable[PositionSide],
) -> None:
    """Refuse, in ONE_WAY mode, an entry opposite to another open trade on the same symbol
    (the exchange would net it against that trade). HEDGE mode keeps both sides apart."""
    if PositionMode(mode) is not PositionMode.ONE_WAY:
        return
    entry = PositionSide(entry)
    for open_side in map(PositionSide, open_trade_sides):
        if open_side is not entry:
            raise OppositeTradeOpen(symbol=symbol, wanted=entry.value, open_side=open_side.value)
