"""A burst is answered from the durable record and started behind the answer
(webhook/start_queue.py): the alert is recorded QUEUED, answered 202 at once, and its workflow
started by the queue (ACCEPTED then). Dedupe, order and durability hold as for a start made
before the answer: a redelivery is a duplicate, an exit for a queued open is delivered after
that open started, and a queued start that never happened (Temporal away, the process gone) is
started by the outbox from its record, or ended REFUSED when too old by then."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from types import SimpleNamespace

from temporalio.service import RPCError, RPCStatusCode

import metrics
from trading.types import SignalOutcome, TradeStatus
from webhook.outbox import Outbox
from webhook.plans import StartPlan
from webhook.start_queue import StartQueue

from .conftest import Strat, Webhook
from .test_ack_path import _Connected, _lose_answers
from .test_outbox import _exists, _timeless, acted

UNAVAILABLE = RPCError("unavailable", RPCStatusCode.UNAVAILABLE, b"")
SETTLE_S = 20  # how long a queued start may take on a loaded machine before the test fails


def _every_open_queued(webhook: Webhook) -> None:
    """As in a burst: more alerts in hand than the threshold, whatever this test sends."""
    webhook.app.state.intake.queue_after = -1


async def _outcome_becomes(webhook: Webhook, signal_id: int, wanted: SignalOutcome
                           ) -> SignalOutcome:
    row = await webhook.signal(signal_id)
    for _ in range(SETTLE_S * 10):
        if row.outcome == wanted:
            break
        await asyncio.sleep(0.1)
        row = await webhook.signal(signal_id)
    return SignalOutcome(row.outcome)


async def _stopped_queue(webhook: Webhook) -> None:
    """The queue of a process that never gets to start anything (killed right after its
    answers): its starts wait for a slot that never frees."""
    intake = webhook.app.state.intake
    intake.starts = StartQueue(intake._start_queued, concurrency=0)


async def test_a_burst_is_answered_from_the_record_and_started_behind_the_answer(
    webhook: Webhook,
) -> None:
    _every_open_queued(webhook)
    strat = await webhook.add_strategy()
    r = await webhook.post(webhook.alert(strat))
    assert r.status_code == 202, r.text
    answer = r.json()
    assert answer["outcome"] == SignalOutcome.ACCEPTED.value
    assert answer["start"] == "queued"
    assert answer["workflow_id"] == f"trade-{strat.name}-{answer['signal_id']}"
    assert await _outcome_becomes(webhook, answer["signal_id"],
                                  SignalOutcome.ACCEPTED) == SignalOutcome.ACCEPTED
    assert await _exists(webhook, answer["workflow_id"])
    (trade,) = await webhook.trades_of(strat)
    assert trade.workflow_id == answer["workflow_id"]
    # Counted for the operator (/metrics): answered queued, then started; none left waiting.
    await webhook.app.state.intake.starts.join(30)
    assert metrics.REGISTRY.get_sample_value(
        "tradewire_queued_starts_total", {"stage": "queued"}) >= 1
    assert metrics.REGISTRY.get_sample_value(
        "tradewire_queued_starts_total", {"stage": "started"}) >= 1
    assert metrics.REGISTRY.get_sample_value("tradewire_start_queue") == 0


async def test_one_alert_at_a_time_is_still_answered_once_started(webhook: Webhook) -> None:
    strat = await webhook.add_strategy()
    r = await webhook.post(webhook.alert(strat))
    assert r.status_code == 202, r.text
    assert "start" not in r.json()
    assert (await webhook.signal(r.json()["signal_id"])).outcome == SignalOutcome.ACCEPTED
    assert await _exists(webhook, r.json()["workflow_id"])


async def test_a_redelivery_of_a_queued_alert_is_a_duplicate(webhook: Webhook) -> None:
    _every_open_queued(webhook)
    await _stopped_queue(webhook)  # still queued when the redelivery comes
    strat = await webhook.add_strategy()
    body = webhook.alert(strat)
    first = await webhook.post(body)
    assert first.status_code == 202 and first.json()["start"] == "queued", first.text
    assert (await webhook.signal(first.json()["signal_id"])).outcome == SignalOutcome.QUEUED
    again = await webhook.post(body)
    assert again.json()["outcome"] == SignalOutcome.DUPLICATE.value, again.text
    assert again.json()["duplicate_of"] == first.json()["signal_id"]
    assert len(await webhook.trades_of(strat)) == 1
    # Not started by the redelivery either: its queued start is on its way, in its turn.
    assert not await _exists(webhook, first.json()["workflow_id"])


async def test_an_exit_for_a_queued_open_starts_it_and_is_delivered_to_it(
    webhook: Webhook,
) -> None:
    _every_open_queued(webhook)
    await _stopped_queue(webhook)  # the open would never start in its turn
    strat = await webhook.add_strategy()
    opened = await webhook.post(webhook.alert(strat))
    assert opened.json()["start"] == "queued", opened.text
    workflow_id = opened.json()["workflow_id"]
    assert not await _exists(webhook, workflow_id)
    closed = await webhook.post(webhook.alert(strat, action="sell", market_position="flat",
                                              prev_market_position="long"))
    assert closed.status_code == 202, closed.text
    assert [c["workflow_id"] for c in closed.json()["closing"]] == [workflow_id]
    history = await webhook.temporal.get_workflow_handle(workflow_id).fetch_history()
    signals = [e.workflow_execution_signaled_event_attributes.signal_name for e in history.events
               if e.HasField("workflow_execution_signaled_event_attributes")]
    assert signals == ["close"]


async def test_a_queued_start_temporal_refuses_is_left_to_the_outbox(webhook: Webhook) -> None:
    _every_open_queued(webhook)
    lost = _lose_answers(webhook, forward=False, error=UNAVAILABLE)
    strat = await webhook.add_strategy()
    r = await webhook.post(_timeless(webhook, strat))
    assert r.status_code == 202 and r.json()["start"] == "queued", r.text
    signal_id = r.json()["signal_id"]
    assert await _outcome_becomes(webhook, signal_id,
                                  SignalOutcome.NOT_STARTED) == SignalOutcome.NOT_STARTED
    assert lost.calls >= 1
    assert "outbox" in ((await webhook.signal(signal_id)).reason or "")
    webhook.app.state.tw.temporal = _Connected(webhook.temporal)  # Temporal is back
    assert await acted(Outbox(webhook.app.state.intake, grace_s=0)) >= 1
    assert (await webhook.signal(signal_id)).outcome == SignalOutcome.ACCEPTED
    assert await _exists(webhook, r.json()["workflow_id"])


async def _queued_then_died(webhook: Webhook, **strategy_params: object
                            ) -> tuple[dict, Strat]:
    _every_open_queued(webhook)
    await _stopped_queue(webhook)
    strat = await webhook.add_strategy(**strategy_params)
    r = await webhook.post(_timeless(webhook, strat))
    assert r.status_code == 202 and r.json()["start"] == "queued", r.text
    await webhook.app.state.intake.starts.aclose(drain_s=0)  # the process is gone
    assert (await webhook.signal(r.json()["signal_id"])).outcome == SignalOutcome.QUEUED
    return r.json(), strat


async def test_a_queued_alert_whose_process_died_is_started_from_its_record(
    webhook: Webhook,
) -> None:
    """A 202 means durable: the answer went out, the start did not, and the outbox starts it."""
    answer, _ = await _queued_then_died(webhook)
    assert await acted(Outbox(webhook.app.state.intake, grace_s=0)) >= 1
    assert (await webhook.signal(answer["signal_id"])).outcome == SignalOutcome.ACCEPTED
    assert await _exists(webhook, answer["workflow_id"])


async def test_a_queued_alert_too_old_by_then_ends_refused_never_traded_late(
    webhook: Webhook,
) -> None:
    answer, strat = await _queued_then_died(webhook, max_alert_age_s=1)
    await asyncio.sleep(1.2)
    assert await acted(Outbox(webhook.app.state.intake, grace_s=0)) >= 1
    (trade,) = await webhook.trades_of(strat)
    assert trade.status == TradeStatus.REFUSED.value
    assert "never started" in (trade.error or "")
    assert not await _exists(webhook, answer["workflow_id"])


async def test_the_outbox_leaves_a_start_this_process_holds(webhook: Webhook) -> None:
    _every_open_queued(webhook)
    await _stopped_queue(webhook)
    strat = await webhook.add_strategy()
    r = await webhook.post(_timeless(webhook, strat))
    signal_id = r.json()["signal_id"]
    assert webhook.app.state.intake.starts.holds(signal_id)
    await Outbox(webhook.app.state.intake, grace_s=0).sweep()
    assert (await webhook.signal(signal_id)).outcome == SignalOutcome.QUEUED
    assert not await _exists(webhook, r.json()["workflow_id"])
    await webhook.app.state.intake.starts.aclose(drain_s=0)


# --- the queue itself ------------------------------------------------------------------------


class _Recorder:
    """A start that takes its time and says in which order the starts began and ended."""

    def __init__(self) -> None:
        self.began: list[str] = []
        self.ended: list[str] = []
        self.in_flight = 0
        self.most = 0

    def start(self, delay_s: dict[str, float]) -> Callable[[StartPlan], Awaitable[None]]:
        async def run(plan: StartPlan) -> None:
            self.began.append(plan.workflow_id)
            self.in_flight += 1
            self.most = max(self.most, self.in_flight)
            await asyncio.sleep(delay_s.get(plan.workflow_id, 0))
            self.in_flight -= 1
            self.ended.append(plan.workflow_id)
        return run


def _plan(workflow_id: str, strategy: str, symbol: str) -> StartPlan:
    """The queue reads only the workflow id, the strategy's name and the symbol."""
    inp = SimpleNamespace(strategy=SimpleNamespace(name=strategy), symbol=symbol)
    return StartPlan(signal_id=len(workflow_id), trade_id=1, workflow_id=workflow_id,
                     input=inp, eager=False, queued=True)  # type: ignore[arg-type]


