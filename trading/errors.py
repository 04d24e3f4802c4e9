"""Errors of the pure trading domain. Each one says what happened and what the caller (or the
operator reading it) should do next. None of them is worth retrying as is: the same inputs give
the same answer, so a boundary maps every TradingError to a non-retryable failure.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any


def show(value: object) -> str:
    """Render a value for a message: Decimals without exponent, everything else as str."""
    if isinstance(value, Decimal):
        return format(value, "f")
    return str(value)


def _shown(value: object) -> str:
    return show(value) if isinstance(value, Decimal) else repr(value)


class TradingError(Exception):
    """Base of every domain error; `message` is the full human-readable text."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __reduce__(self) -> tuple[Any, ...]:
        # Keyword-only constructors do not pickle by default; rebuild from our attributes.
        return (_rebuild, (type(self), self.__dict__))


def _rebuild(cls: type[TradingError], state: dict[str, Any]) -> TradingError:
    err = cls.__new__(cls)
    Exception.__init__(err, state["message"])
    err.__dict__.update(state)
    return err


class PairRulesInvalid(TradingError):
    """A pair's rules from the exchange are not usable: the pair must not be traded until a
    refreshed pair list fixes them."""

    def __init__(self, *, symbol: str, field: str, value: object, reason: str) -> None:
        self.symbol = symbol
        self.field = field
        self.value = value
        self.reason = reason
        super().__init__(
            f"pair rules for {symbol!r} are invalid: {field}={_shown(value)} {reason}; "
            "the pair cannot be traded until a pair sync returns valid rules"
        )


class RuleViolation(TradingError):
    """An order breaks one of the pair's (or the strategy's) rules after rounding. Nothing was
    sent; the order must be refused or resized, never pushed through."""

    def __init__(self, *, rule: str, value: object, limit: object, message: str) -> None:
        self.rule = rule
        self.value = value
        self.limit = limit
        super().__init__(f"{rule}: {message}")


class UnknownSymbol(TradingError):
    """The alert's ticker is not a symbol of the synced pair list. It is refused, never
    "fixed": correct the alert's ticker, or sync the pair list if the pair is new."""

    def __init__(self, *, ticker: str, normalized: str, suggestions: Sequence[str]) -> None:
        self.ticker = ticker
        self.normalized = normalized
        self.suggestions = tuple(suggestions)
        hint = (
            f"closest known: {', '.join(self.suggestions)}" if self.suggestions else
            "no similar symbol is known"
        )
        super().__init__(
            f"unknown symbol {normalized!r} (alert ticker {ticker!r}): not in the synced pair "
            f"list; {hint}. Fix the alert's ticker, or sync the pair list if the pair is new"
        )


class InvalidTicker(UnknownSymbol):
    """The ticker is not even shaped like a symbol (empty, inner spaces, several prefixes)."""

    def __init__(self, *, ticker: str, reason: str) -> None:
        self.ticker = ticker
        self.normalized = ""
        self.suggestions = ()
        self.reason = reason
        TradingError.__init__(
            self, f"alert ticker {ticker!r} is not a symbol: {reason}. Send TradingView's "
            "{{ticker}}, e.g. BTCUSDT, BTCUSDT.P or BITUNIX:BTCUSDT.P"
        )


class InvalidSizing(TradingError):
    """The sizing instruction or its inputs cannot give a quantity: fix the alert or the
    strategy's sizing defaults."""


class InvalidOrderRequest(TradingError):
    """The caller asked for an order that makes no sense (a limit without a price, a hedge-mode
    close without a position id): a programming or configuration error, not a market rule."""


class OppositeTradeOpen(TradingError):
    """In one-way mode an entry opposite to another open trade on the same symbol would net that
    trade away: close that trade first, or switch the account to hedge mode."""

    def __init__(self, *, symbol: str, wanted: str, open_side: str) -> None:
        self.symbol = symbol
        self.wanted = wanted
        self.open_side = open_side
        super().__init__(
            f"refusing to open {wanted} on {symbol}: a {open_side} trade is open on it and the "
            "account is in ONE_WAY mode, where this entry would close that trade instead; close "
            "it first or use HEDGE mode"
        )
