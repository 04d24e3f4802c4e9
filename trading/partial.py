"""Partial exits (docs/design.md#exits): how much of a trade's own quantity one partial exit
closes, and how a base size asked of several trades is shared among them. Pure.

A partial exit asks for a base quantity, or a percent of what the trade owns when the exit
runs. It never closes more than the trade owns; it closes everything when what would be left
is below the pair's minimum (a rest that small could never be closed on its own later), and it
is refused when the part itself is below the minimum.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from trading.errors import InvalidSizing, RuleViolation, show
from trading.precision import round_qty_down
from trading.rules import PairRules

HUNDRED = Decimal(100)
ZERO = Decimal(0)


def asked_qty(owned: Decimal, *, qty: Decimal | None, pct: Decimal | None) -> Decimal:
    """What the exit asks for, before any rule: `qty`, or `pct` percent of `owned`."""
    if (qty is None) == (pct is None):
        raise InvalidSizing("a partial exit gives exactly one of qty and pct")
    if qty is not None:
        if not qty.is_finite() or qty <= 0:
            raise InvalidSizing(f"a partial exit's qty must be above zero, got {show(qty)}")
        return qty
    assert pct is not None
    if not pct.is_finite() or pct <= 0 or pct > HUNDRED:
        raise InvalidSizing(f"a partial exit's pct must be in (0, 100], got {show(pct)}")
    return owned * pct / HUNDRED


def part_to_close(
    rules: PairRules, owned: Decimal, *, qty: Decimal | None = None, pct: Decimal | None = None
) -> Decimal | None:
    """The quantity one partial exit closes, on the pair's step; None: close everything (it
    asks for all the trade owns, or what would be left is below the pair's minimum).
    RuleViolation (`min_qty`): the part is below the pair's minimum, so nothing is closed."""
    if not owned.is_finite() or owned <= 0:
        raise InvalidSizing(f"nothing to close: the trade owns {show(owned)}")
    asked = asked_qty(owned, qty=qty, pct=pct)
    if asked >= owned:
        return None
    part = round_qty_down(rules, asked) if asked >= rules.qty_step else ZERO
    if part < rules.min_qty:
        raise RuleViolation(
            rule="min_qty", value=asked, limit=rules.min_qty,
            message=f"the partial exit of {show(asked)} {rules.base} is below the pair's "
            f"minimum {show(rules.min_qty)} {rules.base}; nothing closed",
        )
    if owned - part < rules.min_qty:
        return None
    return part


def share_oldest_first(size: Decimal, owned: Sequence[Decimal | None]) -> list[Decimal]:
    """A base `size` asked of several trades (oldest first, with what each owns as far as is
    known): each closes what it owns until the size is used up; what the known quantities
    cannot cover (a trade's record lags its fills) goes to the newest, which closes no more
    than it really owns. The result has one entry per trade; 0 means the trade is not asked."""
    if not size.is_finite() or size <= 0:
        raise InvalidSizing(f"a partial exit's size must be above zero, got {show(size)}")
    left, shares = size, []
    for qty in owned:
        take = min(left, max(qty or ZERO, ZERO))
        shares.append(take)
        left -= take
    if shares and left > 0:
        shares[-1] += left
    return shares