async def test_starts_of_one_strategy_and_symbol_go_in_the_order_recorded() -> None:
    rec = _Recorder()
    # The first is slow: the second of the same strategy and symbol waits for it; another
    # symbol's does not.
    queue = StartQueue(rec.start({"a1": 0.3}))
    queue.submit(_plan("a1", "s", "BTCUSDT"))
    queue.submit(_plan("a2", "s", "BTCUSDT"))
    queue.submit(_plan("b1", "s", "ETHUSDT"))
    await queue.aclose(drain_s=10)
    assert rec.ended.index("a1") < rec.began.index("a2")
    assert rec.ended.index("b1") < rec.ended.index("a1")
    assert sorted(rec.ended) == ["a1", "a2", "b1"]


async def test_the_queue_starts_a_bounded_number_at_once() -> None:
    rec = _Recorder()
    queue = StartQueue(rec.start({f"w{k}": 0.05 for k in range(20)}), concurrency=3)
    for k in range(20):
        queue.submit(_plan(f"w{k}", "s", f"SYM{k}USDT"))
    await queue.aclose(drain_s=30)
    assert len(rec.ended) == 20
    assert rec.most == 3


async def test_starts_wait_while_answers_are_still_owed() -> None:
    rec = _Recorder()
    queue = StartQueue(rec.start({}), hold_s=60)
    queue.busy(True)  # the intake has a burst in hand
    queue.submit(_plan("w1", "s", "BTCUSDT"))
    for _ in range(5):
        await asyncio.sleep(0)
    await asyncio.sleep(0.1)
    assert rec.began == []
    queue.busy(False)  # every answer is out
    await queue.aclose(drain_s=10)
    assert rec.ended == ["w1"]


