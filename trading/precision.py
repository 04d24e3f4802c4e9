"""The one place an order is conformed to its pair's rules before it leaves.

Rounding, exactly (all in Decimal, as whole multiples of the step, never via float or strings):
- quantity: DOWN to the quantity step, so an order never grows;
- limit price (entry, exit, chase): to the PASSIVE side of the direction the order fills in,
  a buy DOWN and a sell UP, so it never pays more (or sells for less) than asked;
- take-profit and stop-loss trigger prices: passive for the fill side of the closing order,
  i.e. UP for a long's TP/SL and DOWN for a short's: a TP never exits for less than asked and
  a stop never sits farther from the entry than asked (it may trigger one tick sooner);
- a marketable price (a limit meant to cross the book now, e.g. an IOC exit at the touch):
  AGGRESSIVE, a buy UP and a sell DOWN, so it still crosses at the asked level.
A bound on a price (band, offsets, slippage cap) is never rounded outward: a violation is
decided against the exact bound, after the price was rounded.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal, localcontext
from enum import StrEnum
from typing import TYPE_CHECKING

from trading.errors import InvalidOrderRequest, RuleViolation, show
from trading.types import OrderType, PositionSide, Side

if TYPE_CHECKING:
    from trading.rules import PairRules


class PriceKind(StrEnum):
    LIMIT = "LIMIT"
    TAKE_PROFIT = "TAKE_PROFIT"
    STOP_LOSS = "STOP_LOSS"
    MARKETABLE = "MARKETABLE"


@dataclass(frozen=True, slots=True)
class ConformedOrder:
    """A quantity and (for limits) a price on the pair's grid that passed every check."""

    qty: Decimal
    price: Decimal | None


def _exact_context(*values: Decimal) -> int:
    """A precision large enough that products and integer quotients of these are exact."""
    digits = sum(len(v.as_tuple().digits) + abs(int(v.as_tuple().exponent)) for v in values)
    return max(28, digits + 10)


def snap(value: Decimal, step: Decimal, rounding: str) -> Decimal:
    """The whole multiple of `step` next to `value` in direction `rounding` (ROUND_FLOOR or
    ROUND_CEILING), exactly, carrying the step's exponent (so 53 on step 1 renders "53")."""
    if not (value.is_finite() and value >= 0 and step.is_finite() and step > 0):
        raise ValueError(f"snap needs a finite value >= 0 and step > 0, got {value}, {step}")
    if rounding not in (ROUND_FLOOR, ROUND_CEILING):
        raise ValueError(f"snap rounds only ROUND_FLOOR or ROUND_CEILING, not {rounding}")
    with localcontext() as ctx:
        ctx.prec = _exact_context(value, step)
        units, remainder = divmod(value, step)  # integer quotient, exact (value >= 0)
        if remainder and rounding == ROUND_CEILING:
            units += 1
        return (units * step).quantize(step)


def _mul(a: Decimal, b: Decimal) -> Decimal:
    with localcontext() as ctx:
        ctx.prec = _exact_context(a, b)
        return a * b


_ABSURD = Decimal("1E+30")  # no real quantity or price; bounds the cost of exact arithmetic


def _positive(name: str, value: object) -> Decimal:
    if not isinstance(value, Decimal) or not value.is_finite() or value <= 0:
        raise InvalidOrderRequest(f"{name} must be a finite Decimal above zero, got {value!r}")
    if value > _ABSURD or value.adjusted() < -_ABSURD.adjusted():
        raise InvalidOrderRequest(f"{name} {value!r} is outside any real market (1E-30 .. 1E+30)")
    return value


def round_qty_down(rules: PairRules, qty: Decimal) -> Decimal:
    """`qty` rounded DOWN to the pair's quantity step; may be zero (callers check)."""
    return snap(_positive("qty", qty), rules.qty_step, ROUND_FLOOR)


def round_price_passive(rules: PairRules, price: Decimal, fill_side: Side) -> Decimal:
    """Buy DOWN, sell UP to the tick: never more aggressive than asked."""
    rounding = ROUND_FLOOR if fill_side is Side.BUY else ROUND_CEILING
    return snap(_positive("price", price), rules.price_tick, rounding)


def round_price_aggressive(rules: PairRules, price: Decimal, fill_side: Side) -> Decimal:
    """Buy UP, sell DOWN to the tick: never less aggressive than asked."""
    rounding = ROUND_CEILING if fill_side is Side.BUY else ROUND_FLOOR
    return snap(_positive("price", price), rules.price_tick, rounding)


def round_price(rules: PairRules, price: Decimal, *, fill_side: Side, kind: PriceKind) -> Decimal:
    """Round a price by kind (module docstring); for TP/SL pass the closing order's fill side.
    A positive price that rounds to zero is refused, never sent."""
    if kind is PriceKind.MARKETABLE:
        rounded = round_price_aggressive(rules, price, fill_side)
    else:
        rounded = round_price_passive(rules, price, fill_side)
    if rounded == 0:
        raise RuleViolation(
            rule="price_tick", value=price, limit=rules.price_tick,
            message=f"{kind.lower()} price {show(price)} {rules.quote} rounds to zero on the "
            f"pair's tick {show(rules.price_tick)}",
        )
    return rounded


