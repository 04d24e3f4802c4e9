"""The README's strategy template, rendered as TradingView renders it for the orders of a Pine
strategy with partial exits (`strategy.exit(..., qty_percent=50)`, `strategy.close(qty=...)`),
parses into the intent and part docs/design.md#exits says; so does the `alert_message`
template for trades Tradewire sizes itself (README "Partial exits")."""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path

import pytest

from trading.types import Intent
from webhook.intent import exit_part, intent_of
from webhook.schemas import parse_json, validate

README = (Path(__file__).parents[2] / "README.md").read_text()
# The close_pct template of the README's "Partial exits" (kept the same there): the order's own
# alert_message carries the part, the alert's message is `{{strategy.order.alert_message}}`.
ALERT_MESSAGE = (
    '{"secret": "YOUR-SECRET", "strategy": "demo", "ticker": "{{ticker}}", '
    '"action": "{{strategy.order.action}}", "market_position": "{{strategy.market_position}}", '
    '"prev_market_position": "{{strategy.prev_market_position}}", "close_pct": 50, '
    '"alert_id": "{{strategy.order.id}}-{{timenow}}", "time": "{{timenow}}"}'
)


def strategy_template() -> str:
    """The first JSON block under the README's "Message templates": the strategy template."""
    section = README.split("### Message templates", 1)[1]
    return re.search(r"```json\n(.*?)```", section, re.S).group(1)  # type: ignore[union-attr]


def render(template: str, **values: str) -> bytes:
    """What TradingView sends: every placeholder replaced by its text."""
    out = template.replace("YOUR-SECRET", "s" * 32)
    for name, value in values.items():
        out = out.replace("{{" + name + "}}", value)
    assert "{{" not in out, out
    return out.encode()


ORDER = {"exchange": "BITUNIX", "ticker": "BTCUSDT.P", "close": "95000.5",
         "strategy.order.id": "TP1", "timenow": "2026-12-07T10:00:00Z"}


@pytest.mark.parametrize(("action", "after", "before", "held", "contracts", "intent", "part"), [
    # strategy.exit("TP1", "L", qty_percent=50) of a 0.02 long: 0.01 sold, 0.01 still long.
    ("sell", "long", "long", "0.01", "0.01", Intent.CLOSE_LONG, (Decimal("0.01"), None)),
    # strategy.close("S", qty=3) of a 10 short: 3 bought, 7 still short.
    ("buy", "short", "short", "7", "3", Intent.CLOSE_SHORT, (Decimal("3"), None)),
    # the rest: flat, a whole exit whatever the contracts.
    ("sell", "flat", "long", "0", "0.01", Intent.CLOSE_LONG, None),
])
def test_the_strategy_template_carries_a_partial_exit(
    action: str, after: str, before: str, held: str, contracts: str, intent: Intent, part: tuple
) -> None:
    alert = validate(parse_json(render(
        strategy_template(), **ORDER, **{
            "strategy.order.action": action, "strategy.market_position": after,
            "strategy.prev_market_position": before, "strategy.market_position_size": held,
            "strategy.order.contracts": contracts,
        })))
    got = intent_of(alert.action, alert.market_position, alert.prev_market_position,
                    size=alert.size, market_position_size=alert.market_position_size)
    assert got is intent
    assert exit_part(alert.action, alert.market_position, size=alert.size,
                     close_pct=alert.close_pct) == part


def test_the_alert_message_template_closes_a_percent_of_each_trade() -> None:
    alert = validate(parse_json(render(ALERT_MESSAGE, **ORDER, **{
        "strategy.order.action": "sell", "strategy.market_position": "long",
        "strategy.prev_market_position": "long"})))
    assert intent_of(alert.action, alert.market_position, alert.prev_market_position) \
        is Intent.CLOSE_LONG
    assert exit_part(alert.action, alert.market_position, size=alert.size,
                     close_pct=alert.close_pct) == (None, Decimal(50))
