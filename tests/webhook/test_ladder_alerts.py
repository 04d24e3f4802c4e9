"""A take-profit ladder through the webhook (docs/design.md#exits): the alert's `tps` and
`sl_after_tp` reach the trade's input; a level on the wrong side is refused at intake, 422,
naming the level, and recorded as refused."""

from __future__ import annotations

import json

import pytest

from db.models import Strategy, Trade
from trading.exits import ExitPlan, Trailing
from trading.types import SignalOutcome
from webhook.resume import had_exit_plan
from workflows.contract import StrategySnapshot

from .conftest import Webhook


async def _started_input(webhook: Webhook, workflow_id: str) -> dict:
    history = await webhook.temporal.get_workflow_handle(workflow_id).fetch_history()
    started = history.events[0].workflow_execution_started_event_attributes
    return json.loads(started.input.payloads[0].data)


async def test_an_alert_ladder_and_its_stop_moves_reach_the_trade(webhook: Webhook) -> None:
    strat = await webhook.add_strategy()
    body = webhook.alert(strat, sl="90000", price="95000",
                         tps=[{"pct": "1", "qty_pct": "50"}, {"price": "97000", "qty_pct": "30"},
                              {"pct": "4"}],
                         sl_after_tp=["breakeven", "previous_tp", "none"])
    r = await webhook.post(body)
    assert r.status_code == 202, r.text
    inp = await _started_input(webhook, r.json()["workflow_id"])
    levels = [{k: v for k, v in t.items() if v is not None} for t in inp["exits"]["tps"]]
    assert levels == [
        {"pct": "1", "qty_pct": "50", "sl_after": "breakeven"},
        {"price": "97000", "qty_pct": "30", "sl_after": "previous_tp"},
        {"pct": "4", "sl_after": "none"},
    ]
    # One value for every level.
    r = await webhook.post(webhook.alert(strat, tps=[{"pct": "1"}, {"pct": "2"}],
                                         sl_after_tp="BREAKEVEN"))
    assert r.status_code == 202, r.text
    inp = await _started_input(webhook, r.json()["workflow_id"])
    assert [t["sl_after"] for t in inp["exits"]["tps"]] == ["breakeven", "breakeven"]


@pytest.mark.parametrize(("fields", "text"), [
    # A long's level at or below the alert's price, or below its stop.
    ({"price": "95000", "tps": [{"pct": "1"}, {"price": "94000"}]},
     "field 'tps' level 2: a long's take-profit 94000 must be above the alert's price 95000"),
    ({"sl": "93000", "tps": [{"price": "92000"}]},
     "field 'tps' level 1: a long's take-profit 92000 must be above the stop-loss (sl) 93000"),
    # A short's level above its price, or a percent that reaches zero.
    ({"action": "sell", "market_position": "short", "price": "95000",
      "tps": [{"price": "96000"}]},
     "field 'tps' level 1: a short's take-profit 96000 must be below the alert's price 95000"),
    ({"action": "sell", "market_position": "short", "tps": [{"pct": "2"}, {"pct": "100"}]},
     "field 'tps' level 2: a short's take-profit lies pct percent below the entry price"),
])
async def test_a_level_on_the_wrong_side_is_refused_naming_it(webhook: Webhook, fields: dict,
                                                              text: str) -> None:
    strat = await webhook.add_strategy()
    r = await webhook.post(webhook.alert(strat, **fields))
    assert r.status_code == 422, r.text
    body = r.json()
    assert body["outcome"] == "REFUSED" and text in body["reason"], body["reason"]
    row = await webhook.signal(body["signal_id"])
    assert row.outcome == SignalOutcome.REFUSED and text in (row.reason or "")
    assert await webhook.trades_of(strat) == []


async def test_a_level_on_the_right_side_of_either_side_is_accepted(webhook: Webhook) -> None:
    strat = await webhook.add_strategy()
    long = webhook.alert(strat, price="95000", sl="90000", tps=[{"price": "96000"}])
    assert (await webhook.post(long)).status_code == 202
    short = webhook.alert(strat, action="sell", market_position="short", price="95000",
                          sl="99000", tps=[{"price": "94000"}, {"pct": "99"}])
    assert (await webhook.post(short)).status_code == 202


async def test_a_trade_resumed_after_its_workflow_is_gone_is_told_its_exit_plan_is_dropped(
    webhook: Webhook,
) -> None:
    """A new run of a trade knows its books from its rows, not which levels filled or where its
    trail stood: it is told (and says) that it keeps its stop only."""
    strat = await webhook.add_strategy()
    laddered = await webhook.post(webhook.alert(strat, tps=[{"pct": "1"}, {"pct": "2"}]))
    trailing = await webhook.post(webhook.alert(strat, trail_pct="1"))
    plain = await webhook.post(webhook.alert(strat, sl="90000"))
    async with webhook.sessionmaker() as session:
        row = await session.get(Strategy, strat.id)
        snapshot = StrategySnapshot.model_validate(row, from_attributes=True)
        had = [await had_exit_plan(session, await session.get(Trade, r.json()["trade_id"]),
                                    snapshot) for r in (laddered, trailing, plain)]
        assert had == [True, True, False]
        # The strategy's default plan counts too.
        with_default = snapshot.model_copy(update={"exits": ExitPlan(trail=Trailing(pct=1))})
        assert await had_exit_plan(session, await session.get(Trade, plain.json()["trade_id"]),
                                    with_default)
