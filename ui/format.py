"""How the pages write numbers and times (Jinja2 filters): money exact (Decimal, never a float),
times in UTC."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any


def money(value: Any, places: int | None = None) -> str:
    if value is None or value == "":
        return "—"
    d = Decimal(str(value))
    if places is not None:
        d = d.quantize(Decimal(1).scaleb(-places))
    text = format(d.normalize() if places is None else d, "f")
    return "0" if text in ("-0", "") else text


def signed(value: Any, places: int = 2) -> str:
    if value is None or value == "":
        return "—"
    d = Decimal(str(value)).quantize(Decimal(1).scaleb(-places))
    if d == 0:
        return format(abs(d), "f")  # never "-0.00"
    return ("+" if d > 0 else "") + format(d, "f")


def tone(value: Any) -> str:
    """The CSS class of a PnL: gain, loss or flat."""
    if value is None or value == "":
        return "flat"
    d = Decimal(str(value))
    return "gain" if d > 0 else "loss" if d < 0 else "flat"


def when(value: datetime | str | None) -> str:
    if value is None or value == "":
        return "—"
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def ms(value: int | None) -> str:
    return "—" if value is None else f"{value:,} ms"


FILTERS = {"money": money, "signed": signed, "tone": tone, "when": when, "ms": ms}
