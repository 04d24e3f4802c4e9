"""Optional JSON persistence of the paper account (Settings.paper_state_file), so `make run`
keeps orders, positions, TP/SL and balances across restarts.

The file holds `{"version", "state": State, "prices": {symbol: price}, "saved_at_ms"}`,
Decimals as strings. It is written atomically (temp file + rename) with mode 0600 by the app
after every change (debounced) and on shutdown, and read once at start.
"""

from __future__ import annotations

import dataclasses
import json
import os
import types
import typing
from decimal import Decimal
from enum import Enum
from pathlib import Path
from typing import Any

from paper import state as state_module
from paper.state import State, now_ms

FORMAT_VERSION = 1


class StateFileError(ValueError):
    """The state file exists but cannot be read back; the message says which file and why."""


def encode(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: encode(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, dict):
        return {str(k): encode(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [encode(v) for v in value]
    return value


def decode(tp: Any, raw: Any) -> Any:
    if raw is None:
        return None
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in typing.get_args(tp) if a is not type(None)]
        return decode(inner[0], raw)
    if origin is dict:
        key_t, val_t = typing.get_args(tp)
        return {decode(key_t, k): decode(val_t, v) for k, v in raw.items()}
    if origin is list:
        (item_t,) = typing.get_args(tp)
        return [decode(item_t, v) for v in raw]
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        hints = typing.get_type_hints(tp, vars(state_module))
        kwargs = {
            f.name: decode(hints[f.name], raw[f.name])
            for f in dataclasses.fields(tp) if f.init and f.name in raw
        }
        return tp(**kwargs)
    if tp is Decimal:
        return Decimal(raw)
    if isinstance(tp, type) and issubclass(tp, Enum):
        return tp(raw)
    return raw


def save(path: Path, state: State, prices: dict[str, Decimal | None]) -> None:
    write(path, encode(state), encode(prices))


def write(path: Path, state_json: dict[str, Any], prices_json: dict[str, Any]) -> None:
    """Write already-encoded state (the app encodes under its lock, writes outside it)."""
    payload = {
        "version": FORMAT_VERSION,
        "saved_at_ms": now_ms(),
        "state": state_json,
        "prices": {s: p for s, p in prices_json.items() if p is not None},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(payload, fh, separators=(",", ":"))
    os.replace(tmp, path)


def load(path: Path) -> tuple[State, dict[str, Decimal]] | None:
    """(state, prices), or None when the file does not exist yet."""
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise StateFileError(f"{path}: cannot read paper state ({exc}); move it away") from exc
    if payload.get("version") != FORMAT_VERSION:
        raise StateFileError(f"{path}: unknown state format {payload.get('version')!r}")
    try:
        state = decode(State, payload["state"])
        prices = {s: Decimal(p) for s, p in payload.get("prices", {}).items()}
    except (KeyError, TypeError, ValueError, ArithmeticError) as exc:
        raise StateFileError(f"{path}: paper state is damaged ({exc}); move it away") from exc
    return state, prices
