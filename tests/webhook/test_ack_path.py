"""The ack path's promises against real PostgreSQL and Temporal: the fast path's venue warm-up
hook sees exactly the opens and reverses that passed the checks, and a start whose answer was
lost (Temporal overloaded) is answered by whether the workflow exists."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from temporalio.client import (
    Client,
    Interceptor,
    OutboundInterceptor,
    StartWorkflowInput,
    WorkflowExecutionStatus,
    WorkflowHandle,
)
from temporalio.service import RPCError, RPCStatusCode

from trading.types import SignalOutcome

from .conftest import Strat, Webhook

# --- venue warm-up ---------------------------------------------------------------------------


def _warmed(webhook: Webhook) -> list[str]:
    calls: list[str] = []
    webhook.app.state.tw.warm_venue = calls.append
    return calls


def _exit(webhook: Webhook, strat: Strat, **fields: Any) -> dict[str, Any]:
    return webhook.alert(
        strat,
        action="sell",
        market_position="flat",
        prev_market_position="long",
        size=None,
        **fields,
    )


async def test_an_accepted_open_warms_its_resolved_symbol(webhook: Webhook) -> None:
    calls = _warmed(webhook)
    strat = await webhook.add_strategy()
    r = await webhook.post(webhook.alert(strat, ticker="BITUNIX:ESPUSDT.P", size="12.5"))
    assert r.status_code == 202, r.text
    assert calls == ["ESPUSDT"]


async def test_a_reverse_warms_its_symbol(webhook: Webhook) -> None:
    calls = _warmed(webhook)
    strat = await webhook.add_strategy()
    reverse = webhook.alert(
        strat, action="sell", market_position="short", prev_market_position="long"
    )
    r = await webhook.post(reverse)
    assert r.status_code == 202, r.text
    assert r.json()["symbol"] == "BTCUSDT"
    assert calls == ["BTCUSDT"]


async def test_refused_alerts_and_exits_warm_nothing(webhook: Webhook) -> None:
    calls = _warmed(webhook)
    strat = await webhook.add_strategy()
    opened = await webhook.post(webhook.alert(strat))
    assert opened.status_code == 202, opened.text
    calls.clear()
    wrong_secret = webhook.alert(strat, secret="x" * 32)
    assert (await webhook.post(wrong_secret)).status_code == 401
    unknown_symbol = webhook.alert(strat, ticker="NOSUCHCOINUSDT.P")
    assert (await webhook.post(unknown_symbol)).status_code == 422
    exit_alert = await webhook.post(_exit(webhook, strat))
    assert exit_alert.status_code == 202, exit_alert.text
    assert calls == []


async def test_a_failing_warm_up_does_not_refuse_the_alert(webhook: Webhook) -> None:
    def broken(symbol: str) -> None:
        raise RuntimeError(f"warm-up of {symbol} broke")

    webhook.app.state.tw.warm_venue = broken
    strat = await webhook.add_strategy()
    r = await webhook.post(webhook.alert(strat))
    assert r.status_code == 202, r.text
    assert (await webhook.signal(r.json()["signal_id"])).outcome == SignalOutcome.ACCEPTED


# --- a start whose answer is lost ------------------------------------------------------------


class _LostAnswer(Interceptor):
    """Makes every start time out: after Temporal took it (`forward`), or before it left."""

    def __init__(self, forward: bool, error: Exception) -> None:
        self.forward = forward
        self.error = error
        self.calls = 0

    def intercept_client(self, next: OutboundInterceptor) -> OutboundInterceptor:
        return _LoseStartAnswer(next, self)


class _LoseStartAnswer(OutboundInterceptor):
    def __init__(self, next: OutboundInterceptor, owner: _LostAnswer) -> None:
        super().__init__(next)
        self.owner = owner

    async def start_workflow(self, input: StartWorkflowInput) -> WorkflowHandle[Any, Any]:
        self.owner.calls += 1
        if self.owner.forward:
            await super().start_workflow(input)
        raise self.owner.error


class _Connected:
    """Stands in for the app's TemporalHandle: always this client."""

    def __init__(self, client: Client) -> None:
        self.client = client

    async def try_connect(self) -> Client:
        return self.client


def _lose_answers(webhook: Webhook, forward: bool, error: Exception) -> _LostAnswer:
    interceptor = _LostAnswer(forward, error)
    config = webhook.temporal.config()
    config["interceptors"] = [*config.get("interceptors", []), interceptor]
    webhook.app.state.tw.temporal = _Connected(Client(**config))
    return interceptor


TIMEOUTS = [
    pytest.param(
        RPCError("deadline exceeded", RPCStatusCode.DEADLINE_EXCEEDED, b""), id="rpc-deadline"
    ),
    pytest.param(TimeoutError(), id="call-budget"),
]


