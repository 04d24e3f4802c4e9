"""The TradingView alert body (docs/design.md#the-alert-body): parsing, validation, and the
stored form.

The body is JSON whatever its Content-Type. Numbers become `Decimal` in the JSON parser itself
(never a float on the way), and only after their text is bounded (length and exponent), so a
20-byte `1e100000000` can never be expanded into 100 MB. Numbers sent as strings must be plain
ASCII decimals (no `1_000`, no Arabic-Indic digits) and get the same bounds. Nesting deeper than
`MAX_DEPTH` is refused: an alert is a flat object. Unknown fields are refused by name, so a typo
like `slpct` is never silently ignored.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import re
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from trading.exits import MAX_TP_LEVELS, SlAfterTp
from trading.types import EntryType

MAX_BODY_BYTES = 16 * 1024
STRATEGY_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
SECRET_FIELD = "secret"
UNKNOWN_VALUE = "(unknown field: value not stored)"
# Bounds on every number, in the JSON parser and on number strings alike. No market needs more:
# prices and sizes run from about 1e-8 to 1e12, and no pair has 20 significant digits.
MAX_NUMBER_CHARS = 40  # the literal's text, sign and exponent included
MAX_EXPONENT = 18  # |adjusted exponent|: values within 1e-18 … 1e18 (zero aside)
MAX_SIGNIFICANT_DIGITS = 20
MIN_EXPONENT_TEXT = -(MAX_EXPONENT + MAX_NUMBER_CHARS)  # the last digit's place, for zeros too
# An alert is one flat object (depth 1); a list or object inside is already unusual.
MAX_DEPTH = 3
# What the signal row keeps of a delivery refused before its secret was checked.
MAX_ANONYMOUS_STORED_CHARS = 2048
_NOT_FINITE = frozenset({"nan", "snan", "inf", "infinity"})  # left to pydantic's message
# Strict ASCII: `\d` would take any Unicode digit, Decimal would take `1_000`.
_NUMBER_TEXT = re.compile(r"-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?")


class AlertRefused(Exception):
    """The body cannot be an alert; `message` says which field and why, for the 4xx answer."""

    def __init__(self, message: str, status: int = 422) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


class Action(StrEnum):
    BUY = "buy"
    SELL = "sell"


class MarketPosition(StrEnum):
    LONG = "long"
    SHORT = "short"
    FLAT = "flat"


class NumberOutOfRange(ValueError):
    """A number literal outside the bounds every alert number has (raised by the JSON hook)."""

    def __init__(self, literal: str) -> None:
        super().__init__("number out of range")
        self.literal = literal


NUMBER_BOUNDS = (
    f"at most {MAX_NUMBER_CHARS} characters and a magnitude within "
    f"1e-{MAX_EXPONENT} … 1e{MAX_EXPONENT}"
)


def in_range(value: Decimal) -> bool:
    """True for a finite Decimal whose plain text stays short (exponent bounded both ways)."""
    if not value.is_finite():
        return False
    exponent = value.as_tuple().exponent
    assert isinstance(exponent, int)  # finite
    if not MIN_EXPONENT_TEXT <= exponent <= MAX_EXPONENT:
        return False
    return value.is_zero() or abs(value.adjusted()) <= MAX_EXPONENT


def bounded_number(literal: str) -> Decimal:
    """The JSON parser's number hook: the text is checked before a Decimal is made from it,
    and the Decimal before anything can expand it."""
    if len(literal) > MAX_NUMBER_CHARS:
        raise NumberOutOfRange(literal[:MAX_NUMBER_CHARS])
    value = Decimal(literal)
    if not in_range(value):
        raise NumberOutOfRange(literal)
    return value


def _strict_number(value: Any) -> Any:
    """A number given as a string: plain ASCII decimal text only (surrounding spaces aside);
    every number, string or not, within the bounds."""
    if isinstance(value, str):
        text = value.strip()
        if text.lower().lstrip("+-") in _NOT_FINITE:
            return value  # pydantic refuses it: "Input should be a finite number"
        if len(text) > MAX_NUMBER_CHARS or not _NUMBER_TEXT.fullmatch(text):
            raise ValueError(
                "must be a plain decimal number such as 12.5 or 1e-3 (ASCII digits, no "
                f"underscores, at most {MAX_NUMBER_CHARS} characters)"
            )
        value = Decimal(text)
    if isinstance(value, Decimal):
        if not in_range(value):
            raise ValueError(f"number out of range: {NUMBER_BOUNDS}")
        if len(value.normalize().as_tuple().digits) > MAX_SIGNIFICANT_DIGITS:
            raise ValueError(f"at most {MAX_SIGNIFICANT_DIGITS} significant digits")
    return value


def _no_float(value: Any) -> Any:
    # Our parser never makes floats; refusing them keeps any other caller from sneaking one in.
    if isinstance(value, float):
        raise ValueError("numbers must be parsed as Decimal, not float")
    return value


def _text_id(value: Any) -> Any:
    # `"alert_id": {{strategy.order.id}}` unquoted arrives as a number: keep its exact text.
    return format(value, "f") if isinstance(value, Decimal) else value


def _strict_int(value: Any) -> Any:
    # pydantic's int would take "1_0" as 10: only plain ASCII digits.
    if isinstance(value, str) and not re.fullmatch(r"-?[0-9]{1,4}", value.strip()):
        raise ValueError("must be a whole number written with ASCII digits")
    return value


def _lower(value: Any) -> Any:
    return value.strip().lower() if isinstance(value, str) else value


def _lower_all(value: Any) -> Any:
    return [_lower(v) for v in value] if isinstance(value, list) else _lower(value)


class TrailPrice(StrEnum):
    """What a trailing stop follows (`trail_price`)."""

    MARK = "mark"
    LAST = "last"


# Validators run last-listed first: the float check, then the strict text and the bounds.
_Num = (BeforeValidator(_strict_number), BeforeValidator(_no_float))
Price = Annotated[Decimal, *_Num, Field(gt=0, allow_inf_nan=False)]
Amount = Annotated[Decimal, *_Num, Field(gt=0, allow_inf_nan=False)]
Held = Annotated[Decimal, *_Num, Field(ge=0, allow_inf_nan=False)]
# A TP or SL closer than this to the entry is noise, not a target (and 1e-999999 % is absurd).
MIN_TARGET_PCT = Decimal("0.01")
Target = Annotated[Decimal, *_Num, Field(ge=MIN_TARGET_PCT, lt=1000, allow_inf_nan=False)]


Share = Annotated[Decimal, *_Num, Field(gt=0, le=100, allow_inf_nan=False)]
TrailPct = Annotated[Decimal, *_Num, Field(ge=MIN_TARGET_PCT, lt=100, allow_inf_nan=False)]


class AlertTakeProfit(BaseModel):
    """One level of `tps` (trading/exits.py TakeProfit): `price` or `pct`, and `qty_pct`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    price: Price | None = None
    pct: Target | None = None
    qty_pct: Share | None = None

    @model_validator(mode="after")
    def _price_or_pct(self) -> AlertTakeProfit:
        if (self.price is None) == (self.pct is None):
            raise ValueError("each tps level needs exactly one of price and pct")
        return self


