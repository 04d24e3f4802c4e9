"""Parsing the alert body: Decimal all the way, unknown fields named, nothing secret stored."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from webhook.schemas import (
    MAX_NUMBER_CHARS,
    UNKNOWN_VALUE,
    AlertRefused,
    body_hash,
    dedupe_key,
    parse_json,
    stored_body,
    validate,
)

BASE = {"secret": "s" * 24, "strategy": "demo", "ticker": "BTCUSDT", "action": "buy"}


def _alert(**fields):
    return validate(parse_json(json.dumps({**BASE, **fields}).encode()))


@given(
    st.decimals(
        allow_nan=False, allow_infinity=False, min_value=Decimal("1e-12"), max_value=Decimal("1e12")
    )
)
def test_numbers_parse_to_the_same_decimal_as_numbers_or_strings(value: Decimal) -> None:
    text = format(value, "f")
    raw = json.dumps({**BASE, "price": "PRICE"}).replace('"PRICE"', text)  # a bare JSON number
    if len(text) > MAX_NUMBER_CHARS or len(value.normalize().as_tuple().digits) > 20:
        # More digits than any pair has (issue 20): refused either way, naming the field.
        for parse in (lambda: validate(parse_json(raw.encode())), lambda: _alert(price=text)):
            with pytest.raises(AlertRefused, match="field 'price'"):
                parse()
        return
    as_number = validate(parse_json(raw.encode()))
    as_string = _alert(price=text)
    assert as_number.price == as_string.price == Decimal(text)
    assert str(as_number.price) == str(Decimal(text))  # digits kept: no float on the way


def test_integers_and_trailing_zeros_stay_exact() -> None:
    alert = validate(
        parse_json(
            b'{"secret":"ssssssssssssssssssssssss","strategy":"d","ticker":"X","action":"buy","size":1,"price":65000.10,"leverage":10}'
        )
    )
    assert alert.size == Decimal("1") and str(alert.price) == "65000.10" and alert.leverage == 10


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"nope",
        b"[1,2]",
        b'"text"',
        b'{"a": NaN}',
        b"\xff\xfe",
        b'{"a": "\\u0000"}',
        b'{"\\ud800": 1}',
    ],
)
def test_non_objects_are_refused_with_400(raw: bytes) -> None:
    with pytest.raises(AlertRefused) as refused:
        parse_json(raw)
    assert refused.value.status == 400


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"slpct": "1"}, "unknown field 'slpct'; did you mean 'sl_pct'?"),
        ({"ticker": None}, "field 'ticker'"),
        ({"size": "0"}, "field 'size': Input should be greater than 0"),
        ({"price": "NaN"}, "field 'price': Input should be a finite number"),
        ({"size": "1", "size_pct": "5"}, "contradictory fields size and size_pct"),
        ({"tp": "1", "tp_pct": "1"}, "contradictory fields tp and tp_pct"),
        ({"order_type": "limit"}, "missing field 'price': order_type limit needs the limit price"),
        ({"prev_market_position": "flat"}, "missing field 'market_position'"),
        ({"action": "hold"}, "field 'action'"),
        ({"strategy": "has space"}, "field 'strategy'"),
    ],
)
def test_validation_messages_name_the_field(fields: dict, message: str) -> None:
    with pytest.raises(AlertRefused) as refused:
        _alert(**fields)
    assert message in refused.value.message
    assert refused.value.status == 422


def test_missing_required_fields_are_named() -> None:
    with pytest.raises(AlertRefused) as refused:
        validate({"secret": "x" * 24})
    assert refused.value.message == (
        "missing field 'strategy'; missing field 'ticker'; missing field 'action'"
    )


def test_validation_errors_never_echo_the_secret() -> None:
    with pytest.raises(AlertRefused) as refused:
        validate({**BASE, "secret": "topsecret-value-123456", "size": "x"})
    assert "topsecret" not in refused.value.message
    with pytest.raises(AlertRefused) as refused:
        validate({**BASE, "secret": {"nested": "topsecret"}})
    assert "topsecret" not in refused.value.message


def test_case_and_time_are_normalised() -> None:
    alert = _alert(
        action="BUY", market_position="Long", order_type="Market", time="2026-01-02T03:04:05"
    )
    assert (
        alert.action == "buy" and alert.market_position == "long" and alert.order_type == "market"
    )
    assert alert.time is not None and alert.time.utcoffset().total_seconds() == 0


def test_unquoted_numeric_alert_id_keeps_its_text() -> None:
    alert = validate(
        parse_json(
            b'{"secret":"ssssssssssssssssssssssss","strategy":"d","ticker":"X","action":"buy","alert_id":12.50}'
        )
    )
    assert alert.alert_id == "12.50"


def test_stored_body_drops_the_secret_and_unknown_values() -> None:
    body = parse_json(b'{"secret":"abc","secert":"abc","strategy":"d","size":0.010}')
    assert stored_body(body) == {"secert": UNKNOWN_VALUE, "strategy": "d", "size": "0.010"}


@given(
    st.dictionaries(st.sampled_from(["ticker", "action", "price", "strategy"]), st.text(max_size=5))
)
def test_body_hash_ignores_the_secret_and_key_order(fields: dict) -> None:
    a = {"secret": "one", **fields}
    b = {**dict(reversed(list(fields.items()))), "secret": "two"}
    assert body_hash(a) == body_hash(b)


def test_dedupe_key_prefers_alert_id_and_windows_only_timeless_bodies() -> None:
    assert dedupe_key(_alert(alert_id="x1"), BASE) == ("a:x1", False)
    key, windowed = dedupe_key(_alert(time="2026-01-02T03:04:05Z"), {**BASE, "time": "t"})
    assert key.startswith("h:") and len(key) == 66 and not windowed
    assert dedupe_key(_alert(), BASE)[1] is True