def check_tradable(rules: PairRules, *, reducing: bool) -> None:
    """OPEN (and API-enabled) for openings; CANCEL_ONLY also allows reduce-only closes."""
    if not rules.api_supported:
        raise RuleViolation(
            rule="api_supported", value=False, limit=True,
            message=f"{rules.symbol} cannot be traded through the API (isApiSupported=false)",
        )
    allowed = rules.tradable_for_close if reducing else rules.tradable_for_open
    if not allowed:
        need = "OPEN or CANCEL_ONLY" if reducing else "OPEN"
        what = "a reduce-only close" if reducing else "an opening"
        raise RuleViolation(
            rule="status", value=rules.status, limit=need,
            message=f"{rules.symbol} is {rules.status.value}; {what} needs {need}",
        )


def _rounded_qty(rules: PairRules, qty: Decimal, *, reducing: bool) -> Decimal:
    rounded = round_qty_down(rules, qty)
    shown = f"{show(qty)} {rules.base}"
    if rounded not in (qty, 0):
        shown += f" (rounds down to {show(rounded)})"
    if not reducing and rounded < rules.min_qty:
        raise RuleViolation(
            rule="min_qty", value=qty, limit=rules.min_qty,
            message=f"{shown} is below the pair's minimum {show(rules.min_qty)} for an opening",
        )
    if rounded == 0:
        raise RuleViolation(
            rule="qty_step", value=qty, limit=rules.qty_step,
            message=f"{shown} is below one step {show(rules.qty_step)} of the pair",
        )
    return rounded


def conform_qty(
    rules: PairRules, qty: Decimal, *, order_type: OrderType, reducing: bool
) -> Decimal:
    """Round down; then min (openings only), never zero, and the per-order-type maximum."""
    rounded = _rounded_qty(rules, qty, reducing=reducing)
    limit = rules.max_qty(order_type)
    if rounded > limit:
        raise RuleViolation(
            rule=f"max_{order_type.value.lower()}_qty", value=rounded, limit=limit,
            message=f"{show(rounded)} {rules.base} exceeds the pair's maximum {show(limit)} per "
            f"{order_type.value} order; reduce the size or allow splitting",
        )
    return rounded


def price_bounds(
    rules: PairRules, fill_side: Side, mark_price: Decimal
) -> tuple[Decimal | None, Decimal | None]:
    """(lowest, highest) price the pair accepts for this fill side around `mark_price`,
    exact (not rounded); None where no bound is known.

    Interpretation of BitUnix's fields (doc example 0.02, -0.95, 100): priceProtectScope caps a
    buy at mark*(1+s) and floors a sell at mark*(1-s); minBuyPriceOffset floors a buy at
    mark*(1+offset); maxSellPriceOffset caps a sell at mark*(1+offset). Offsets are ratios to the
    mark price, as the negative buy example only makes sense that way."""
    mark = _positive("mark_price", mark_price)
    scope, one = rules.price_protect_scope, Decimal(1)
    if fill_side is Side.BUY:
        offset = rules.min_buy_price_offset
        low = None if offset is None else _mul(mark, one + offset)
        high = None if scope is None else _mul(mark, one + scope)
    else:
        offset = rules.max_sell_price_offset
        low = None if scope is None else _mul(mark, one - scope)
        high = None if offset is None else _mul(mark, one + offset)
    return low, high


def check_price_band(
    rules: PairRules, price: Decimal, fill_side: Side, mark_price: Decimal
) -> None:
    """RuleViolation when `price` (already on the tick) is outside `price_bounds`."""
    low, high = price_bounds(rules, fill_side, mark_price)
    verb = fill_side.value.lower()
    mark = show(mark_price)
    if fill_side is Side.BUY:
        low_rule, high_rule = "min_buy_price_offset", "price_protect_scope"
    else:
        low_rule, high_rule = "price_protect_scope", "max_sell_price_offset"
    if high is not None and price > high:
        raise RuleViolation(
            rule=high_rule, value=price, limit=high,
            message=f"{verb} price {show(price)} is above the pair's maximum {show(high)} "
            f"({high_rule} around mark {mark})",
        )
    if low is not None and price < low:
        raise RuleViolation(
            rule=low_rule, value=price, limit=low,
            message=f"{verb} price {show(price)} is below the pair's minimum {show(low)} "
            f"({low_rule} around mark {mark})",
        )