@pytest.mark.parametrize("error", TIMEOUTS)
async def test_a_start_that_timed_out_after_temporal_took_it_is_accepted(
    webhook: Webhook, error: Exception
) -> None:
    lost = _lose_answers(webhook, forward=True, error=error)
    strat = await webhook.add_strategy()
    r = await webhook.post(webhook.alert(strat))
    assert lost.calls == 1
    assert r.status_code == 202, r.text
    answer = r.json()
    assert answer["outcome"] == SignalOutcome.ACCEPTED.value
    assert answer["workflow_id"] == f"trade-{strat.name}-{answer['signal_id']}"
    row = await webhook.signal(answer["signal_id"])
    assert (row.outcome, row.reason) == (SignalOutcome.ACCEPTED, None)
    described = await webhook.temporal.get_workflow_handle(answer["workflow_id"]).describe()
    assert described.status == WorkflowExecutionStatus.RUNNING


@pytest.mark.parametrize("error", TIMEOUTS)
async def test_a_start_that_timed_out_before_reaching_temporal_is_not_started(
    webhook: Webhook, error: Exception
) -> None:
    lost = _lose_answers(webhook, forward=False, error=error)
    strat = await webhook.add_strategy()
    r = await webhook.post(webhook.alert(strat))
    assert lost.calls == 1
    assert r.status_code == 503, r.text
    answer = r.json()
    assert answer["outcome"] == SignalOutcome.NOT_STARTED.value
    assert "did not answer in time" in answer["reason"] or "deadline" in answer["reason"]
    row = await webhook.signal(answer["signal_id"])
    assert row.outcome == SignalOutcome.NOT_STARTED
    assert row.reason.startswith("not started: Temporal unavailable")
    with pytest.raises(RPCError) as missing:
        await webhook.temporal.get_workflow_handle(
            f"trade-{strat.name}-{answer['signal_id']}"
        ).describe()
    assert missing.value.status is RPCStatusCode.NOT_FOUND


def test_starts_are_eager_only_while_few_alerts_are_in_hand() -> None:
    from webhook.intake import EAGER_MAX_IN_FLIGHT, eager_now

    assert eager_now(True, 1)
    assert eager_now(True, EAGER_MAX_IN_FLIGHT)
    assert not eager_now(True, EAGER_MAX_IN_FLIGHT + 1)
    assert not eager_now(False, 1)  # a redelivery's start is never eager


# --- an exit that races its open's start -----------------------------------------------------


class _SlowStart(Interceptor):
    """Holds every start for `delay_s` before it reaches Temporal (a loaded server)."""

    def __init__(self, delay_s: float) -> None:  # float-ok: seconds
        self.delay_s = delay_s
        self.waiting = asyncio.Event()

    def intercept_client(self, next: OutboundInterceptor) -> OutboundInterceptor:
        return _HoldStart(next, self)


class _HoldStart(OutboundInterceptor):
    def __init__(self, next: OutboundInterceptor, owner: _SlowStart) -> None:
        super().__init__(next)
        self.owner = owner

    async def start_workflow(self, input: StartWorkflowInput) -> WorkflowHandle[Any, Any]:
        self.owner.waiting.set()
        await asyncio.sleep(self.owner.delay_s)
        return await super().start_workflow(input)


async def test_an_exit_that_arrives_while_its_opens_start_is_in_flight_reaches_the_trade(
    webhook: Webhook,
) -> None:
    """Review finding 9: the exit found the open's row, but its workflow did not exist yet; it
    was answered "nothing to close" and the open then entered with its exit consumed."""
    slow = _SlowStart(delay_s=1.0)
    config = webhook.temporal.config()
    config["interceptors"] = [*config.get("interceptors", []), slow]
    webhook.app.state.tw.temporal = _Connected(Client(**config))
    strat = await webhook.add_strategy()
    opening = asyncio.create_task(webhook.post(webhook.alert(strat)))
    await asyncio.wait_for(slow.waiting.wait(), 10)  # the open is recorded; its start waits
    exit_alert = webhook.alert(strat, action="sell", market_position="flat",
                               prev_market_position="long")
    r = await webhook.post(exit_alert)
    opened = await opening
    assert opened.status_code == 202, opened.text
    assert r.status_code == 202, r.text
    assert r.json()["outcome"] == SignalOutcome.ACCEPTED.value
    workflow_id = opened.json()["workflow_id"]
    assert [c["workflow_id"] for c in r.json()["closing"]] == [workflow_id]
    history = await webhook.temporal.get_workflow_handle(workflow_id).fetch_history()
    signals = [e.workflow_execution_signaled_event_attributes.signal_name for e in history.events
               if e.HasField("workflow_execution_signaled_event_attributes")]
    assert signals == ["close"]
