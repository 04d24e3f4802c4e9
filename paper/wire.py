"""Reading request parameters and writing amounts, BitUnix style.

Amounts arrive as JSON strings (documented) or JSON numbers (the official Java demo); both are
parsed straight to Decimal. Answers carry decimals as strings without exponent.
"""

from __future__ import annotations

import json
from decimal import Context, Decimal, InvalidOperation
from enum import StrEnum
from typing import Any, TypeVar

from paper.errors import param_error

E = TypeVar("E", bound=StrEnum)


def fmt(value: Decimal | None) -> str | None:
    """'0.0100' → '0.01', '1E+2' → '100'; never an exponent, never float."""
    if value is None:
        return None
    if value == 0:
        return "0"
    # normalize() rounds to the context's precision: give it one wide enough to stay exact.
    return format(value.normalize(Context(prec=max(28, len(value.as_tuple().digits)))), "f")


def parse_json_body(raw: bytes) -> dict[str, Any]:
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw, parse_float=Decimal, parse_int=Decimal)
    except (ValueError, UnicodeDecodeError) as exc:
        raise param_error("body is not valid JSON") from exc
    if not isinstance(body, dict):
        raise param_error("body must be a JSON object")
    return body


def opt_str(params: dict[str, Any], name: str) -> str | None:
    value = params.get(name)
    if value is None or value == "":
        return None
    if isinstance(value, Decimal):
        return format(value, "f")
    if not isinstance(value, str):
        raise param_error(f"{name} must be a string")
    return value


def req_str(params: dict[str, Any], name: str) -> str:
    value = opt_str(params, name)
    if value is None:
        raise param_error(f"{name} is required")
    return value


def opt_decimal(params: dict[str, Any], name: str) -> Decimal | None:
    value = params.get(name)
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise param_error(f"{name} must be a decimal")
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, str):
        try:
            result = Decimal(value.strip())
        except InvalidOperation as exc:
            raise param_error(f"{name} is not a decimal: {value!r}") from exc
    else:
        raise param_error(f"{name} must be a decimal string")
    if not result.is_finite():
        raise param_error(f"{name} is not a finite decimal")
    return result


def req_decimal(params: dict[str, Any], name: str) -> Decimal:
    value = opt_decimal(params, name)
    if value is None:
        raise param_error(f"{name} is required")
    return value


def opt_int(params: dict[str, Any], name: str) -> int | None:
    value = opt_decimal(params, name)
    if value is None:
        return None
    if value != value.to_integral_value():
        raise param_error(f"{name} must be an integer")
    return int(value)


def opt_bool(params: dict[str, Any], name: str, default: bool = False) -> bool:
    value = params.get(name)
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise param_error(f"{name} must be true or false")


def opt_enum(params: dict[str, Any], name: str, enum: type[E]) -> E | None:
    value = opt_str(params, name)
    if value is None:
        return None
    try:
        return enum(value)
    except ValueError as exc:
        allowed = ", ".join(m.value for m in enum)
        raise param_error(f"{name} must be one of {allowed}") from exc


def req_enum(params: dict[str, Any], name: str, enum: type[E]) -> E:
    value = opt_enum(params, name, enum)
    if value is None:
        raise param_error(f"{name} is required")
    return value


def paging(params: dict[str, Any], default_limit: int = 10,
           max_limit: int = 100) -> tuple[int, int]:
    skip = opt_int(params, "skip") or 0
    limit = opt_int(params, "limit") or default_limit
    if skip < 0 or limit < 1:
        raise param_error("skip must be >= 0 and limit >= 1")
    return skip, min(limit, max_limit)