def check_notional_floor(rules: PairRules, qty: Decimal, price: Decimal, floor: Decimal) -> None:
    """A strategy's own minimum notional (BitUnix has none)."""
    notional = _mul(qty, price)
    if notional < _positive("notional_floor", floor):
        raise RuleViolation(
            rule="notional_floor", value=notional, limit=floor,
            message=f"notional {show(notional)} {rules.quote} ({show(qty)} {rules.base} at "
            f"{show(price)}) is below the strategy's floor {show(floor)} {rules.quote}",
        )


def conform_order(
    rules: PairRules,
    *,
    fill_side: Side,
    qty: Decimal,
    order_type: OrderType,
    price: Decimal | None,
    mark_price: Decimal | None,
    reducing: bool,
    notional_floor: Decimal | None = None,
) -> ConformedOrder:
    """Round and check one order, or raise RuleViolation naming the rule it breaks.

    `fill_side` is the direction the order really fills in (trading.orders gives it).
    `price` is required for LIMIT and must be None for MARKET. The band checks need
    `mark_price`; without it they are skipped (pass it whenever it is known). The notional
    floor applies to openings only (a close is never refused for being small) and values a
    market order at `mark_price`."""
    check_tradable(rules, reducing=reducing)
    conformed_qty = conform_qty(rules, qty, order_type=order_type, reducing=reducing)
    conformed_price: Decimal | None = None
    if order_type is OrderType.LIMIT:
        if price is None:
            raise InvalidOrderRequest(f"a LIMIT order on {rules.symbol} needs a price")
        conformed_price = round_price(rules, price, fill_side=fill_side, kind=PriceKind.LIMIT)
        if mark_price is not None:
            check_price_band(rules, conformed_price, fill_side, mark_price)
    elif price is not None:
        raise InvalidOrderRequest(f"a MARKET order on {rules.symbol} carries no price")
    if notional_floor is not None and not reducing:
        valued_at = conformed_price if conformed_price is not None else mark_price
        if valued_at is None:
            raise InvalidOrderRequest("a notional floor on a MARKET order needs mark_price")
        check_notional_floor(rules, conformed_qty, valued_at, notional_floor)
    return ConformedOrder(qty=conformed_qty, price=conformed_price)


def split_qty(
    rules: PairRules,
    qty: Decimal,
    order_type: OrderType,
    *,
    reducing: bool = False,
    max_parts: int = 20,
) -> list[Decimal]:
    """Round `qty` down and split it into as few near-equal parts as the per-order maximum
    allows (largest first). The parts sum exactly to the rounded quantity, are on the grid,
    and for openings each is >= the minimum, or RuleViolation."""
    rounded = _rounded_qty(rules, qty, reducing=reducing)
    step, limit = rules.qty_step, rules.max_qty(order_type)
    with localcontext() as ctx:
        ctx.prec = _exact_context(rounded, limit, step)
        units, per_part = int(rounded / step), int(limit / step)
        count = -(-units // per_part)
        if count > max_parts:
            raise RuleViolation(
                rule="max_parts", value=count, limit=max_parts,
                message=f"{show(rounded)} {rules.base} needs {count} {order_type.value} orders "
                f"of at most {show(limit)}; the limit is {max_parts}",
            )
        small, extra = divmod(units, count)
        parts = [((Decimal(small + 1) if i < extra else Decimal(small)) * step).quantize(step)
                 for i in range(count)]
    if not reducing and parts[-1] < rules.min_qty:
        raise RuleViolation(
            rule="min_qty", value=parts[-1], limit=rules.min_qty,
            message=f"splitting {show(rounded)} {rules.base} into {count} orders leaves parts "
            f"of {show(parts[-1])}, below the pair's minimum {show(rules.min_qty)}",
        )
    return parts


def conform_trigger(
    rules: PairRules,
    *,
    kind: PriceKind,
    position_side: PositionSide,
    price: Decimal,
    reference_price: Decimal | None,
) -> Decimal:
    """Round a TP or SL trigger price for a position, and check it lies on the right side of
    `reference_price` (mark or last, whichever the stop watches) when given: a long's TP above
    and SL below it, a short's the other way round."""
    if kind not in (PriceKind.TAKE_PROFIT, PriceKind.STOP_LOSS):
        raise InvalidOrderRequest(f"conform_trigger takes TAKE_PROFIT or STOP_LOSS, not {kind}")
    rounded = round_price(rules, price, fill_side=position_side.exit_side, kind=kind)
    if reference_price is None:
        return rounded
    ref = _positive("reference_price", reference_price)
    above = (kind is PriceKind.TAKE_PROFIT) == (position_side is PositionSide.LONG)
    if (rounded <= ref) if above else (rounded >= ref):
        rule = "tp_price" if kind is PriceKind.TAKE_PROFIT else "sl_price"
        where = "above" if above else "below"
        raise RuleViolation(
            rule=rule, value=rounded, limit=ref,
            message=f"{kind.value.lower()} {show(rounded)} for a {position_side.value} position "
            f"must be {where} the current price {show(ref)}",
        )
    return rounded