async def test_a_burst_that_lasts_holds_starts_back_only_so_long() -> None:
    rec = _Recorder()
    queue = StartQueue(rec.start({}), hold_s=0.05)
    queue.busy(True)  # and it never ends
    queue.submit(_plan("w1", "s", "BTCUSDT"))
    await queue.aclose(drain_s=10)
    assert rec.ended == ["w1"]


async def test_a_queued_open_warms_nothing_here(webhook: Webhook) -> None:
    """The venue warm-up serves a start made here; a queued one is started by the worker, so
    the reads would only cost the answers still owed in the burst."""
    calls: list[str] = []
    webhook.app.state.tw.warm_venue = calls.append
    _every_open_queued(webhook)
    strat = await webhook.add_strategy()
    r = await webhook.post(webhook.alert(strat))
    assert r.status_code == 202 and r.json()["start"] == "queued", r.text
    assert calls == []


async def test_a_start_behind_queued_starts_of_its_strategy_and_symbol_is_queued_too(
    webhook: Webhook,
) -> None:
    """Started at once, it would overtake them: a reverse would find the open it closes not
    started yet, and that open would start afterwards into the side the strategy left."""
    _every_open_queued(webhook)
    await _stopped_queue(webhook)
    strat = await webhook.add_strategy()
    first = await webhook.post(webhook.alert(strat))
    assert first.json()["start"] == "queued", first.text
    webhook.app.state.intake.queue_after = 1000  # the burst is over
    reverse = await webhook.post(webhook.alert(strat, action="sell", market_position="short",
                                               prev_market_position="long"))
    assert reverse.status_code == 202, reverse.text
    assert reverse.json()["start"] == "queued"
    assert not await _exists(webhook, reverse.json()["workflow_id"])
    elsewhere = await webhook.post(webhook.alert(strat, ticker="ETHUSDT.P", size="0.1"))
    assert elsewhere.status_code == 202, elsewhere.text
    assert "start" not in elsewhere.json()  # nothing queued ahead of it: started at once
    await webhook.app.state.intake.starts.aclose(drain_s=0)


async def test_an_exit_for_a_queued_open_another_process_left_ends_that_open(
    webhook: Webhook,
) -> None:
    """The open was queued by a webhook that stopped before starting it, and its exit came
    before the outbox started it: the exit is answered 503 (not delivered) and TradingView
    will not send it again, so the outbox must end the open, never start it into a position
    the strategy has left."""
    answer, strat = await _queued_then_died(webhook)
    closed = await webhook.post(webhook.alert(strat, action="sell", market_position="flat",
                                              prev_market_position="long"))
    assert closed.status_code == 503, closed.text
    assert closed.json()["outcome"] == SignalOutcome.NOT_STARTED.value
    assert await acted(Outbox(webhook.app.state.intake, grace_s=0)) >= 1
    (trade,) = [t for t in await webhook.trades_of(strat) if t.id == answer["trade_id"]]
    assert trade.status == TradeStatus.REFUSED.value, trade.error
    assert "exit" in (trade.error or "") and "never started" in (trade.error or "")
    assert not await _exists(webhook, answer["workflow_id"])
