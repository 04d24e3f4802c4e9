"""The TradingView alert body (docs/design.md#the-alert-body): parsing, validation, and the
stored form.

The body is JSON whatever its Content-Type. Numbers become `Decimal` in the JSON parser itself
(never a float on the way); numbers sent as strings are parsed the same way by pydantic.
Unknown fields are refused by name, so a typo like `slpct` is never silently ignored.
"""

from __future__ import annotations

import difflib
import hashlib
import json
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

from trading.types import EntryType

MAX_BODY_BYTES = 16 * 1024
STRATEGY_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
SECRET_FIELD = "secret"
UNKNOWN_VALUE = "(unknown field: value not stored)"


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


def _no_float(value: Any) -> Any:
    # Our parser never makes floats; refusing them keeps any other caller from sneaking one in.
    if isinstance(value, float):
        raise ValueError("numbers must be parsed as Decimal, not float")
    return value


def _text_id(value: Any) -> Any:
    # `"alert_id": {{strategy.order.id}}` unquoted arrives as a number: keep its exact text.
    return format(value, "f") if isinstance(value, Decimal) else value


def _lower(value: Any) -> Any:
    return value.strip().lower() if isinstance(value, str) else value


Price = Annotated[Decimal, BeforeValidator(_no_float), Field(gt=0, allow_inf_nan=False)]
Amount = Annotated[Decimal, BeforeValidator(_no_float), Field(gt=0, allow_inf_nan=False)]
Held = Annotated[Decimal, BeforeValidator(_no_float), Field(ge=0, allow_inf_nan=False)]


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
    leverage: int | None = Field(default=None, ge=1, le=200)
    tp: Price | None = None
    sl: Price | None = None
    # Which side of 100 % is safe depends on the trade's side: webhook/intent.py checks it.
    tp_pct: Annotated[Amount, Field(lt=1000)] | None = None
    sl_pct: Annotated[Amount, Field(lt=1000)] | None = None
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
        sizings = [n for n in ("size", "size_usdt", "size_pct") if getattr(self, n) is not None]
        if len(sizings) > 1:
            raise ValueError(
                f"contradictory fields {' and '.join(sizings)}: give at most one sizing"
            )
        for absolute, relative in (("tp", "tp_pct"), ("sl", "sl_pct")):
            if getattr(self, absolute) is not None and getattr(self, relative) is not None:
                raise ValueError(f"contradictory fields {absolute} and {relative}: give one")
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
    """The body as a JSON object, numbers as Decimal; AlertRefused (400) if it is not one."""
    try:
        text = raw.decode("utf-8")
        value = json.loads(text, parse_float=Decimal, parse_int=Decimal, parse_constant=_refuse)
    except UnicodeDecodeError:
        raise AlertRefused("body is not UTF-8 text: send the alert message as JSON", 400) from None
    except (ValueError, RecursionError) as exc:
        # json's message names the position only, never the content (which holds the secret).
        detail = exc.msg if isinstance(exc, json.JSONDecodeError) else "not parseable"
        raise AlertRefused(
            f"body is not JSON ({detail}): send the alert message as JSON", 400
        ) from None
    if not isinstance(value, dict):
        raise AlertRefused("body must be a JSON object of alert fields", 400)
    if not _storable(value):
        raise AlertRefused(
            "body holds a NUL character or a lone surrogate (\\u0000, \\ud800…): no alert field "
            "can contain one",
            400,
        )
    return value


def _storable(value: Any) -> bool:
    """False for text PostgreSQL cannot store (NUL) or UTF-8 cannot carry (lone surrogates)."""
    if isinstance(value, str):
        return _encodable(value)
    if isinstance(value, dict):
        return all(_storable(k) and _storable(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_storable(v) for v in value)
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
            lines.append(f"field {field!r}: {error['msg']}")
    return "; ".join(lines)


def stored_body(body: dict[str, Any]) -> dict[str, Any]:
    """What the signal row keeps: no secret, and no value of a field we do not know (a typo'd
    `secert` would otherwise store the secret); Decimals as their exact text."""
    return {
        key: _jsonable(value) if key in FIELDS else UNKNOWN_VALUE
        for key, value in body.items()
        if key != SECRET_FIELD
    }


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
