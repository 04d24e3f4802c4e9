"""Wire basics: JSON in and out, the amount/text field types, the base models, and the
shapes BitUnix's `data` takes."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, model_validator


def loads(text: str | bytes) -> Any:
    """Parse a response body. Non-integer numbers become Decimal, never float."""
    return json.loads(text, parse_float=Decimal)


def dumps(payload: Any) -> str:
    """The one serialization of a POST body: compact, as BitUnix signs and reads it."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False)


def _amount(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError("a boolean is not an amount")
    if isinstance(value, float):
        raise ValueError("amounts must not pass through float; parse JSON with schemas.loads")
    if isinstance(value, Decimal | int):
        return str(value)
    return value


def _text(value: Any) -> Any:
    # Opaque fields documented as strings that sometimes arrive as numbers
    # (e.g. defaultMarginMode: "Isolation" in the table, 1 in the example).
    if isinstance(value, int | Decimal) and not isinstance(value, bool):
        return str(value)
    return value


Amount = Annotated[str, BeforeValidator(_amount)]
Text = Annotated[str, BeforeValidator(_text)]
# ctime/mtime: ms as int on REST lists, sometimes a string; kept raw, parse.py makes ms ints.
Stamp = int | str


class Wire(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _empty_is_absent(cls, value: Any) -> Any:
        # BitUnix sends "" (or null) for fields that do not apply, e.g. the price of a market
        # order or the unset leg of a TP/SL: treat them as absent so defaults apply.
        if isinstance(value, dict):
            return {k: v for k, v in value.items() if v != "" and v is not None}
        return value


class Request(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    def wire(self) -> dict[str, Any]:
        """The JSON-ready dict: absent (None) fields are left out."""
        return self.model_dump(exclude_none=True, mode="json")


class Envelope(Wire):
    code: int
    msg: str = ""
    data: Any = None


# --- `data` shapes -------------------------------------------------------------------------------
# BitUnix is not consistent about `data` (docs/bitunix.md#response-envelope): the account is
# documented as a one-item list and parsed as an object by the official Java demo; void endpoints
# send "". These accept either shape.


def as_object(data: Any, *, key: str | None = None, value: str | None = None) -> dict[str, Any]:
    """The object in `data`: itself, or from a list the item whose `key` equals `value`
    (else the first). Empty data gives {} and fails validation where fields are required."""
    if data is None or data == "":
        return {}
    if isinstance(data, dict):
        return data
    if isinstance(data, list):
        items = [x for x in data if isinstance(x, dict)]
        if key is not None:
            for item in items:
                if item.get(key) == value:
                    return item
        return items[0] if items else {}
    raise ValueError(f"expected an object, got {type(data).__name__}")


def as_list(data: Any) -> list[Any]:
    if data is None or data == "":
        return []
    if isinstance(data, list):
        return data
    if isinstance(data, dict):
        return [data]
    raise ValueError(f"expected a list, got {type(data).__name__}")


def as_page(data: Any, key: str) -> list[Any]:
    """The items of a `{key: [...], total}` page; a bare list is accepted as the items."""
    if isinstance(data, dict):
        if key in data:
            return as_list(data[key])
        return as_list(data) if data else []
    return as_list(data)
