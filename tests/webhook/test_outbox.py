"""An alert recorded but not started (Temporal did not take its start: answered 503) is started
from its durable record once Temporal is back, or, too old by then, ends REFUSED: no trade row
stays PENDING forever, and nothing counts as open that never started."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from temporalio.client import WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from trading.types import SignalOutcome, TradeStatus
from webhook import queries
from webhook.outbox import STRANDED_MARGIN_S, Outbox

from .conftest import Webhook
from .test_ack_path import _Connected, _lose_answers

UNAVAILABLE = RPCError("unavailable", RPCStatusCode.UNAVAILABLE, b"")


def _timeless(webhook: Webhook, strat) -> dict:
    """An alert without `time`: its age counts from its arrival (a `time` has whole seconds, so
    with a 1 s max age it could already be too old at intake)."""
    body = webhook.alert(strat)
    body.pop("time")
    return body


async def _not_started(webhook: Webhook, **strategy_params) -> tuple[dict, object]:
    lost = _lose_answers(webhook, forward=False, error=UNAVAILABLE)
    strat = await webhook.add_strategy(**strategy_params)
    r = await webhook.post(_timeless(webhook, strat))
    assert lost.calls == 1 and r.status_code == 503, r.text
    assert r.json()["outcome"] == SignalOutcome.NOT_STARTED.value
    webhook.app.state.tw.temporal = _Connected(webhook.temporal)  # Temporal is back
    return r.json(), strat


async def _exists(webhook: Webhook, workflow_id: str) -> bool:
    try:
        await webhook.temporal.get_workflow_handle(workflow_id).describe()
    except RPCError:
        return False
    return True


def _outbox(webhook: Webhook) -> Outbox:
    return Outbox(webhook.app.state.intake, grace_s=0)


async def test_an_alert_temporal_did_not_start_is_started_from_its_record(webhook: Webhook) -> None:
    answer, strat = await _not_started(webhook)
    # The database is shared: other tests' unstarted alerts may be swept too.
    assert await acted(_outbox(webhook)) >= 1
    row = await webhook.signal(answer["signal_id"])
    assert row.outcome == SignalOutcome.ACCEPTED
    workflow_id = f"trade-{strat.name}-{answer['signal_id']}"
    described = await webhook.temporal.get_workflow_handle(workflow_id).describe()
    assert described.status in (WorkflowExecutionStatus.RUNNING, WorkflowExecutionStatus.COMPLETED)
    async with webhook.sessionmaker() as session:  # started once: nothing left to start
        left = await queries.unstarted(session, datetime.now(UTC), 1000)
    assert answer["signal_id"] not in {u.signal_id for u in left}


async def test_an_alert_too_old_to_start_ends_refused_and_is_not_open(webhook: Webhook) -> None:
    answer, strat = await _not_started(webhook, max_alert_age_s=1)
    await asyncio.sleep(1.2)
    assert await acted(_outbox(webhook)) >= 1
    (trade,) = await webhook.trades_of(strat)
    assert trade.status == TradeStatus.REFUSED.value
    assert "never started" in (trade.error or "")
    assert trade.closed_at is not None  # ended now: the day's summary counts it as refused
    row = await webhook.signal(answer["signal_id"])
    assert row.outcome == SignalOutcome.NOT_STARTED and "never started" in (row.reason or "")
    # An exit now finds nothing open: the trade that never started is not a trade to close.
    r = await webhook.post(webhook.alert(strat, action="sell", market_position="flat",
                                         prev_market_position="long"))
    assert r.json()["outcome"] == SignalOutcome.NOTHING_TO_CLOSE.value, r.text
    workflow_id = f"trade-{strat.name}-{answer['signal_id']}"
    assert not await _exists(webhook, workflow_id)


async def test_a_start_still_being_answered_is_left_to_its_request(webhook: Webhook) -> None:
    answer, _ = await _not_started(webhook)
    await Outbox(webhook.app.state.intake, grace_s=60).sweep()
    row = await webhook.signal(answer["signal_id"])
    assert row.outcome == SignalOutcome.NOT_STARTED  # left alone: younger than the grace




async def test_an_alert_whose_exit_was_recorded_meanwhile_is_never_started(webhook: Webhook) -> None:
    """The open was answered 503 and its exit came before Temporal was back: starting the open
    from its record then would open a position the strategy has already left."""
    answer, strat = await _not_started(webhook)
    exit_alert = webhook.alert(strat, action="sell", market_position="flat",
                               prev_market_position="long")
    r = await webhook.post(exit_alert)
    assert r.json()["outcome"] == SignalOutcome.NOTHING_TO_CLOSE.value, r.text
    assert await acted(_outbox(webhook)) >= 1
    (trade,) = await webhook.trades_of(strat)
    assert trade.status == TradeStatus.REFUSED.value
    assert "exit" in (trade.error or "") and "never started" in (trade.error or "")
    workflow_id = f"trade-{strat.name}-{answer['signal_id']}"
    assert not await _exists(webhook, workflow_id)


async def test_an_alert_not_started_before_a_halt_is_never_started_after_it(
    webhook: Webhook,
) -> None:
    """Accepted, answered 503, then the strategy was halted: the outbox does not start it
    (its entry would be refused at the claim anyway) but ends it REFUSED, its record saying
    why (docs/design.md#risk)."""
    from activities.risk import RiskBook
    from trading.risk import strategy_scope
    from trading.types import TradingState

    answer, strat = await _not_started(webhook)
    await RiskBook(webhook.sessionmaker).set_state(
        strategy_scope(strat.name), TradingState.HALTED, actor="test", reason="stop this one")
    workflow_id = f"trade-{strat.name}-{answer['signal_id']}"
    assert await acted(_outbox(webhook)) >= 1
    (trade,) = await webhook.trades_of(strat)
    assert trade.status == TradeStatus.REFUSED.value, trade.error
    assert "never started" in (trade.error or "") and "HALTED" in (trade.error or "")
    row = await webhook.signal(answer["signal_id"])
    assert row.outcome == SignalOutcome.NOT_STARTED and "HALTED" in (row.reason or "")
    assert not await _exists(webhook, workflow_id)


async def test_a_trade_whose_start_landed_after_all_is_not_ended(webhook: Webhook) -> None:
    """A start whose answer was lost and whose look-up could not confirm it is recorded
    NOT_STARTED although its workflow runs: the outbox must not end that trade."""
    from sqlalchemy import text


    lost = _lose_answers(webhook, forward=True, error=TimeoutError())
    strat = await webhook.add_strategy(max_alert_age_s=1)
    r = await webhook.post(_timeless(webhook, strat))
    assert lost.calls == 1 and r.status_code == 202, r.text  # the look-up found it, this time
    webhook.app.state.tw.temporal = _Connected(webhook.temporal)
    signal_id = r.json()["signal_id"]
    async with webhook.sessionmaker() as session, session.begin():  # as if it had not
        await session.execute(text("UPDATE signal SET outcome = 'NOT_STARTED' WHERE id = :id"),
                              {"id": signal_id})
    await asyncio.sleep(1.2)  # older than its max alert age
    await _outbox(webhook).sweep()
    (trade,) = await webhook.trades_of(strat)
    assert trade.status == TradeStatus.PENDING.value  # its workflow will record it
    assert (await webhook.signal(signal_id)).outcome == SignalOutcome.ACCEPTED
    assert await _exists(webhook, r.json()["workflow_id"])


async def test_a_trade_that_started_after_all_gets_the_exit_it_missed(webhook: Webhook) -> None:
    """Its exit came while it was recorded as not started, and found nothing to close: once the
    outbox sees the workflow does run, the exit is delivered to it."""
    from sqlalchemy import text

    lost = _lose_answers(webhook, forward=True, error=TimeoutError())
    strat = await webhook.add_strategy()
    r = await webhook.post(webhook.alert(strat))
    assert lost.calls == 1 and r.status_code == 202, r.text
    webhook.app.state.tw.temporal = _Connected(webhook.temporal)
    signal_id, workflow_id = r.json()["signal_id"], r.json()["workflow_id"]
    async with webhook.sessionmaker() as session, session.begin():
        await session.execute(text("UPDATE signal SET outcome = 'NOT_STARTED' WHERE id = :id"),
                              {"id": signal_id})
    exit_r = await webhook.post(webhook.alert(strat, action="sell", market_position="flat",
                                              prev_market_position="long"))
    assert exit_r.json()["outcome"] == SignalOutcome.NOTHING_TO_CLOSE.value, exit_r.text
    await _outbox(webhook).sweep()
    assert (await webhook.signal(signal_id)).outcome == SignalOutcome.ACCEPTED
    history = await webhook.temporal.get_workflow_handle(workflow_id).fetch_history()
    signals = [e.workflow_execution_signaled_event_attributes.signal_name for e in history.events
               if e.HasField("workflow_execution_signaled_event_attributes")]
    assert signals == ["close"]


async def _stranded(webhook: Webhook) -> tuple[dict, object]:
    """What a webhook SIGKILLed between recording an alert and starting its workflow leaves:
    the signal ACCEPTED, its trade PENDING, no workflow in Temporal."""
    answer, strat = await _not_started(webhook, max_alert_age_s=1)
    async with webhook.sessionmaker.begin() as session:
        await queries.set_signal(session, answer["signal_id"],
                                 outcome=SignalOutcome.ACCEPTED.value, reason=None)
    return answer, strat


async def acted(outbox: Outbox) -> int:
    """What the first sweep that acts took. A sweep whose look-up at Temporal does not answer
    within its budget (a loaded machine) leaves the alert to the next one, never ends it
    blind; 0 when none acted within 10 s."""
    for _ in range(20):
        taken = await outbox.sweep()
        if taken >= 1:
            return taken
        await asyncio.sleep(0.5)
    return 0


def _later(seconds: float):  # float-ok: seconds
    return lambda: datetime.now(UTC) + timedelta(seconds=seconds)


async def test_an_alert_whose_process_died_before_its_start_ends_refused_never_traded_late(
    webhook: Webhook,
) -> None:
    """Found by the randomized fault runs (seed 2074): the alert stayed PENDING for good, with
    no workflow and no incident. Once it is past its max alert age (plus a margin no start in
    flight can reach) and Temporal says it has no workflow, it ends REFUSED "never started"."""
    answer, strat = await _stranded(webhook)
    workflow_id = f"trade-{strat.name}-{answer['signal_id']}"
    # Young enough that its own request might still be starting it: left alone.
    await Outbox(webhook.app.state.intake, grace_s=0).sweep()
    (trade,) = await webhook.trades_of(strat)
    assert trade.status == TradeStatus.PENDING.value
    assert (await webhook.signal(answer["signal_id"])).outcome == SignalOutcome.ACCEPTED

    late = Outbox(webhook.app.state.intake, grace_s=0, now=_later(1 + STRANDED_MARGIN_S + 1))
    assert await acted(late) >= 1
    (trade,) = await webhook.trades_of(strat)
    assert trade.status == TradeStatus.REFUSED.value
    assert "never started" in (trade.error or "")
    assert trade.closed_at is not None  # ended now: the day's summary counts it as refused
    row = await webhook.signal(answer["signal_id"])
    assert row.outcome == SignalOutcome.NOT_STARTED and "never started" in (row.reason or "")
    assert not await _exists(webhook, workflow_id)  # ended, never started late
    # Nothing counts it as open: an exit finds nothing to close.
    r = await webhook.post(webhook.alert(strat, action="sell", market_position="flat",
                                         prev_market_position="long"))
    assert r.json()["outcome"] == SignalOutcome.NOTHING_TO_CLOSE.value, r.text


async def test_an_accepted_alert_whose_workflow_exists_is_the_workflows_however_old(
    webhook: Webhook,
) -> None:
    answer, strat = await _stranded(webhook)
    workflow_id = f"trade-{strat.name}-{answer['signal_id']}"
    # Its workflow exists (started, not yet claimed an order): it records the trade itself.
    handle = await webhook.temporal.start_workflow(
        "NobodyRunsThis", id=workflow_id, task_queue=f"nobody-polls-{workflow_id}")
    try:
        late = Outbox(webhook.app.state.intake, grace_s=0, now=_later(1 + STRANDED_MARGIN_S + 1))
        await late.sweep()
        (trade,) = await webhook.trades_of(strat)
        assert trade.status == TradeStatus.PENDING.value
        assert (await webhook.signal(answer["signal_id"])).outcome == SignalOutcome.ACCEPTED
    finally:
        await handle.terminate("test over")
