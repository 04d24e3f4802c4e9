"""Dedupe: PostgreSQL decides, per strategy, whatever the concurrency; refused deliveries
never block the genuine one; timeless bodies dedupe within the strategy's window only."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text
from temporalio.client import WorkflowExecutionStatus
from temporalio.service import RPCError

from trading.types import SignalOutcome

from .conftest import Webhook


async def test_twenty_concurrent_deliveries_start_one_workflow(webhook: Webhook) -> None:
    strat = await webhook.add_strategy()
    body = webhook.alert(strat)
    answers = await asyncio.gather(*(webhook.post(body) for _ in range(20)))
    statuses = sorted(r.status_code for r in answers)
    assert statuses == [200] * 19 + [202], [r.text for r in answers]
    assert len({r.json()["trade_id"] for r in answers}) == 1
    assert len({r.json()["workflow_id"] for r in answers}) == 1
    # Twenty at once are a burst: the one accepted may be answered before its start, which the
    # queue makes right after (webhook/start_queue.py); what follows is the settled state.
    assert await webhook.app.state.intake.starts.join(timeout_s=30)
    signals = await webhook.signals_of(strat)
    outcomes = sorted(s.outcome for s in signals)
    assert outcomes == [SignalOutcome.ACCEPTED] + [SignalOutcome.DUPLICATE] * 19
    assert len(await webhook.trades_of(strat)) == 1
    workflow_id = answers[0].json()["workflow_id"]
    assert (
        await webhook.temporal.get_workflow_handle(workflow_id).describe()
    ).status == WorkflowExecutionStatus.RUNNING
    for dup in (s for s in signals if s.outcome == SignalOutcome.DUPLICATE):
        with pytest.raises(RPCError):  # no workflow under any duplicate's own id
            await webhook.temporal.get_workflow_handle(f"trade-{strat.name}-{dup.id}").describe()


async def test_same_alert_id_in_two_strategies_is_two_trades(webhook: Webhook) -> None:
    one, two = await webhook.add_strategy(), await webhook.add_strategy()
    a = await webhook.post(webhook.alert(one, alert_id="shared-1"))
    b = await webhook.post(webhook.alert(two, alert_id="shared-1"))
    assert a.status_code == b.status_code == 202
    assert a.json()["trade_id"] != b.json()["trade_id"]


async def test_a_refused_delivery_never_blocks_the_genuine_one(webhook: Webhook) -> None:
    strat = await webhook.add_strategy()
    bad = await webhook.post(webhook.alert(strat, alert_id="a-1", ticker="NOPEUSDT"))
    wrong_secret = await webhook.post(webhook.alert(strat, alert_id="a-1", secret="x" * 30))
    good = await webhook.post(webhook.alert(strat, alert_id="a-1"))
    assert (bad.status_code, wrong_secret.status_code, good.status_code) == (422, 401, 202)


async def test_timeless_body_is_a_duplicate_within_the_window_only(webhook: Webhook) -> None:
    strat = await webhook.add_strategy(dedupe_window_s=60)
    body = webhook.alert(strat, alert_id=None, time=None)
    first, second = await webhook.post(body), await webhook.post(body)
    assert (first.status_code, second.status_code) == (202, 200)
    assert second.json()["trade_id"] == first.json()["trade_id"]
    accepted = await webhook.signal(first.json()["signal_id"])
    assert accepted.dedupe_key.startswith("h:") and accepted.dedupe_key.count(":") == 2
    # The window is measured from the accepted signal, not a clock bucket: age it past 60 s.
    async with webhook.sessionmaker.begin() as session:
        await session.execute(
            text(
                "UPDATE signal SET received_at = received_at - interval '61 seconds' WHERE id = :id"
            ),
            {"id": accepted.id},
        )
    third = await webhook.post(body)
    assert third.status_code == 202, third.text
    assert third.json()["trade_id"] != first.json()["trade_id"]


async def test_body_hash_dedupes_bodies_with_time_but_no_alert_id(webhook: Webhook) -> None:
    strat = await webhook.add_strategy()
    body = webhook.alert(strat, alert_id=None)
    first, second = await webhook.post(body), await webhook.post(dict(reversed(list(body.items()))))
    assert (first.status_code, second.status_code) == (202, 200)
    assert second.json()["duplicate_of"] == first.json()["signal_id"]
