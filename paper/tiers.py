"""Risk-limit tiers (docs/bitunix.md#risk-limit-tiers): the largest position notional BitUnix
lets a symbol hold at a given leverage, served by `position/get_position_tiers` and enforced on
openings with 20002.

Each tier covers a notional range `[startValue, endValue)` and names the highest leverage a
position in that range may use; the ladders go down in leverage as the notional goes up
(BitUnix's example: BTCUSDT level 1 is 0–50000 at 125x, maintenance margin rate 0.004). So at
leverage L a position may grow up to the `endValue` of the last tier whose leverage is ≥ L.

By default each pair has one tier so wide (DEFAULT_END_VALUE at its maxLeverage) that nothing
existing trips it; a test sets a real ladder with `POST /__admin/position_tiers`.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from paper import errors as E
from paper import ledger
from paper.errors import ExchangeError
from paper.wire import fmt, req_str
from trading.types import Side

if TYPE_CHECKING:
    from paper.engine import Engine

DEFAULT_END_VALUE = Decimal("1000000000000")
DEFAULT_MMR = Decimal("0.004")


@dataclass(frozen=True)
class Tier:
    level: int
    start_value: Decimal
    end_value: Decimal
    leverage: int
    mmr: Decimal


def default_tiers(max_leverage: int) -> list[Tier]:
    return [Tier(1, Decimal(0), DEFAULT_END_VALUE, max_leverage, DEFAULT_MMR)]


def tiers_of(eng: Engine, symbol: str) -> list[Tier]:
    return eng.tiers.get(symbol) or default_tiers(eng.pair(symbol).max_leverage)


def max_notional(tiers: list[Tier], leverage: int) -> Decimal:
    """The largest position notional allowed at `leverage` (0 when no tier allows it)."""
    allowed = [t.end_value for t in tiers if t.leverage >= leverage]
    return max(allowed, default=Decimal(0))


def get_position_tiers(eng: Engine, p: dict[str, Any]) -> list[dict[str, Any]]:
    symbol = req_str(p, "symbol")
    return [
        {"symbol": symbol, "level": t.level, "startValue": fmt(t.start_value),
         "endValue": fmt(t.end_value), "leverage": t.leverage,
         "maintenanceMarginRate": fmt(t.mmr)}
        for t in tiers_of(eng, symbol)
    ]


def check(eng: Engine, symbol: str, fill_side: Side, qty: Decimal, price: Decimal | None,
          closing: bool, leverage: int) -> None:
    """Refuse (20002) an opening that takes the symbol's position on this side past the
    notional its leverage's tier allows, valued at the order's price (or the touch)."""
    valued = ledger.opening_at(eng, symbol, fill_side, qty, price, closing)
    if valued is None:
        return
    opening, ref = valued
    held = sum((pos.qty for pos in eng.state.open_positions(symbol)
                if pos.side.entry_side is fill_side), Decimal(0))
    limit = max_notional(tiers_of(eng, symbol), leverage)
    if (held + opening) * ref > limit:
        raise ExchangeError(E.RISK_LIMIT_EXCEEDED)


def parse_tiers(body: Any) -> list[Tier]:
    """The admin body's `tiers`: a list of {startValue, endValue, leverage,
    maintenanceMarginRate?}; raises ValueError naming the field."""
    if not isinstance(body, list) or not body:
        raise ValueError("tiers must be a non-empty list")
    out = []
    for i, raw in enumerate(body, start=1):
        if not isinstance(raw, dict):
            raise ValueError(f"tiers[{i}] must be an object")
        try:
            start = Decimal(str(raw.get("startValue", "0")))
            end = Decimal(str(raw["endValue"]))
            mmr = Decimal(str(raw.get("maintenanceMarginRate", DEFAULT_MMR)))
        except (KeyError, InvalidOperation) as exc:
            raise ValueError(f"tiers[{i}]: startValue/endValue/maintenanceMarginRate must be "
                             "decimals (endValue is required)") from exc
        leverage = raw.get("leverage")
        if isinstance(leverage, bool) or not isinstance(leverage, int) or leverage < 1:
            raise ValueError(f"tiers[{i}].leverage must be a positive integer")
        if not 0 <= start < end:
            raise ValueError(f"tiers[{i}]: need 0 <= startValue < endValue")
        out.append(Tier(i, start, end, leverage, mmr))
    return out
