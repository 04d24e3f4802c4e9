"""Random alerts for the precision fuzz: pure, seeded, Decimal only (no float anywhere).

Each alert is what a TradingView alert plus a strategy's defaults would give the trade
workflow: a symbol, an opening or a close, a sizing instruction, an order type and, for limit
orders, a raw price relative to the mark (often off the tick grid, sometimes exactly on the
band's edge or beyond it). Sizes span many decades around each pair's minimum so that the
minimum, the step, the per-order maxima and splitting are all exercised.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from decimal import Decimal, localcontext

from trading.rules import PairRules
from trading.sizing import SizingInstruction
from trading.types import OrderType, PositionSide

OPEN_SHARE = 65  # percent of alerts that open; the rest close an open position
PROTECT_SHARE = 35  # percent of openings that place a TP/SL once filled
MAX_TRIGGER_OFFSET = Decimal("0.3")  # TP/SL triggers up to 30 % from the mark
DEFAULT_SCOPE = Decimal("0.05")  # band to aim prices at when a pair gives none
FLOORS = (Decimal(1), Decimal(5), Decimal(10), Decimal(100))


@dataclass(frozen=True)
class FuzzAlert:
    index: int
    opening: bool
    # Openings: the pair and direction. Closes pick an open position when they run.
    symbol: str | None
    position_side: PositionSide | None
    order_type: OrderType
    # Seeds `price_offset` once the pair (and its band) is known; None for market orders.
    price_seed: int | None
    sizing: SizingInstruction | None
    leverage: int | None  # set on the symbol first when it has no exposure
    allow_split: bool
    notional_floor: Decimal | None
    close_fraction: Decimal | None  # of the position, for closes
    # Seeds the TP/SL placed once the opening filled; None: no protection.
    protect_seed: int | None = None


def chance(rng: random.Random, percent: int) -> bool:
    return rng.randrange(100) < percent


def decimal_between(rng: random.Random, low_exp: int, high_exp: int, digits: int) -> Decimal:
    """Log-uniform-ish: a value in [10^low_exp, 10^high_exp) with `digits` significant digits."""
    exponent = rng.randrange(low_exp, high_exp)
    mantissa = rng.randrange(10 ** (digits - 1), 10**digits)
    return Decimal(mantissa).scaleb(exponent - digits + 1)


def unit_fraction(rng: random.Random, digits: int = 12) -> Decimal:
    """A Decimal in (0, 1] with up to `digits` decimals."""
    return Decimal(rng.randrange(1, 10**digits + 1)).scaleb(-digits)


def price_offset(rng: random.Random, scope: Decimal | None) -> Decimal:
    """Where a raw limit price sits relative to the mark, as a ratio.

    Half inside the band, off the grid; some exactly on its edge (the bound is exact, the
    rounding must not push the price outward); some a hair inside or outside it; the rest
    well beyond it (a local refusal, never an exchange rejection)."""
    s = scope if scope is not None and scope > 0 else DEFAULT_SCOPE
    sign = 1 if chance(rng, 50) else -1
    roll = rng.randrange(100)
    with localcontext() as ctx:
        ctx.prec = 40
        if roll < 50:
            offset = s * unit_fraction(rng)
        elif roll < 65:
            offset = s
        elif roll < 80:
            nudge = Decimal(rng.randrange(1, 1000)).scaleb(-rng.randrange(7, 13))
            offset = s + nudge if chance(rng, 50) else s - nudge
        else:
            offset = s * (1 + 2 * unit_fraction(rng))
        return sign * offset


def sizing(rng: random.Random, rules: PairRules | None) -> SizingInstruction:
    kind = rng.randrange(3)
    if kind == 0:
        # Base quantity: 0.01x .. 10^7x the pair's minimum, up to 15 significant digits.
        base = rules.min_qty if rules is not None else Decimal(1)
        factor = decimal_between(rng, -2, 7, rng.randrange(1, 16))
        return SizingInstruction(size=base * factor)
    if kind == 1:
        return SizingInstruction(size_usdt=decimal_between(rng, -3, 9, rng.randrange(1, 13)))
    pct = decimal_between(rng, -5, 2, rng.randrange(1, 9))
    return SizingInstruction(size_pct=min(pct, Decimal(100)))


def generate(
    rng: random.Random, index: int, symbols: list[str], rules: dict[str, PairRules]
) -> FuzzAlert:
    """One alert. `symbols` is every pair of the pair file (tradable or not); `rules` those
    whose rules parsed (a pair missing from it is refused locally)."""
    order_type = OrderType.LIMIT if chance(rng, 50) else OrderType.MARKET
    price_seed = rng.randrange(2**32) if order_type is OrderType.LIMIT else None
    if not chance(rng, OPEN_SHARE):
        fraction = Decimal(1) if chance(rng, 40) else unit_fraction(rng, rng.randrange(1, 19))
        return FuzzAlert(
            index=index, opening=False, symbol=None, position_side=None,
            order_type=order_type, price_seed=price_seed, sizing=None, leverage=None,
            allow_split=False, notional_floor=None, close_fraction=fraction,
        )
    symbol = rng.choice(symbols)
    pair = rules.get(symbol)
    leverage = None
    if pair is not None and chance(rng, 50):
        leverage = rng.randint(pair.min_leverage, pair.max_leverage)
    return FuzzAlert(
        index=index,
        opening=True,
        symbol=symbol,
        position_side=PositionSide.LONG if chance(rng, 50) else PositionSide.SHORT,
        order_type=order_type,
        price_seed=price_seed,
        sizing=sizing(rng, pair),
        leverage=leverage,
        allow_split=chance(rng, 30),
        notional_floor=rng.choice(FLOORS) if chance(rng, 20) else None,
        close_fraction=None,
        protect_seed=rng.randrange(2**32) if chance(rng, PROTECT_SHARE) else None,
    )


def raw_limit_price(alert: FuzzAlert, mark: Decimal, scope: Decimal | None) -> Decimal:
    """mark * (1 + offset) for this alert and the pair's band, exact: not rounded to any grid
    (conforming is the pipeline's job)."""
    if alert.price_seed is None:
        raise ValueError(f"alert {alert.index} is a market order and has no price")
    offset = price_offset(random.Random(alert.price_seed), scope)
    with localcontext() as ctx:
        ctx.prec = 60
        return mark * (1 + offset)


@dataclass(frozen=True)
class Triggers:
    """Raw TP/SL trigger prices (either may be None), off the grid, usually on the right
    side of the mark for the position (a few on the wrong side: a local refusal)."""

    tp: Decimal | None
    sl: Decimal | None


def raw_triggers(alert: FuzzAlert, mark: Decimal, side: PositionSide) -> Triggers:
    if alert.protect_seed is None:
        raise ValueError(f"alert {alert.index} places no TP/SL")
    rng = random.Random(alert.protect_seed)
    legs = rng.choice(("tp", "sl", "both", "both"))
    up = 1 if side is PositionSide.LONG else -1

    def trigger(direction: int) -> Decimal:
        if chance(rng, 8):
            direction = -direction  # the wrong side of the mark
        offset = MAX_TRIGGER_OFFSET * unit_fraction(rng, rng.randrange(3, 15))
        with localcontext() as ctx:
            ctx.prec = 60
            return mark * (1 + direction * offset)

    tp = trigger(up) if legs in ("tp", "both") else None
    sl = trigger(-up) if legs in ("sl", "both") else None
    return Triggers(tp, sl)
