from __future__ import annotations

from decimal import Decimal
from fractions import Fraction as F

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.trading.factories import btc, doge, pair_rules, positive_decimals
from trading.errors import InvalidSizing, RuleViolation
from trading.rules import PairRules
from trading.sizing import (
    SizingInstruction,
    close_parts,
    close_qty,
    entry_quantity,
    raw_quantity,
)
from trading.types import OrderType, PairStatus

D = Decimal
MARKET, LIMIT = OrderType.MARKET, OrderType.LIMIT
PRICE = D("50000")


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"size": D(1), "size_usdt": D(1)},
        {"size": 1.0},
        {"size": "1"},
        {"size_usdt": D(0)},
        {"size_pct": D(-5)},
        {"size_pct": D("100.01")},
        {"size": D("NaN")},
        {"size": D("Inf")},
    ],
)
def test_instruction_needs_exactly_one_positive_decimal(kwargs: dict[str, object]) -> None:
    with pytest.raises(InvalidSizing):
        SizingInstruction(**kwargs)  # type: ignore[arg-type]


def test_instruction_kind() -> None:
    assert SizingInstruction(size_pct=D(100)).kind == "size_pct"
    assert SizingInstruction(size=D("0.1")).kind == "size"


@pytest.mark.parametrize(
    ("instruction", "price", "leverage", "available", "expected"),
    [
        (SizingInstruction(size=D("0.123")), None, None, None, "0.123"),
        (SizingInstruction(size_usdt=D("1000")), PRICE, None, None, "0.02"),
        (SizingInstruction(size_pct=D("5")), PRICE, 10, D("1000"), "0.01"),
        (SizingInstruction(size_pct=D("100")), D("2"), 1, D("3"), "1.5"),
    ],
)
def test_raw_quantity(
    instruction: SizingInstruction,
    price: Decimal | None,
    leverage: int | None,
    available: Decimal | None,
    expected: str,
) -> None:
    qty = raw_quantity(instruction, price=price, leverage=leverage, available_margin=available)
    assert qty == D(expected)


def test_division_rounds_toward_zero() -> None:
    qty = raw_quantity(SizingInstruction(size_usdt=D("100")), price=D("3"))
    assert qty < F(100, 3) and F(100, 3) - F(qty) < F(1, 10**40)
    assert entry_quantity(
        btc(), SizingInstruction(size_usdt=D("100")), order_type=MARKET, price=D("3")
    ).total == D("33.3333")


@pytest.mark.parametrize(
    ("instruction", "kwargs", "match"),
    [
        (SizingInstruction(size_usdt=D(1)), {"price": None}, "price"),
        (SizingInstruction(size_usdt=D(1)), {"price": D(0)}, "price"),
        (
            SizingInstruction(size_pct=D(1)),
            {"price": PRICE, "leverage": None, "available_margin": D(1)},
            "leverage",
        ),
        (
            SizingInstruction(size_pct=D(1)),
            {"price": PRICE, "leverage": True, "available_margin": D(1)},
            "leverage",
        ),
        (
            SizingInstruction(size_pct=D(1)),
            {"price": PRICE, "leverage": 5, "available_margin": D(0)},
            "available_margin",
        ),
    ],
)
def test_missing_inputs(
    instruction: SizingInstruction, kwargs: dict[str, object], match: str
) -> None:
    with pytest.raises(InvalidSizing, match=match):
        raw_quantity(instruction, **kwargs)  # type: ignore[arg-type]


def test_entry_checks_minimum_maximum_status_and_floor() -> None:
    with pytest.raises(RuleViolation, match="min_qty"):
        entry_quantity(btc(), SizingInstruction(size_usdt=D("4")), order_type=MARKET, price=PRICE)
    with pytest.raises(RuleViolation, match="max_market_qty"):
        entry_quantity(btc(), SizingInstruction(size=D("60000")), order_type=MARKET, price=None)
    with pytest.raises(RuleViolation, match="status"):
        entry_quantity(
            btc(status=PairStatus.STOP), SizingInstruction(size=D(1)), order_type=MARKET, price=None
        )
    with pytest.raises(RuleViolation, match="notional_floor"):
        entry_quantity(
            btc(),
            SizingInstruction(size_usdt=D("9.99")),
            order_type=MARKET,
            price=PRICE,
            notional_floor=D("10"),
        )
    with pytest.raises(InvalidSizing, match="notional floor"):
        entry_quantity(
            btc(),
            SizingInstruction(size=D(1)),
            order_type=MARKET,
            price=None,
            notional_floor=D("10"),
        )
    sized = entry_quantity(
        btc(),
        SizingInstruction(size_usdt=D("10")),
        order_type=MARKET,
        price=PRICE,
        notional_floor=D("10"),
    )
    assert sized.total == D("0.0002") and sized.parts == (D("0.0002"),)


