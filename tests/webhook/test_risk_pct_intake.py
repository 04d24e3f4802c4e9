"""risk_pct at intake (docs/design.md#exits): an entry sized by what its stop-loss loses needs
a stop-loss; without `sl` or `sl_pct` it is refused 422 with the reason and recorded, whether
the alert or the strategy's default asks for risk_pct. With one, the trade's input carries it."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from trading.types import SignalOutcome

from .conftest import Strat, Webhook


def _at(seconds_ago: int) -> str:
    return (datetime.now(UTC) - timedelta(seconds=seconds_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")


def _risk_alert(webhook: Webhook, strat: Strat, **fields: Any) -> dict[str, Any]:
    body = webhook.alert(strat, **fields)
    del body["size"]  # the fixture's default sizing: these alerts give risk_pct or nothing
    return {k: v for k, v in body.items() if v is not None}


async def _started_input(webhook: Webhook, workflow_id: str) -> dict:
    history = await webhook.temporal.get_workflow_handle(workflow_id).fetch_history()
    started = history.events[0].workflow_execution_started_event_attributes
    return json.loads(started.input.payloads[0].data)


async def _refused(webhook: Webhook, body: dict[str, Any], text: str) -> None:
    r = await webhook.post(body)
    assert r.status_code == 422, r.text
    assert r.json()["outcome"] == "REFUSED" and text in r.json()["reason"], r.json()["reason"]
    row = await webhook.signal(r.json()["signal_id"])
    assert row.outcome == SignalOutcome.REFUSED and text in (row.reason or "")
    assert row.workflow_id is None


async def test_a_risk_pct_alert_without_a_stop_loss_is_refused_and_recorded(
    webhook: Webhook,
) -> None:
    strat = await webhook.add_strategy()
    await _refused(webhook, _risk_alert(webhook, strat, risk_pct=Decimal(1)),
                   "missing field 'sl' or 'sl_pct': this alert's risk_pct 1 sizes the entry "
                   "by what its stop-loss loses if hit")
    short = _risk_alert(webhook, strat, action="sell", market_position="short",
                        risk_pct=Decimal("0.5"), tp_pct=Decimal(2))
    await _refused(webhook, short, "this alert's risk_pct 0.5")
    assert await webhook.trades_of(strat) == []


async def test_a_strategys_default_risk_pct_needs_the_alerts_stop_loss(webhook: Webhook) -> None:
    strat = await webhook.add_strategy(risk_pct=Decimal(2))
    await _refused(webhook, _risk_alert(webhook, strat),
                   f"strategy {strat.name!r}'s risk_pct 2 sizes the entry")
    assert await webhook.trades_of(strat) == []
    # The alert's own sizing wins over the default: no stop-loss needed for a size.
    sized = await webhook.post(webhook.alert(strat, size=Decimal("0.01")))
    assert sized.status_code == 202, sized.text


async def test_a_risk_pct_alert_with_a_stop_loss_carries_both_to_the_trade(
    webhook: Webhook,
) -> None:
    strat = await webhook.add_strategy()
    r = await webhook.post(_risk_alert(webhook, strat, risk_pct=Decimal("1.5"),
                                       sl_pct=Decimal(2)))
    assert r.status_code == 202, r.text
    inp = await _started_input(webhook, r.json()["workflow_id"])
    assert inp["sizing"] == {"size": None, "size_usdt": None, "size_pct": None,
                             "risk_pct": "1.5"}
    assert inp["sl_pct"] == "2"
    # The strategy's default with the alert's absolute stop.
    strat = await webhook.add_strategy(risk_pct=Decimal(1))
    r = await webhook.post(_risk_alert(webhook, strat, sl=Decimal(90000)))
    assert r.status_code == 202, r.text
    inp = await _started_input(webhook, r.json()["workflow_id"])
    assert inp["sizing"] is None and inp["strategy"]["sizing"]["risk_pct"] == "1"
    assert inp["sl"] == "90000"


async def test_a_reverse_sized_by_risk_pct_keeps_it(webhook: Webhook) -> None:
    """Without market_position_size a reverse is sized by the alert's own sizing: risk_pct
    included (it used to be dropped, leaving the strategy's default)."""
    strat = await webhook.add_strategy()
    opened = await webhook.post(webhook.alert(strat, time=_at(5)))
    assert opened.status_code == 202, opened.text
    reverse = _risk_alert(webhook, strat, action="sell", market_position="short",
                          prev_market_position="long", risk_pct=Decimal(1), sl_pct=Decimal(3),
                          time=_at(1))
    r = await webhook.post(reverse)
    assert r.status_code == 202, r.text
    assert r.json()["intent"] == "REVERSE_TO_SHORT"
    inp = await _started_input(webhook, r.json()["workflow_id"])
    assert inp["close_first_workflow_id"] == opened.json()["workflow_id"]
    assert inp["sizing"]["risk_pct"] == "1"


async def test_an_exit_of_a_risk_pct_strategy_needs_no_stop_loss(webhook: Webhook) -> None:
    strat = await webhook.add_strategy(risk_pct=Decimal(1))
    close = _risk_alert(webhook, strat, action="sell", market_position="flat",
                        prev_market_position="long")
    r = await webhook.post(close)
    assert r.status_code == 200, r.text
    assert r.json()["outcome"] == "NOTHING_TO_CLOSE"
