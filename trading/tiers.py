"""BitUnix's risk-limit tiers (docs/bitunix.md#risk-limit-tiers): how large a position may grow
at a given leverage.

A symbol's ladder is a list of tiers, each a notional range `[start_value, end_value)` in the
quote coin with the highest leverage a position in that range may use; the leverage falls as the
notional rises. At leverage L the position may reach the `end_value` of the last tier that still
allows L. BitUnix refuses an order that would pass it with 20002
(exchange.errors.RiskLimitExceeded).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal


@dataclass(frozen=True, slots=True)
class RiskTier:
    level: int
    start_value: Decimal
    end_value: Decimal
    max_leverage: int
    maintenance_margin_rate: Decimal | None


def max_position_notional(tiers: list[RiskTier], leverage: int) -> Decimal | None:
    """The largest position notional the ladder allows at `leverage`; None without a ladder
    (nothing known: the exchange decides), 0 when no tier allows that leverage."""
    if not tiers:
        return None
    return max((t.end_value for t in tiers if t.max_leverage >= leverage), default=Decimal(0))


def tier_refusal(tiers: list[RiskTier], leverage: int, notional: Decimal,
                 symbol: str) -> str | None:
    """Why a position of `notional` at `leverage` would be refused with 20002, or None."""
    limit = max_position_notional(tiers, leverage)
    if limit is None or notional <= limit:
        return None
    return (f"a {symbol} position of {notional} at leverage {leverage} passes BitUnix's "
            f"risk-limit tier for that leverage (at most {limit}): lower the size or the leverage")
