"""What every endpoint group shares: the `_request` it relies on and small argument helpers."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from exchange.parse import format_decimal

if TYPE_CHECKING:
    from exchange import schemas as w
    from exchange.signing import QueryValue

T = TypeVar("T")
# Run once a request's turn in the budget has come, before it is signed and sent: the caller's
# last word (activities/orders.py re-stamps its claim after a long wait; it may raise to not send).
BeforeSend = Callable[[], Awaitable[None]]


class Endpoints:
    if TYPE_CHECKING:
        # Provided by BitunixClient: the one request path (build, sign, send, map errors).
        async def _request(
            self,
            method: Literal["GET", "POST"],
            endpoint: str,
            decode: Callable[[Any], T],
            *,
            params: dict[str, QueryValue] | None = None,
            body: w.Request | None = None,
            signed: bool = True,
            before_send: BeforeSend | None = None,
        ) -> T: ...


def amount(value: Decimal | None) -> str | None:
    """An optional amount for the wire (exchange.parse.format_decimal: plain, exact)."""
    return None if value is None else format_decimal(value)


def enum_value(value: Any) -> str | None:
    return None if value is None else str(value)


def csv(symbols: Sequence[str] | None) -> str | None:
    return ",".join(symbols) if symbols else None


def positive(value: Decimal, name: str) -> None:
    if not isinstance(value, Decimal) or not value.is_finite() or value <= 0:
        raise ValueError(f"{name} must be a positive Decimal, got {value!r}")


def one_of(order_id: str | None, client_id: str | None) -> None:
    if (order_id is None) == (client_id is None):
        raise ValueError("give exactly one of order_id and client_id")
