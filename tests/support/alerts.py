"""Alert bodies as TradingView sends them."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any


def render(body: dict[str, Any]) -> str:
    """JSON with Decimals as bare numbers, as TradingView renders `{{close}}` (never a float)."""
    parts = []
    for key, value in body.items():
        text = format(value, "f") if isinstance(value, Decimal) else json.dumps(value)
        parts.append(f"{json.dumps(key)}: {text}")
    return "{" + ", ".join(parts) + "}"
