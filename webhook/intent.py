"""What an alert asks for, from `action` + `market_position` + `prev_market_position`.

A pure table (docs/design.md#intent). TradingView reports the strategy's position after the order
(`market_position`) and before it (`prev_market_position`):

    buy  : flat→long open long · long→long open long (adds) · short→long reverse to long
           short→flat close short
    sell : mirror image

Without `prev_market_position`, `buy`+`long` is an open and `buy`+`flat` a close; without
either, `buy` opens long and `sell` opens short (plain indicator alerts). A buy that leaves the
strategy short is a partial exit: a close of part of each trade (`exit_part` says how much,
docs/design.md#exits). Every other combination contradicts itself and is refused.

A reversal is one TradingView order of old-plus-new contracts. Without `prev_market_position`
an alert carrying that `size` would open the sum (beside the old side in hedge mode: double the
exposure), so `buy`+`long` with a `size` is an open only when `market_position_size` shows it
is not a reversal (docs/design.md#intent).
"""

from __future__ import annotations

from decimal import Decimal

from trading.types import Intent
from webhook.schemas import Action, AlertRefused, AlertTakeProfit, MarketPosition

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
    *,
    size: Decimal | None = None,
    market_position_size: Decimal | None = None,
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
        if before is None and size is not None:
            _not_a_reversal(action, after, size, market_position_size)
        return _OPEN[action]  # from flat, unknown, or adding to the same side
    if after is FLAT:
        if before is None or before is away:
            return _CLOSE[action]
        raise AlertRefused(
            f"contradictory fields: action {action} cannot take a strategy from {before} to flat"
        )
    # after is `away`: the action moved toward `toward` yet the strategy is still `away`: a
    # partial exit (exit_part says how much).
    if before is None or before is away:
        return _CLOSE[action]
    raise AlertRefused(
        f"contradictory fields: action {action} cannot take a strategy from {before} to {after}"
    )


def _not_a_reversal(
    action: Action, after: MarketPosition, size: Decimal, held: Decimal | None
) -> None:
    """Refuse an alert that is, or may be, a reversal sent without `prev_market_position`:
    its `size` would be old-plus-new contracts. Holding at least `size` after the order proves
    it started flat or on the same side (an open, or an add)."""
    if held is None:
        raise AlertRefused(
            f"missing field 'prev_market_position': an alert with action {action}, "
            f"market_position {after} and a size but neither prev_market_position nor "
            "market_position_size may be a reversal, whose size is the old plus the new "
            "contracts; "
            "add \"prev_market_position\": \"{{strategy.prev_market_position}}\" to the alert"
        )
    if held < size:
        raise AlertRefused(
            f"missing field 'prev_market_position': this alert reverses a position (size "
            f"{format(size, 'f')} is more than the {format(held, 'f')} held after it: the "
            "old plus the new contracts), and without prev_market_position it would open the "
            "whole sum; add \"prev_market_position\": \"{{strategy.prev_market_position}}\" "
            "to the alert"
        )


def exit_part(
    action: Action,
    market_position: MarketPosition | None,
    *,
    size: Decimal | None,
    close_pct: Decimal | None,
) -> tuple[Decimal | None, Decimal | None] | None:
    """What part of each trade an exit closes (docs/design.md#exits): None for everything,
    else (base qty, None) or (None, pct). `close_pct` says it on any exit (100: everything).
    TradingView's partial exit leaves the strategy on the side it reduces (a `sell` still
    `long`): its `size` ({{strategy.order.contracts}}) is the base quantity closed. On a whole
    exit (`flat`) `size` is the whole position and says nothing more. AlertRefused (422) for a
    partial exit that says neither."""
    if close_pct is not None:
        return None if close_pct >= 100 else (None, close_pct)
    if market_position is not _AWAY[action]:
        return None
    if size is None:
        raise AlertRefused(
            f"missing field 'size': a partial exit (action {action}, market_position "
            f"{market_position}) needs the quantity it closes, "
            "\"size\": \"{{strategy.order.contracts}}\", or \"close_pct\""
        )
    return size, None


def check_exit_fields(intent: Intent, close_pct: Decimal | None) -> None:
    """AlertRefused (422) for `close_pct` on an alert that opens: it belongs on an exit."""
    if close_pct is not None and intent not in CLOSES:
        raise AlertRefused(
            f"field 'close_pct': only an exit closes part of a trade, and this alert is "
            f"{intent.value}; send it with market_position flat, or still on the side it reduces"
        )


_SHORT_SIDE = frozenset({Intent.OPEN_SHORT, Intent.REVERSE_TO_SHORT})


def check_percent_targets(intent: Intent, tp_pct: Decimal | None, sl_pct: Decimal | None) -> None:
    """AlertRefused (422) when a percentage puts the TP or SL at or below zero for the side
    the intent opens: a short's TP and a long's SL lie `pct` percent below the entry price."""
    if intent in CLOSES:
        return  # an exit places no TP/SL
    short = intent in _SHORT_SIDE
    field_name, value = ("tp_pct", tp_pct) if short else ("sl_pct", sl_pct)
    if value is not None and value >= 100:
        what = "take profit" if short else "stop loss"
        side = "short" if short else "long"
        raise AlertRefused(
            f"field {field_name!r}: a {side}'s {what} lies {field_name} percent below the entry "
            f"price, so {field_name} must be below 100 ({format(value, 'f')} puts it at or "
            "below zero)"
        )


def check_ladder(intent: Intent, tps: list[AlertTakeProfit] | None, price: Decimal | None,
                 sl: Decimal | None) -> None:
    """AlertRefused (422) naming the `tps` level that lies on the wrong side for the side the
    intent opens (docs/design.md#exits): a short's level `pct` 100 or more (at or below zero);
    a level price at or below (a long) or at or above (a short) the alert's `price` or its
    `sl`. The pair's tick and the live price are checked by the trade."""
    if intent in CLOSES or not tps:
        return
    short = intent in _SHORT_SIDE
    side, where = ("short", "below") if short else ("long", "above")
    for n, level in enumerate(tps, start=1):
        name = f"field 'tps' level {n}"
        if level.pct is not None and short and level.pct >= 100:
            raise AlertRefused(f"{name}: a short's take-profit lies pct percent below the entry "
                               f"price, so pct must be below 100 ({format(level.pct, 'f')} puts "
                               "it at or below zero)")
        if level.price is None:
            continue
        for ref, what in ((price, "the alert's price"), (sl, "the stop-loss (sl)")):
            if ref is not None and (level.price >= ref if short else level.price <= ref):
                raise AlertRefused(f"{name}: a {side}'s take-profit {format(level.price, 'f')} "
                                   f"must be {where} {what} {format(ref, 'f')}")
