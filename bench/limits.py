"""The limits the benchmarks raise, in one place, so the report states exactly what was used.

BitUnix allows 10 orders/s per account; the burst alone sends 100 alerts/s, so the paper
exchange's limits, the client's request budgets and the webhook's per-strategy rate limit are
raised together through their settings (docs/design.md#request-budgets).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from decimal import Decimal

from exchange.parse import format_decimal


@dataclass(frozen=True)
class BenchLimits:
    paper_rate_limit_scale: Decimal = Decimal(1000)  # 10 000 requests/s per private endpoint
    exchange_budget_scale: Decimal = Decimal(1000)  # the client's budgets, the same scale
    paper_balance: Decimal = Decimal(10) ** 12  # USDT: no fuzz order is refused for margin
    webhook_rate_limit_per_min: int = 100_000  # per strategy

    def env(self) -> dict[str, str]:
        """TRADEWIRE_* overrides for every process of a benchmark stack."""
        return {
            "TRADEWIRE_PAPER_RATE_LIMIT_SCALE": format_decimal(self.paper_rate_limit_scale),
            "TRADEWIRE_EXCHANGE_BUDGET_SCALE": format_decimal(self.exchange_budget_scale),
            "TRADEWIRE_PAPER_BALANCE": format_decimal(self.paper_balance),
        }

    def describe(self) -> dict[str, str | int]:
        return {
            k: format_decimal(v) if isinstance(v, Decimal) else v for k, v in asdict(self).items()
        }
