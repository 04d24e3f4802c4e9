"""A trading pair's rules, validated once when built, so every later check can trust them.

Invariants after construction (any violation raises PairRulesInvalid naming the field):
- every amount is a finite `Decimal` (never float, never int); steps are > 0;
- `qty_step <= min_qty <= max_limit_qty` and `min_qty <= max_market_qty`, all three quantities
  whole multiples of `qty_step`, so a quantity rounded down to the grid that is >= `min_qty` is
  acceptable to the exchange as far as size goes;
- `1 <= min_leverage <= default_leverage <= max_leverage` (ints);
- the price band parameters, when present, give positive bounds (see `trading.precision`).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

from trading.errors import PairRulesInvalid
from trading.precision import snap
from trading.types import OrderType, PairStatus

_MAX_PRECISION = 18  # decimal places; anything beyond is not a real exchange row


@dataclass(frozen=True, slots=True)
class PairRules:
    symbol: str
    base: str
    quote: str
    qty_step: Decimal
    price_tick: Decimal
    min_qty: Decimal
    max_limit_qty: Decimal
    max_market_qty: Decimal
    min_leverage: int
    max_leverage: int
    default_leverage: int
    # Offsets are ratios to the mark price: a buy must be >= mark*(1+min_buy_price_offset),
    # a sell <= mark*(1+max_sell_price_offset) (doc example -0.95 and 100). None = no bound.
    min_buy_price_offset: Decimal | None
    max_sell_price_offset: Decimal | None
    # Band around the mark: buy <= mark*(1+s), sell >= mark*(1-s). None = no band known.
    price_protect_scope: Decimal | None
    status: PairStatus
    api_supported: bool

    def __post_init__(self) -> None:
        for name in ("symbol", "base", "quote"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value or value != value.strip():
                self._bad(name, value, "must be a non-empty string without surrounding spaces")
        for name in ("qty_step", "price_tick", "min_qty", "max_limit_qty", "max_market_qty"):
            value = self._decimal(name)
            if value is None or value <= 0:
                self._bad(name, value, "must be a Decimal greater than zero")
        for name in ("min_qty", "max_limit_qty", "max_market_qty"):
            value = getattr(self, name)
            if snap(value, self.qty_step, ROUND_FLOOR) != value:
                self._bad(name, value, f"is not a whole multiple of qty_step {self.qty_step}")
        if self.min_qty > self.max_limit_qty:
            self._bad("min_qty", self.min_qty, f"exceeds max_limit_qty {self.max_limit_qty}")
        if self.min_qty > self.max_market_qty:
            self._bad("min_qty", self.min_qty, f"exceeds max_market_qty {self.max_market_qty}")
        for name in ("min_leverage", "max_leverage", "default_leverage"):
            value = getattr(self, name)
            if type(value) is not int or value < 1:
                self._bad(name, value, "must be an int >= 1")
        if not self.min_leverage <= self.default_leverage <= self.max_leverage:
            self._bad(
                "default_leverage",
                self.default_leverage,
                f"must lie within [{self.min_leverage}, {self.max_leverage}]",
            )
        buy = self._decimal("min_buy_price_offset", optional=True)
        if buy is not None and buy < -1:
            self._bad("min_buy_price_offset", buy, "must be >= -1 (a buy floor below zero)")
        sell = self._decimal("max_sell_price_offset", optional=True)
        if sell is not None and sell <= -1:
            self._bad("max_sell_price_offset", sell, "must be > -1 (a sell cap above zero)")
        scope = self._decimal("price_protect_scope", optional=True)
        if scope is not None and not Decimal(0) <= scope < 1:
            self._bad("price_protect_scope", scope, "must lie within [0, 1)")
        if not isinstance(self.status, PairStatus):
            self._bad("status", self.status, "must be a PairStatus")
        if not isinstance(self.api_supported, bool):
            self._bad("api_supported", self.api_supported, "must be a bool")

    def _decimal(self, name: str, *, optional: bool = False) -> Decimal | None:
        value = getattr(self, name)
        if value is None and optional:
            return None
        if not isinstance(value, Decimal) or not value.is_finite():
            self._bad(name, value, "must be a finite Decimal")
        return value

    def _bad(self, field: str, value: object, reason: str) -> None:
        symbol = self.symbol if isinstance(self.symbol, str) else repr(self.symbol)
        raise PairRulesInvalid(symbol=symbol, field=field, value=value, reason=reason)

    @classmethod
    def from_precisions(
        cls,
        *,
        symbol: str,
        base: str,
        quote: str,
        base_precision: int,
        quote_precision: int,
        min_qty: Decimal,
        max_limit_qty: Decimal,
        max_market_qty: Decimal,
        min_leverage: int,
        max_leverage: int,
        default_leverage: int,
        min_buy_price_offset: Decimal | None,
        max_sell_price_offset: Decimal | None,
        price_protect_scope: Decimal | None,
        status: PairStatus,
        api_supported: bool,
    ) -> PairRules:
        """Build from BitUnix's `trading_pairs` row (precisions in decimal places).

        The minimum is rounded UP to the quantity grid (and to at least one step): the smallest
        quantity the exchange can accept is the first grid point at or above its minimum, and
        rounding down would let us send orders it refuses (30016/30017). The maxima are rounded
        DOWN for the same reason. Nothing is rounded that was already on the grid.
        """
        steps = {}
        for name, places in (("base_precision", base_precision),
                             ("quote_precision", quote_precision)):
            if type(places) is not int or not 0 <= places <= _MAX_PRECISION:
                raise PairRulesInvalid(
                    symbol=symbol, field=name, value=places,
                    reason=f"must be an int within [0, {_MAX_PRECISION}] decimal places",
                )
            steps[name] = Decimal(1).scaleb(-places)
        qty_step = steps["base_precision"]
        amounts = {"min_qty": min_qty, "max_limit_qty": max_limit_qty,
                   "max_market_qty": max_market_qty}
        for name, value in amounts.items():
            if not isinstance(value, Decimal) or not value.is_finite() or value < 0:
                raise PairRulesInvalid(symbol=symbol, field=name, value=value,
                                       reason="must be a finite, non-negative Decimal")
        return cls(
            symbol=symbol,
            base=base,
            quote=quote,
            qty_step=qty_step,
            price_tick=steps["quote_precision"],
            min_qty=max(snap(min_qty, qty_step, ROUND_CEILING), qty_step),
            max_limit_qty=snap(max_limit_qty, qty_step, ROUND_FLOOR),
            max_market_qty=snap(max_market_qty, qty_step, ROUND_FLOOR),
            min_leverage=min_leverage,
            max_leverage=max_leverage,
            default_leverage=default_leverage,
            min_buy_price_offset=min_buy_price_offset,
            max_sell_price_offset=max_sell_price_offset,
            price_protect_scope=price_protect_scope,
            status=status,
            api_supported=api_supported,
        )

    @property
    def tradable_for_open(self) -> bool:
        """New exposure needs an OPEN pair that the API may trade."""
        return self.status is PairStatus.OPEN and self.api_supported

    @property
    def tradable_for_close(self) -> bool:
        """Reduce-only orders are also allowed while the pair is CANCEL_ONLY."""
        return self.status in (PairStatus.OPEN, PairStatus.CANCEL_ONLY) and self.api_supported

    @property
    def qty_decimals(self) -> int:
        return max(0, -self.qty_step.as_tuple().exponent)  # type: ignore[operator]

    @property
    def price_decimals(self) -> int:
        return max(0, -self.price_tick.as_tuple().exponent)  # type: ignore[operator]

    def max_qty(self, order_type: OrderType) -> Decimal:
        """The largest quantity one order of this type may carry."""
        return self.max_limit_qty if order_type is OrderType.LIMIT else self.max_market_qty