class Alert(BaseModel):
    """One alert as TradingView renders it (the table in docs/design.md#the-alert-body)."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    secret: SecretStr = Field(min_length=1, max_length=200)
    strategy: str = Field(pattern=STRATEGY_NAME_PATTERN)
    ticker: str = Field(min_length=1, max_length=60)
    action: Annotated[Action, BeforeValidator(_lower)]
    market_position: Annotated[MarketPosition | None, BeforeValidator(_lower)] = None
    prev_market_position: Annotated[MarketPosition | None, BeforeValidator(_lower)] = None
    market_position_size: Held | None = None
    size: Amount | None = None
    size_usdt: Amount | None = None
    size_pct: Annotated[Amount, Field(le=100)] | None = None
    order_type: Annotated[EntryType | None, BeforeValidator(_lower)] = None
    price: Price | None = None
    leverage: Annotated[int, BeforeValidator(_strict_int)] | None = Field(
        default=None, ge=1, le=200
    )
    tp: Price | None = None
    sl: Price | None = None
    # Which side of 100 % is safe depends on the trade's side: webhook/intent.py checks it.
    tp_pct: Target | None = None
    sl_pct: Target | None = None
    # The exit plan (docs/design.md#exits): a take-profit ladder, where the stop goes after each
    # level, a trailing stop; risk-% sizing; a partial exit.
    tps: list[AlertTakeProfit] | None = Field(default=None, min_length=1, max_length=MAX_TP_LEVELS)
    sl_after_tp: Annotated[SlAfterTp | list[SlAfterTp] | None, BeforeValidator(_lower_all)] = None
    trail_pct: TrailPct | None = None
    trail_activation_pct: Target | None = None
    trail_activation_price: Price | None = None
    trail_price: Annotated[TrailPrice | None, BeforeValidator(_lower)] = None
    risk_pct: Annotated[Amount, Field(le=100)] | None = None
    close_pct: Share | None = None
    alert_id: Annotated[str | None, BeforeValidator(_text_id)] = Field(
        default=None, min_length=1, max_length=100
    )
    time: datetime | None = None

    @field_validator("time")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        # TradingView's {{timenow}} is UTC; a time without a zone is read as UTC too.
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Alert:
        sizings = [n for n in ("size", "size_usdt", "size_pct", "risk_pct")
                   if getattr(self, n) is not None]
        if len(sizings) > 1:
            raise ValueError(
                f"contradictory fields {' and '.join(sizings)}: give at most one sizing"
            )
        for absolute, relative in (("tp", "tp_pct"), ("sl", "sl_pct")):
            if getattr(self, absolute) is not None and getattr(self, relative) is not None:
                raise ValueError(f"contradictory fields {absolute} and {relative}: give one")
        if self.tps is not None and (self.tp is not None or self.tp_pct is not None):
            raise ValueError("contradictory fields tps and tp/tp_pct: give the ladder or one TP")
        if self.trail_activation_pct is not None and self.trail_activation_price is not None:
            raise ValueError("contradictory fields trail_activation_pct and "
                             "trail_activation_price: give one")
        trail_extras = [n for n in ("trail_activation_pct", "trail_activation_price", "trail_price")
                        if getattr(self, n) is not None]
        if trail_extras and self.trail_pct is None:
            raise ValueError(f"missing field 'trail_pct': {trail_extras[0]} needs the trail")
        if isinstance(self.sl_after_tp, list) and len(self.sl_after_tp) != len(self.tps or ()):
            raise ValueError("sl_after_tp as a list needs one entry per tps level "
                             f"({len(self.sl_after_tp)} given for {len(self.tps or ())} levels)")
        if sum((t.qty_pct or 0 for t in self.tps or ()), Decimal(0)) > 100:
            raise ValueError("the tps shares (qty_pct) add up to more than 100")
        if self.order_type is EntryType.LIMIT and self.price is None:
            raise ValueError("missing field 'price': order_type limit needs the limit price")
        if self.prev_market_position is not None and self.market_position is None:
            raise ValueError(
                "missing field 'market_position': prev_market_position alone cannot tell "
                "an open from a close"
            )
        return self


FIELDS = tuple(Alert.model_fields)


def parse_json(raw: bytes) -> dict[str, Any]:
    """The body as a JSON object, numbers as bounded Decimals; AlertRefused (400) if it is not
    one, (422) if a number is out of range or the nesting is deeper than an alert's."""
    try:
        text = raw.decode("utf-8")
        value = json.loads(
            text, parse_float=bounded_number, parse_int=bounded_number, parse_constant=_refuse
        )
    except UnicodeDecodeError:
        raise AlertRefused("body is not UTF-8 text: send the alert message as JSON", 400) from None
    except NumberOutOfRange as exc:
        raise AlertRefused(_number_refusal(text, exc.literal)) from None
    except RecursionError:
        # json's C parser stops at the interpreter's recursion limit: far too deep anyway.
        raise AlertRefused(_TOO_DEEP) from None
    except ValueError as exc:
        # json's message names the position only, never the content (which holds the secret).
        detail = exc.msg if isinstance(exc, json.JSONDecodeError) else "not parseable"
        raise AlertRefused(
            f"body is not JSON ({detail}): send the alert message as JSON", 400
        ) from None
    if not isinstance(value, dict):
        raise AlertRefused("body must be a JSON object of alert fields", 400)
    if _deeper_than(value, MAX_DEPTH):
        raise AlertRefused(_TOO_DEEP)
    if not _storable(value):
        raise AlertRefused(
            "body holds a NUL character or a lone surrogate (\\u0000, \\ud800…): no alert field "
            "can contain one",
            400,
        )
    return value


