"""Partial exits (trading/partial.py): a part is on the step, never more than asked or owned,
never leaves less than the pair's minimum, and a refusal is a part really below the minimum.
The reference is exact rational arithmetic (Fraction), independent of the Decimal code."""

from __future__ import annotations

import math
from decimal import Decimal
from fractions import Fraction as F

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.trading.factories import btc, doge, pair_rules, positive_decimals
from trading.errors import InvalidSizing, RuleViolation
from trading.partial import part_to_close, share_oldest_first
from trading.rules import PairRules

D = Decimal
pcts = st.decimals(min_value=D("0.01"), max_value=D("100"), places=2)


def on_step(rules: PairRules, owned_steps: int) -> Decimal:
    return (rules.qty_step * owned_steps).quantize(rules.qty_step)


def floor_to(value: F, step: Decimal) -> F:
    return math.floor(value / F(step)) * F(step)


@given(rules=pair_rules(), steps=st.integers(1, 10**7), pct=pcts)
def test_a_pct_part_is_on_the_step_within_what_is_owned_and_leaves_at_least_the_minimum(
    rules: PairRules, steps: int, pct: Decimal
) -> None:
    owned = on_step(rules, steps)
    asked = F(owned) * F(pct) / 100
    try:
        part = part_to_close(rules, owned, pct=pct)
    except RuleViolation as exc:
        assert exc.rule == "min_qty"
        assert floor_to(asked, rules.qty_step) < F(rules.min_qty)
        return
    if part is None:  # everything: asked for all of it, or a rest below the minimum
        assert asked >= F(owned) or F(owned) - floor_to(asked, rules.qty_step) < F(rules.min_qty)
        return
    assert F(part) == floor_to(asked, rules.qty_step)
    assert rules.min_qty <= part < owned
    assert owned - part >= rules.min_qty


@given(rules=pair_rules(), steps=st.integers(1, 10**7), qty=positive_decimals(max_value=10**4))
def test_a_base_part_never_closes_more_than_asked_or_owned(
    rules: PairRules, steps: int, qty: Decimal
) -> None:
    owned = on_step(rules, steps)
    try:
        part = part_to_close(rules, owned, qty=qty)
    except RuleViolation:
        assert floor_to(F(qty), rules.qty_step) < F(rules.min_qty)
        return
    if part is not None:
        assert part <= qty and part < owned and part % rules.qty_step == 0


def test_examples() -> None:
    r = btc()  # step and minimum 0.0001
    assert part_to_close(r, D("0.03"), pct=D("50")) == D("0.0150")
    assert part_to_close(r, D("0.03"), pct=D("100")) is None
    assert part_to_close(r, D("0.03"), qty=D("0.01")) == D("0.0100")
    assert part_to_close(r, D("0.03"), qty=D("0.05")) is None  # more than owned: everything
    assert part_to_close(r, D("0.0003"), pct=D("50")) == D("0.0001")  # 0.00015 down to the step
    assert part_to_close(r, D("0.03"), qty=D("0.02999")) == D("0.0299")  # down to the step
    d = doge()  # step 1, minimum 53
    with pytest.raises(RuleViolation, match="min_qty: the partial exit of 50 DOGE"):
        part_to_close(d, D("100"), qty=D("50"))
    assert part_to_close(d, D("100"), qty=D("60")) is None  # 40 left < 53: everything
    assert part_to_close(d, D("200"), pct=D("30")) == D("60")
    with pytest.raises(InvalidSizing):
        part_to_close(r, D("0.03"), qty=D("0.01"), pct=D("10"))
    with pytest.raises(InvalidSizing):
        part_to_close(r, D("0"), pct=D("10"))


@given(size=positive_decimals(max_value=100),
       owned=st.lists(st.none() | positive_decimals(max_value=100), min_size=1, max_size=5))
def test_a_base_size_is_shared_oldest_first_and_wholly(size: Decimal, owned: list) -> None:
    shares = share_oldest_first(size, owned)
    assert len(shares) == len(owned) and sum(shares) == size and all(s >= 0 for s in shares)
    for i, (share, qty) in enumerate(zip(shares, owned, strict=True)):
        if i < len(owned) - 1:
            assert share <= (qty or 0)
        if share < (qty or 0):  # this one is not used up: no later one gets anything
            assert all(s == 0 for s in shares[i + 1:])


def test_sharing_examples() -> None:
    assert share_oldest_first(D("0.015"), [D("0.01"), D("0.01")]) == [D("0.01"), D("0.005")]
    assert share_oldest_first(D("0.005"), [D("0.01"), D("0.01")]) == [D("0.005"), D("0")]
    assert share_oldest_first(D("0.03"), [D("0.01"), None]) == [D("0.01"), D("0.02")]
