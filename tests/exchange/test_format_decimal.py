from __future__ import annotations

import re
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from exchange.parse import format_decimal

PLAIN = re.compile(r"^-?(0|[1-9][0-9]*)(\.[0-9]*[1-9])?$")

finite = st.decimals(allow_nan=False, allow_infinity=False)
# Exponents far beyond any exchange value, to catch context-precision rounding.
wide = st.builds(
    lambda digits, exp, neg: Decimal((neg, tuple(digits), exp)),
    st.lists(st.integers(0, 9), min_size=1, max_size=60),
    st.integers(-40, 40),
    st.integers(0, 1),
)


@given(st.one_of(finite, wide))
def test_renders_plain_digits_that_parse_back_to_the_same_value(d: Decimal) -> None:
    text = format_decimal(d)
    assert PLAIN.match(text), text
    assert "E" not in text.upper()
    assert Decimal(text) == d


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("1E-8", "0.00000001"),
        ("0E-8", "0"),
        ("-0", "0"),
        ("-0.000", "0"),
        ("65000.10", "65000.1"),
        ("1E+3", "1000"),
        ("100", "100"),
        ("0.0001", "0.0001"),
        ("-0.95", "-0.95"),
        ("123456789012345678901234567890.123456789", "123456789012345678901234567890.123456789"),
    ],
)
def test_known_renderings(value: str, text: str) -> None:
    assert format_decimal(Decimal(value)) == text


@pytest.mark.parametrize("bad", [Decimal("NaN"), Decimal("Infinity"), Decimal("-Infinity")])
def test_refuses_non_finite(bad: Decimal) -> None:
    with pytest.raises(ValueError):
        format_decimal(bad)


@pytest.mark.parametrize("bad", [0.1, 1, "1"])
def test_refuses_anything_but_decimal(bad: object) -> None:
    with pytest.raises(TypeError):
        format_decimal(bad)  # type: ignore[arg-type]
