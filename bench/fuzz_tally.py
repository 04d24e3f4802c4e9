"""What the precision fuzz counts: alerts, orders sent and accepted, exchange rejections by
code (rule, balance, other), local refusals by rule, and examples of rule rejections."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from exchange.errors import ExchangeError
from exchange.parse import format_decimal
from trading.rules import PairRules
from trading.types import OrderType, PositionMode

MAX_EXAMPLES = 25
# What the exchange answers for a TP/SL that breaks a rule (grid, side of the mark, > 0).
TPSL_RULE_CODES = frozenset({10002, 30020, 30021, 30022, 30023, 30041})


@dataclass(frozen=True)
class Sent:
    """What was sent, kept for the report when the exchange rejects it."""

    symbol: str
    mode: PositionMode
    opening: bool
    side: str
    order_type: OrderType
    qty: Decimal
    price: Decimal | None
    mark: Decimal | None


@dataclass
class Tally:
    alerts: Counter[str] = field(default_factory=Counter)
    orders_sent: int = 0
    orders_accepted: int = 0
    accepted_by: Counter[str] = field(default_factory=Counter)
    rule_rejections: Counter[str] = field(default_factory=Counter)
    balance_rejections: Counter[str] = field(default_factory=Counter)
    other_rejections: Counter[str] = field(default_factory=Counter)
    local_refusals: Counter[str] = field(default_factory=Counter)
    leverage_changes: int = 0
    tpsl: Counter[str] = field(default_factory=Counter)
    tpsl_rule_rejections: Counter[str] = field(default_factory=Counter)
    examples: list[dict[str, Any]] = field(default_factory=list)

    @property
    def rule_rejection_count(self) -> int:
        return sum(self.rule_rejections.values()) + sum(self.tpsl_rule_rejections.values())

    def as_dict(self) -> dict[str, Any]:
        return {
            "alerts": dict(sorted(self.alerts.items())),
            "orders_sent": self.orders_sent,
            "orders_accepted": self.orders_accepted,
            "accepted_by": dict(sorted(self.accepted_by.items())),
            "exchange_rule_rejections": self.rule_rejection_count,
            "exchange_rule_rejections_by_code": dict(sorted(self.rule_rejections.items())),
            "of_which_tpsl": sum(self.tpsl_rule_rejections.values()),
            "exchange_balance_rejections_by_code": dict(sorted(self.balance_rejections.items())),
            "exchange_other_rejections_by_code": dict(sorted(self.other_rejections.items())),
            "local_refusals_by_rule": dict(self.local_refusals.most_common()),
            "leverage_changes": self.leverage_changes,
            "tpsl": dict(sorted(self.tpsl.items())),
            "tpsl_rule_rejections_by_code": dict(sorted(self.tpsl_rule_rejections.items())),
            "rule_rejection_examples": self.examples,
        }

    def example(self, sent: Sent, rules: PairRules, exc: ExchangeError) -> None:
        """Keep what was sent, and the pair's grid, for the first MAX_EXAMPLES rejections."""
        if len(self.examples) >= MAX_EXAMPLES:
            return
        self.examples.append({
            "code": exc.code, "msg": exc.msg, "symbol": sent.symbol, "mode": sent.mode.value,
            "opening": sent.opening, "side": sent.side, "order_type": sent.order_type.value,
            "qty": format_decimal(sent.qty),
            "price": None if sent.price is None else format_decimal(sent.price),
            "mark": None if sent.mark is None else format_decimal(sent.mark),
            "qty_step": format_decimal(rules.qty_step),
            "price_tick": format_decimal(rules.price_tick),
            "min_qty": format_decimal(rules.min_qty),
            "price_protect_scope": None if rules.price_protect_scope is None
            else format_decimal(rules.price_protect_scope),
        })
