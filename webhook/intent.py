"""What an alert asks for, from `action` + `market_position` + `prev_market_position`.

A pure table (docs/design.md#intent). TradingView reports the strategy's position after the order
(`market_position`) and before it (`prev_market_position`):

    buy  : flat→long open long · long→long open long (adds) · short→long reverse to long
           short→flat close short
    sell : mirror image

Without `prev_market_position`, `buy`+`long` is an open and `buy`+`flat` a close; without
either, `buy` opens long and `sell` opens short (plain indicator alerts). A buy that leaves the
strategy short is a partial exit: Tradewire closes whole trades only, so it is refused with a
hint rather than guessed at. Every other combination contradicts itself and is refused.
"""

from __future__ import annotations

from trading.types import Intent
from webhook.schemas import Action, AlertRefused, MarketPosition

LONG, SHORT, FLAT = MarketPosition.LONG, MarketPosition.SHORT, MarketPosition.FLAT

_OPEN = {Action.BUY: Intent.OPEN_LONG, Action.SELL: Intent.OPEN_SHORT}
_CLOSE = {Action.BUY: Intent.CLOSE_SHORT, Action.SELL: Intent.CLOSE_LONG}
_REVERSE = {Action.BUY: Intent.REVERSE_TO_LONG, Action.SELL: Intent.REVERSE_TO_SHORT}
# The position an action moves toward, and the one it moves away from.
_TOWARD = {Action.BUY: LONG, Action.SELL: SHORT}
_AWAY = {Action.BUY: SHORT, Action.SELL: LONG}

CLOSES = frozenset({Intent.CLOSE_LONG, Intent.CLOSE_SHORT})
REVERSES = frozenset({Intent.REVERSE_TO_LONG, Intent.REVERSE_TO_SHORT})
OPENS = frozenset({Intent.OPEN_LONG, Intent.OPEN_SHORT})


def intent_of(
    action: Action,
    market_position: MarketPosition | None,
    prev_market_position: MarketPosition | None,
) -> Intent:
    """The intent, or AlertRefused (422) saying why the combination cannot be traded."""
    after, before = market_position, prev_market_position
    toward, away = _TOWARD[action], _AWAY[action]
    if after is None:
        if before is not None:
            raise AlertRefused(
                "missing field 'market_position': prev_market_position alone cannot tell an "
                "open from a close"
            )
        return _OPEN[action]
    if after is toward:
        if before is away:
            return _REVERSE[action]
        return _OPEN[action]  # from flat, unknown, or adding to the same side
    if after is FLAT:
        if before is None or before is away:
            return _CLOSE[action]
        raise AlertRefused(
            f"contradictory fields: action {action} cannot take a strategy from {before} to flat"
        )
    # after is `away`: the action moved toward `toward` yet the strategy is still `away`.
    if before is None or before is away:
        raise AlertRefused(
            f"unsupported partial exit: action {action} with market_position {after} reduces "
            f"the {after} position without closing it; Tradewire closes whole trades, so send "
            "the exit with market_position flat"
        )
    raise AlertRefused(
        f"contradictory fields: action {action} cannot take a strategy from {before} to {after}"
    )