def test_entry_splits_only_when_allowed() -> None:
    sized = entry_quantity(
        btc(), SizingInstruction(size=D("120000")), order_type=MARKET, price=None, allow_split=True
    )
    assert sized.parts == (D(40000),) * 3 and sized.total == D(120000)
    sized = entry_quantity(
        btc(), SizingInstruction(size=D("120000")), order_type=LIMIT, price=None, allow_split=True
    )
    assert sized.parts == (D(60000),) * 2
    with pytest.raises(RuleViolation, match="max_parts"):
        entry_quantity(
            btc(),
            SizingInstruction(size=D("120000")),
            order_type=MARKET,
            price=None,
            allow_split=True,
            max_parts=2,
        )


def test_doge_minimum_53() -> None:
    with pytest.raises(RuleViolation, match="min_qty: 52.9 DOGE .*below the pair's minimum 53"):
        entry_quantity(doge(), SizingInstruction(size=D("52.9")), order_type=MARKET, price=None)
    assert entry_quantity(
        doge(), SizingInstruction(size_usdt=D("10")), order_type=MARKET, price=D("0.1234567")
    ).total == D(81)


@given(
    rules=pair_rules(),
    amount=positive_decimals(max_places=4, max_value=10**6),
    price=positive_decimals(max_places=8, max_value=10**5),
    leverage=st.integers(1, 125),
    kind=st.sampled_from(["size", "size_usdt", "size_pct"]),
)
def test_entries_never_exceed_the_instruction(
    rules: PairRules, amount: Decimal, price: Decimal, leverage: int, kind: str
) -> None:
    if kind == "size_pct":
        amount = min(amount, D(100))
    instruction = SizingInstruction(**{kind: amount})
    available = D("12345.67")
    try:
        sized = entry_quantity(
            rules,
            instruction,
            order_type=MARKET,
            price=price,
            leverage=leverage,
            available_margin=available,
            allow_split=True,
        )
    except RuleViolation:
        return
    assert sized.total > 0 and sum(sized.parts) == sized.total
    limit = {
        "size": F(amount),
        "size_usdt": F(amount) / F(price),
        "size_pct": F(available) * F(amount) / 100 * leverage / F(price),
    }[kind]
    assert F(sized.total) <= limit and limit - F(sized.total) < F(rules.qty_step)


@pytest.mark.parametrize(
    ("own", "position", "expected"),
    [(D("0.5"), D("0.3"), "0.3000"), (D("0.3"), D("1"), "0.3000"), (D("0.0001"), D("5"), "0.0001")],
)
def test_close_uses_the_trades_own_quantity(own: Decimal, position: Decimal, expected: str) -> None:
    assert format(close_qty(btc(), own, position), "f") == expected


def test_close_ignores_the_opening_minimum_but_never_sends_zero() -> None:
    assert close_qty(doge(), D(10), D(1000)) == D(10)
    with pytest.raises(InvalidSizing, match="nothing to close"):
        close_qty(btc(), D("0.5"), D(0))
    with pytest.raises(RuleViolation, match="qty_step"):
        close_qty(btc(), D("0.00005"), D(1))
    with pytest.raises(InvalidSizing):
        close_qty(btc(), D("-1"), D(1))


def test_a_large_close_is_split_not_refused() -> None:
    assert close_parts(btc(), D("120000"), D("200000"), MARKET) == [D(40000)] * 3
    assert close_parts(doge(), D(10), D(10), MARKET) == [D(10)]
