"""The risk rules, pure (docs/design.md#risk): which trading state applies, whether an alert or
an opening order passes the limits, and whether the day's loss breaches its limit.

Everything here takes plain values (read by activities/risk.py in one transaction) and answers
with a `RiskRefused` that names the limit, its scope and its value, so the refusal recorded
for the trader says exactly which rail stopped the order.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from decimal import Decimal

from trading.errors import TradingError, show
from trading.types import PositionSide, TradingState

ACCOUNT = "account"
HUNDRED = Decimal(100)


def strategy_scope(name: str) -> str:
    """The scope key of a strategy's state (the account's is ACCOUNT)."""
    return f"strategy:{name}"


def scope_label(scope: str) -> str:
    """A scope as a reader says it: `account`, `strategy 'trend'`."""
    if scope == ACCOUNT:
        return "account"
    return f"strategy {scope.removeprefix('strategy:')!r}"


def stricter(a: TradingState, b: TradingState) -> TradingState:
    """The stricter of two states (HALTED > REDUCE_ONLY > ACTIVE)."""
    return a if a.strictness >= b.strictness else b


@dataclass(frozen=True)
class RiskLimits:
    """One scope's limits; None: no limit of that kind. The option and setting names are these
    field names (`--max-order-usdt`, `TRADEWIRE_RISK_MAX_ORDER_USDT`)."""

    max_order_usdt: Decimal | None = None  # one order's notional
    max_position_usdt: Decimal | None = None  # the open trades' notional on one symbol
    max_open_trades: int | None = None  # trades entering or open
    max_leverage: int | None = None  # never above the pair's own maximum either
    max_exposure_usdt: Decimal | None = None  # the open trades' notional, all symbols
    min_free_margin_usdt: Decimal | None = None  # available margin left after the order
    daily_loss_usdt: Decimal | None = None  # the day's loss that latches the state
    daily_loss_pct: Decimal | None = None  # ... in percent of the equity at the day's start

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))

    def as_dict(self) -> dict[str, Decimal | int | None]:
        return {n: getattr(self, n) for n in self.names()}

    @property
    def any(self) -> bool:
        return any(v is not None for v in self.as_dict().values())


def option(limit: str) -> str:
    """The CLI option of a limit: `max_order_usdt` → `--max-order-usdt`."""
    return "--" + limit.replace("_", "-")


class RiskRefused(TradingError):
    """A risk rail refused an alert or an order before anything was sent. Resume the state,
    raise the limit, or send a smaller order."""

    def __init__(self, *, scope: str, limit: str, message: str) -> None:
        self.scope = scope
        self.limit = limit
        super().__init__(f"risk: {message}")


def state_refusal(state: TradingState, scope: str, *, opens: bool) -> RiskRefused | None:
    """Why `state` (of `scope`) refuses an alert that opens (`opens`) or exits; None: allowed."""
    if opens and not state.opens:
        return RiskRefused(
            scope=scope, limit="state",
            message=f"the {scope_label(scope)} is {state.value}: no new position is opened "
                    f"(`tradewire risk resume` lifts it)",
        )
    if not opens and not state.exits:
        return RiskRefused(
            scope=scope, limit="state",
            message=f"the {scope_label(scope)} is {state.value}: nothing new is sent, exits "
                    "included (`tradewire risk reduce-only` lets exits through; "
                    "`tradewire risk halt --flatten` closes every position)",
        )
    return None


def check_open_trades(limits: RiskLimits, scope: str, open_trades: int) -> None:
    """At intake: one more trade must stay within `max_open_trades` (`open_trades` counts the
    scope's trades entering or open, this one not included)."""
    if limits.max_open_trades is not None and open_trades + 1 > limits.max_open_trades:
        raise RiskRefused(
            scope=scope, limit="max_open_trades",
            message=f"max_open_trades of the {scope_label(scope)} is {limits.max_open_trades}: "
                    f"{open_trades} trade(s) already entering or open",
        )


def check_leverage(limits: RiskLimits, scope: str, leverage: int, pair_max: int,
                   symbol: str) -> None:
    """Before the leverage is set: within the scope's `max_leverage` and the pair's maximum."""
    if leverage > pair_max:
        raise RiskRefused(
            scope=scope, limit="max_leverage",
            message=f"leverage {leverage} is above {symbol}'s maximum of {pair_max}",
        )
    check_max_leverage(limits, scope, leverage)


def check_max_leverage(limits: RiskLimits, scope: str, leverage: int) -> None:
    """Before the leverage is set: within the scope's `max_leverage`."""
    if limits.max_leverage is not None and leverage > limits.max_leverage:
        raise RiskRefused(
            scope=scope, limit="max_leverage",
            message=f"max_leverage of the {scope_label(scope)} is {limits.max_leverage}: "
                    f"this trade would use {leverage}",
        )


@dataclass(frozen=True)
class ScopeBook:
    """What a scope already holds, measured in one transaction: its trades entering or open
    (this one not included), their notional on the order's symbol and in all."""

    open_trades: int = 0
    symbol_usdt: Decimal = Decimal(0)
    exposure_usdt: Decimal = Decimal(0)


@dataclass(frozen=True)
class ProposedEntry:
    """The opening order a trade is about to claim: its whole entry's notional (the target at
    the order's price), its leverage and the account's available margin as last read."""

    symbol: str
    notional: Decimal
    order_notional: Decimal
    leverage: int | None
    available_margin: Decimal | None


def check_entry(limits: RiskLimits, scope: str, entry: ProposedEntry, book: ScopeBook) -> None:
    """The limits decidable only after sizing: raises RiskRefused naming the first one broken."""
    where = scope_label(scope)

    def refuse(limit: str, value: Decimal | int, what: str) -> RiskRefused:
        return RiskRefused(scope=scope, limit=limit,
                           message=f"{limit} of the {where} is {show(value)}: {what}")

    if limits.max_order_usdt is not None and entry.order_notional > limits.max_order_usdt:
        raise refuse("max_order_usdt", limits.max_order_usdt,
                     f"this order is {_usdt(entry.order_notional)}")
    if limits.max_position_usdt is not None:
        after = book.symbol_usdt + entry.notional
        if after > limits.max_position_usdt:
            raise refuse("max_position_usdt", limits.max_position_usdt,
                         f"{entry.symbol} would hold {_usdt(after)} "
                         f"({_usdt(book.symbol_usdt)} open + {_usdt(entry.notional)} new)")
    if limits.max_exposure_usdt is not None:
        after = book.exposure_usdt + entry.notional
        if after > limits.max_exposure_usdt:
            raise refuse("max_exposure_usdt", limits.max_exposure_usdt,
                         f"the exposure would be {_usdt(after)} "
                         f"({_usdt(book.exposure_usdt)} open + {_usdt(entry.notional)} new)")
    if limits.max_open_trades is not None and book.open_trades + 1 > limits.max_open_trades:
        raise refuse("max_open_trades", limits.max_open_trades,
                     f"{book.open_trades} trade(s) already entering or open")
    if limits.max_leverage is not None and entry.leverage is not None \
            and entry.leverage > limits.max_leverage:
        raise refuse("max_leverage", limits.max_leverage, f"this trade uses {entry.leverage}")
    if limits.min_free_margin_usdt is not None and entry.available_margin is not None:
        margin = entry.notional / (entry.leverage or 1)
        left = entry.available_margin - margin
        if left < limits.min_free_margin_usdt:
            raise refuse("min_free_margin_usdt", limits.min_free_margin_usdt,
                          f"{_usdt(left)} would be left free ({_usdt(entry.available_margin)} "
                          f"available − {_usdt(margin)} initial margin)")


def _usdt(value: Decimal) -> str:
    return f"{show(value.quantize(Decimal('0.01')))} USDT"


# --- the daily loss ----------------------------------------------------------------------


def implied_mark(side: PositionSide, qty: Decimal, avg_open: Decimal | None,
                 unrealized: Decimal) -> Decimal | None:
    """The mark price a position's own figures imply (its unrealized PnL is at the mark), so the
    latch needs no read of its own; None when the position does not say."""
    if avg_open is None or qty <= 0:
        return None
    per_unit = unrealized / qty
    return avg_open + per_unit if side is PositionSide.LONG else avg_open - per_unit


def unrealized_pnl(side: PositionSide, qty: Decimal, avg_entry: Decimal, mark: Decimal) -> Decimal:
    """A trade's unrealized PnL on `qty` it owns, at `mark`."""
    move = mark - avg_entry
    return qty * move if side is PositionSide.LONG else -qty * move


def daily_loss_breach(limits: RiskLimits, scope: str, pnl: Decimal,
                      start_equity: Decimal | None) -> str | None:
    """Why the day's PnL (`pnl`: realized with fees plus unrealized at mark; a loss is
    negative) breaches the scope's daily loss limit; None: it does not."""
    loss = -pnl
    if loss <= 0:
        return None
    where = scope_label(scope)
    if limits.daily_loss_usdt is not None and loss >= limits.daily_loss_usdt:
        return (f"daily_loss_usdt of the {where} is {show(limits.daily_loss_usdt)}: "
                f"today's PnL is {_usdt(pnl)}")
    if limits.daily_loss_pct is not None and start_equity is not None and start_equity > 0:
        pct = loss * HUNDRED / start_equity
        if pct >= limits.daily_loss_pct:
            return (f"daily_loss_pct of the {where} is {show(limits.daily_loss_pct)} %: "
                    f"today's PnL is {_usdt(pnl)}, "
                    f"{show(pct.quantize(Decimal('0.01')))} % of the day's starting equity "
                    f"{_usdt(start_equity)}")
    return None