_TOO_DEEP = (
    f"body nested too deep: an alert is one flat JSON object (at most {MAX_DEPTH} levels of "
    "objects and lists)"
)
_KEY_BEFORE = re.compile(r'"([a-z_]{1,30})"\s*:[\s\[]*$')


def _number_refusal(text: str, literal: str) -> str:
    """The refusal of an out-of-range number, naming its field when it is a known one (the
    field a number belongs to is not known to the parser's hook: found by its position)."""
    at = text.find(literal)
    key = _KEY_BEFORE.search(text, max(0, at - 64), at) if at >= 0 else None
    where = f"field {key.group(1)!r}" if key and key.group(1) in FIELDS else "a number"
    return f"{where}: number out of range ({NUMBER_BOUNDS})"


def _children(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return [*value.keys(), *value.values()]
    if isinstance(value, list):
        return value
    return []


def _deeper_than(value: Any, limit: int) -> bool:
    """Whether objects and lists nest more than `limit` levels (iterative: no recursion on
    a caller's input)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return True
        stack.extend((c, depth + 1) for c in _children(item) if isinstance(c, dict | list))
    return False


def _storable(value: Any) -> bool:
    """False for text PostgreSQL cannot store (NUL) or UTF-8 cannot carry (lone surrogates).
    Iterative: the caller's nesting never becomes Python frames."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if not _encodable(item):
                return False
        else:
            stack.extend(_children(item))
    return True


def _encodable(text: str) -> bool:
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _refuse(name: str) -> Any:
    raise ValueError(f"{name} is not a number")


def validate(body: dict[str, Any]) -> Alert:
    """The alert, or AlertRefused naming the first field at fault."""
    try:
        return Alert.model_validate(body)
    except ValidationError as exc:
        raise AlertRefused(describe(exc)) from None


def describe(exc: ValidationError) -> str:
    """One line per problem, each naming its field (never echoing a value)."""
    lines = []
    for error in exc.errors(include_input=False, include_url=False):
        field = ".".join(str(part) for part in error["loc"])
        kind = error["type"]
        if kind == "extra_forbidden":
            close = difflib.get_close_matches(field, FIELDS, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            lines.append(f"unknown field {field!r}{hint}")
        elif kind == "missing":
            lines.append(f"missing field {field!r}")
        elif not field:
            lines.append(str(error["msg"]).removeprefix("Value error, "))
        else:
            msg = str(error["msg"]).removeprefix("Value error, ")
            lines.append(f"field {field!r}: {msg}")
    return "; ".join(lines)


def stored_body(body: dict[str, Any]) -> dict[str, Any]:
    """What the signal row keeps: no secret, and no value of a field we do not know (a typo'd
    `secert` would otherwise store the secret); Decimals as their exact text."""
    return {
        key: _jsonable(value) if key in FIELDS else UNKNOWN_VALUE
        for key, value in body.items()
        if key != SECRET_FIELD
    }


def anonymous_body(body: dict[str, Any]) -> dict[str, Any]:
    """What the signal row keeps of a delivery refused before its secret was checked: the
    stored form, cut to MAX_ANONYMOUS_STORED_CHARS of its JSON text (an anonymous caller
    never gets more than that written)."""
    stored = stored_body(body)
    text = json.dumps(stored, ensure_ascii=False)
    if len(text) <= MAX_ANONYMOUS_STORED_CHARS:
        return stored
    cut = text[:MAX_ANONYMOUS_STORED_CHARS]
    while len(json.dumps({_TRUNCATED: cut}, ensure_ascii=False)) > MAX_ANONYMOUS_STORED_CHARS:
        cut = cut[: len(cut) * 3 // 4]  # escaping lengthened it: a few rounds at most
    return {_TRUNCATED: cut}


_TRUNCATED = "(truncated)"


def _jsonable(value: Any) -> Any:
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value


def body_hash(body: dict[str, Any]) -> str:
    """SHA-256 of the canonical body without the secret (sorted keys, exact number text)."""
    canonical = json.dumps(
        stored_body(body), sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def dedupe_key(alert: Alert, body: dict[str, Any]) -> tuple[str, bool]:
    """(key, windowed). `alert_id` when given, else the body's hash; a body with neither
    `alert_id` nor `time` is a duplicate only within the strategy's window."""
    if alert.alert_id is not None:
        return "a:" + alert.alert_id, False
    return "h:" + body_hash(body), alert.time is None


def received_now() -> datetime:
    return datetime.now(UTC)


def render_alert(body: dict[str, Any]) -> str:
    """An alert body as TradingView sends it: JSON with Decimals as bare numbers, as it renders
    `{{close}}` (never through a float). `tradewire alert send` and the tests post these."""
    parts = []
    for key, value in body.items():
        text = format(value, "f") if isinstance(value, Decimal) else json.dumps(value)
        parts.append(f"{json.dumps(key)}: {text}")
    return "{" + ", ".join(parts) + "}"
