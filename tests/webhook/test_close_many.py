"""One exit alert to many open trades of a strategy on a symbol (issue 24): every target is
told, each with its own request, and one whose start is still in flight does not hold up the
others. Real PostgreSQL and Temporal (no worker: the trades stay PENDING, their workflows
RUNNING, and what each was told is read from its history)."""

from __future__ import annotations

import asyncio
import json

from sqlalchemy import select
from temporalio.api.enums.v1 import EventType

from db.models import Strategy
from trading.types import SignalOutcome
from webhook import queries, routing

from .conftest import Webhook
from .test_outbox import _not_started, _timeless


def _close(webhook: Webhook, strat) -> dict:
    body = webhook.alert(strat, action="sell", market_position="flat",
                         prev_market_position="long")
    body.pop("time")  # its age from its arrival: newer than the opens
    return body


async def _closes(webhook: Webhook, workflow_id: str) -> list[dict]:
    history = await webhook.temporal.get_workflow_handle(workflow_id).fetch_history()
    return [
        json.loads(e.workflow_execution_signaled_event_attributes.input.payloads[0].data)
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED
        and e.workflow_execution_signaled_event_attributes.signal_name == "close"
    ]


async def test_one_exit_alert_tells_every_open_trade_once_and_lists_them_all(
    webhook: Webhook,
) -> None:
    strat = await webhook.add_strategy()
    opened = []
    for _ in range(12):
        r = await webhook.post(_timeless(webhook, strat))
        assert r.status_code == 202, r.text
        opened.append(r.json())
    r = await webhook.post(_close(webhook, strat))
    assert r.status_code == 202, r.text
    answer = r.json()
    assert [c["trade_id"] for c in answer["closing"]] == [t["trade_id"] for t in opened]
    assert [c["workflow_id"] for c in answer["closing"]] == [t["workflow_id"] for t in opened]
    for t in opened:
        told = await _closes(webhook, t["workflow_id"])
        assert len(told) == 1, (t, told)
        assert told[0]["signal_id"] == answer["signal_id"]


async def test_a_target_whose_start_is_in_flight_does_not_hold_up_the_others(
    webhook: Webhook,
) -> None:
    """The oldest target has no workflow yet (its open's start is in flight in another
    request): the exit waits for it within the answer's budget, but the other trade is told
    meanwhile, not after that wait. The start lands once the other trade was told; the answer
    lists both, and each was told once."""
    first, strat = await _not_started(webhook)  # PENDING, no workflow
    async with webhook.sessionmaker.begin() as session:
        holder = await queries.unstarted_holder(session, first["signal_id"])
        assert holder is not None
        strategy = (await session.execute(select(Strategy).where(Strategy.name == strat.name))
                    ).scalar_one()
        start = await routing.plan_start(session, strategy, holder, eager=False)
        # As while its start is in flight: accepted, its workflow not there yet.
        await queries.set_signal(session, first["signal_id"],
                                 outcome=SignalOutcome.ACCEPTED.value, reason=None)
    second = (await webhook.post(_timeless(webhook, strat))).json()
    assert "workflow_id" in second, second
    exit_ = asyncio.create_task(webhook.post(_close(webhook, strat)))
    while not await _closes(webhook, second["workflow_id"]):
        assert not exit_.done(), exit_.result().text  # answered before the other was told
        await asyncio.sleep(0.02)
    intake = webhook.app.state.intake
    started = await intake.carry_out(start, asyncio.get_running_loop().time() + 3)
    assert started.status == 202, started.body
    r = await exit_
    assert r.status_code == 202, r.text
    assert [c["trade_id"] for c in r.json()["closing"]] == [first["trade_id"],
                                                           second["trade_id"]]
    assert len(await _closes(webhook, start.workflow_id)) == 1
    assert len(await _closes(webhook, second["workflow_id"])) == 1
