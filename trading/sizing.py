"""Quantity from an alert's sizing instruction, rounded and checked by trading.precision.

- `size`: base-asset quantity, as is;
- `size_usdt`: notional in the quote asset / price (the alert's reference price or the best
  price the entry will meet);
- `size_pct`: percent (5 means 5 %) of the available margin committed as initial margin, so
  notional = available * size_pct / 100 * leverage, with the leverage the trade will really
  have (the symbol's current leverage when it cannot be changed), then / price;
- `risk_pct`: percent of the account's equity the stop-loss loses if hit, both taker fees
  included: qty = equity * risk_pct / 100 / (|price - stop| + fee_rate * (price + stop)), the
  loss per unit being the price move plus the entry's fee (price * f) and the stop's
  (stop * f). It needs the stop (`risk_stop`: the alert's `sl`, or its `sl_pct` from `price`)
  on the loss side of `price`.
Divisions round toward zero before the quantity is rounded down to the step, so the order is
never larger than the instruction. Above the per-order maximum the quantity is refused, or split
where the strategy allows it; it is never sent as is. Closes use the trade's own filled
quantity, never the whole exchange position.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from decimal import ROUND_DOWN, ROUND_FLOOR, Decimal, localcontext

from trading.errors import InvalidSizing, RuleViolation, show
from trading.precision import (
    check_notional_floor,
    check_tradable,
    conform_qty,
    round_qty_down,
    snap,
    split_qty,
)
from trading.rules import PairRules
from trading.types import OrderType, PositionSide

_HUNDRED = Decimal(100)
_SIZINGS = ("size", "size_usdt", "size_pct", "risk_pct")


@dataclass(frozen=True, slots=True)
class SizingInstruction:
    """Exactly one of the four, a finite Decimal above zero (size_pct and risk_pct at most
    100)."""

    size: Decimal | None = None
    size_usdt: Decimal | None = None
    size_pct: Decimal | None = None
    risk_pct: Decimal | None = None

    def __post_init__(self) -> None:
        given = [f.name for f in fields(self) if getattr(self, f.name) is not None]
        if len(given) != 1:
            raise InvalidSizing(
                f"give exactly one of {', '.join(_SIZINGS)} "
                f"(got {', '.join(given) or 'none'}); set it in the alert or the strategy"
            )
        name = given[0]
        value = getattr(self, name)
        if not isinstance(value, Decimal) or not value.is_finite() or value <= 0:
            raise InvalidSizing(f"{name} must be a Decimal above zero, got {value!r}")
        if name == "size_pct" and value > _HUNDRED:
            raise InvalidSizing(
                f"size_pct {show(value)} commits more than the whole available margin; "
                "use at most 100"
            )
        if name == "risk_pct" and value > _HUNDRED:
            raise InvalidSizing(
                f"risk_pct {show(value)} risks more than the whole equity; use at most 100"
            )

    @property
    def kind(self) -> str:
        return next(f.name for f in fields(self) if getattr(self, f.name) is not None)


@dataclass(frozen=True, slots=True)
class EntrySize:
    """The conformed entry: `parts` are the orders to send (one unless split), `total` their
    exact sum."""

    total: Decimal
    parts: tuple[Decimal, ...]


def _divide_down(numerator: Decimal, denominator: Decimal) -> Decimal:
    with localcontext() as ctx:
        ctx.prec = 50
        ctx.rounding = ROUND_DOWN
        return numerator / denominator


def _need(name: str, value: object, kind: str) -> Decimal:
    if not isinstance(value, Decimal) or not value.is_finite() or value <= 0:
        raise InvalidSizing(f"{kind} sizing needs {name} as a Decimal above zero, got {value!r}")
    return value


@dataclass(frozen=True, slots=True)
class RiskInputs:
    """What risk_pct sizing needs besides the price: the account's equity (in the quote coin),
    the trade's side, the taker fee rate, and its stop-loss as asked (`sl`, a price, or
    `sl_pct`, a percent from the sizing price; at most one)."""

    equity: Decimal | None
    side: PositionSide
    fee_rate: Decimal
    sl: Decimal | None = None
    sl_pct: Decimal | None = None


def risk_stop(side: PositionSide, price: Decimal, sl: Decimal | None,
              sl_pct: Decimal | None) -> Decimal:
    """The stop-loss price a risk_pct entry is sized for: `sl`, or `sl_pct` percent from
    `price` on the loss side. InvalidSizing without one, or when it is not on the loss side of
    `price` (a long's below, a short's above): such a stop loses nothing to size by."""
    if sl is None and sl_pct is None:
        raise InvalidSizing(
            "risk_pct sizing needs a stop-loss: give sl or sl_pct in the alert (the size is "
            "what the stop loses if hit)"
        )
    if sl is not None and sl_pct is not None:
        raise InvalidSizing("risk_pct sizing takes sl or sl_pct, not both")
    if sl is None:
        assert sl_pct is not None
        pct = _need("sl_pct", sl_pct, "risk_pct")
        factor = _HUNDRED - pct if side is PositionSide.LONG else _HUNDRED + pct
        with localcontext() as ctx:
            ctx.prec = 60  # exact: a product of short decimals, then / 100
            stop = price * factor / _HUNDRED
    else:
        stop = sl
    if not isinstance(stop, Decimal) or not stop.is_finite() or stop <= 0:
        raise InvalidSizing(
            f"risk_pct sizing needs a stop-loss above zero, got {show(stop)} "
            f"(sl {show(sl)}, sl_pct {show(sl_pct)})"
        )
    below = side is PositionSide.LONG
    if (stop >= price) if below else (stop <= price):
        where = "below" if below else "above"
        raise InvalidSizing(
            f"risk_pct sizing: the stop-loss {show(stop)} is not {where} the entry price "
            f"{show(price)} of a {side.value.lower()} (a stop on that side loses nothing to "
            "size by)"
        )
    return stop


def loss_per_unit(price: Decimal, stop: Decimal, fee_rate: Decimal) -> Decimal:
    """What one unit of base loses, in the quote coin, if it enters at `price` and the stop
    fills at `stop`: the move plus the taker fee of both fills. Exact."""
    with localcontext() as ctx:
        ctx.prec = 60
        return abs(price - stop) + fee_rate * (price + stop)


def _risk_quantity(instruction: SizingInstruction, price: Decimal,
                   risk: RiskInputs | None) -> Decimal:
    if risk is None:
        raise InvalidSizing("risk_pct sizing needs the equity, the side and the fee rate")
    equity = risk.equity
    if not isinstance(equity, Decimal) or not equity.is_finite():
        raise InvalidSizing(f"risk_pct sizing needs the account's equity, got {equity!r}")
    if equity <= 0:
        raise InvalidSizing(f"risk_pct sizing: the account's equity is {show(equity)}; "
                            "there is nothing to risk")
    fee = risk.fee_rate
    if not isinstance(fee, Decimal) or not fee.is_finite() or not 0 <= fee < 1:
        raise InvalidSizing(f"risk_pct sizing needs a fee rate in [0, 1), got {fee!r}")
    stop = risk_stop(risk.side, price, risk.sl, risk.sl_pct)
    assert instruction.risk_pct is not None
    with localcontext() as ctx:
        ctx.prec = 60
        budget = equity * instruction.risk_pct / _HUNDRED
    return _divide_down(budget, loss_per_unit(price, stop, fee))


def raw_quantity(
    instruction: SizingInstruction,
    *,
    price: Decimal | None,
    leverage: int | None = None,
    available_margin: Decimal | None = None,
    risk: RiskInputs | None = None,
) -> Decimal:
    """The unrounded base quantity the instruction asks for (see the module docstring)."""
    kind = instruction.kind
    if instruction.size is not None:
        return instruction.size
    unit_price = _need("price", price, kind)
    if instruction.size_usdt is not None:
        return _divide_down(instruction.size_usdt, unit_price)
    if instruction.risk_pct is not None:
        return _risk_quantity(instruction, unit_price, risk)
    if type(leverage) is not int or leverage < 1:
        raise InvalidSizing(f"size_pct sizing needs the leverage (an int >= 1), got {leverage!r}")
    available = _need("available_margin", available_margin, kind)
    assert instruction.size_pct is not None
    with localcontext() as ctx:
        ctx.prec = 50
        notional = available * instruction.size_pct * leverage / _HUNDRED
    return _divide_down(notional, unit_price)


def entry_quantity(
    rules: PairRules,
    instruction: SizingInstruction,
    *,
    order_type: OrderType,
    price: Decimal | None,
    leverage: int | None = None,
    available_margin: Decimal | None = None,
    risk: RiskInputs | None = None,
    notional_floor: Decimal | None = None,
    allow_split: bool = False,
    max_parts: int = 20,
) -> EntrySize:
    """Size an opening: raw quantity, rounded down, minimum, maximum (refused, or split when
    `allow_split`), status, and the strategy's notional floor (each part must reach it; it
    needs `price`). Raises RuleViolation or InvalidSizing; never returns zero. A risk_pct
    size that breaks a rule says what it was sized from."""
    check_tradable(rules, reducing=False)
    raw = raw_quantity(instruction, price=price, leverage=leverage,
                       available_margin=available_margin, risk=risk)
    if instruction.risk_pct is not None:
        # A quotient of 50 digits reads badly in a refusal; four digits past the step round
        # down to the same quantity (the step is a multiple of the finer grid). Kept as is
        # when that is zero, so the refusal still names the minimum.
        raw = snap(raw, rules.qty_step.scaleb(-4), ROUND_FLOOR) or raw
    try:
        if allow_split:
            parts = split_qty(rules, raw, order_type, reducing=False, max_parts=max_parts)
        else:
            parts = [conform_qty(rules, raw, order_type=order_type, reducing=False)]
        if notional_floor is not None:
            check_notional_floor(rules, parts[-1], _need("price", price, "a notional floor"),
                                 notional_floor)
    except RuleViolation as exc:
        if instruction.risk_pct is None or risk is None:
            raise
        assert price is not None
        stop = risk_stop(risk.side, price, risk.sl, risk.sl_pct)
        raise RuleViolation(
            rule=exc.rule, value=exc.value, limit=exc.limit,
            message=f"{exc.message.removeprefix(exc.rule + ': ')} (risk_pct "
            f"{show(instruction.risk_pct)} % of the equity {show(risk.equity)} {rules.quote}, "
            f"entry {show(price)}, stop {show(stop)}, fees included)",
        ) from exc
    return EntrySize(total=sum(parts, Decimal(0)).quantize(rules.qty_step), parts=tuple(parts))


def close_qty(rules: PairRules, own_filled: Decimal, position_qty: Decimal) -> Decimal:
    """What closing a trade sends in total: its own filled quantity, capped by what the
    exchange position still holds, on the grid. No minimum applies (reduce-only). A zero
    position means there is nothing to close: the trade is over, do not call this."""
    for name, value in (("own_filled", own_filled), ("position_qty", position_qty)):
        if not isinstance(value, Decimal) or not value.is_finite() or value < 0:
            raise InvalidSizing(f"{name} must be a Decimal >= 0, got {value!r}")
    wanted = min(own_filled, position_qty)
    if wanted == 0:
        raise InvalidSizing(
            f"nothing to close on {rules.symbol}: own filled {show(own_filled)}, position "
            f"{show(position_qty)}; a zero position ends the trade"
        )
    rounded = round_qty_down(rules, wanted)
    if rounded == 0:
        raise RuleViolation(
            rule="qty_step", value=wanted, limit=rules.qty_step,
            message=f"{show(wanted)} {rules.base} to close is below one step "
            f"{show(rules.qty_step)} of the pair and cannot be sent",
        )
    return rounded


def close_parts(
    rules: PairRules,
    own_filled: Decimal,
    position_qty: Decimal,
    order_type: OrderType,
    *,
    max_parts: int = 20,
) -> list[Decimal]:
    """`close_qty` split into reduce-only orders within the per-order maximum (a close is
    always split rather than refused)."""
    total = close_qty(rules, own_filled, position_qty)
    return split_qty(rules, total, order_type, reducing=True, max_parts=max_parts)
