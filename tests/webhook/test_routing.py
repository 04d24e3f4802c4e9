"""Exit and reverse alerts reach the open trade found in PostgreSQL; out-of-order deliveries
are refused as stale; Temporal being down is recorded and healed by a redelivery."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowExecutionStatus

from trading.types import SignalOutcome, TradeStatus
from webhook.app import create_app
from webhook.schemas import render_alert

from .conftest import Webhook


def _at(seconds_ago: int) -> str:
    return (datetime.now(UTC) - timedelta(seconds=seconds_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")


async def _started_input(webhook: Webhook, workflow_id: str) -> dict:
    history = await webhook.temporal.get_workflow_handle(workflow_id).fetch_history()
    started = history.events[0].workflow_execution_started_event_attributes
    return json.loads(started.input.payloads[0].data)


async def _signals(webhook: Webhook, workflow_id: str) -> list[tuple[str, dict]]:
    history = await webhook.temporal.get_workflow_handle(workflow_id).fetch_history()
    return [
        (
            e.workflow_execution_signaled_event_attributes.signal_name,
            json.loads(e.workflow_execution_signaled_event_attributes.input.payloads[0].data),
        )
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED
    ]


def _close(webhook: Webhook, strat, **fields):
    return webhook.alert(
        strat, action="sell", market_position="flat", prev_market_position="long", **fields
    )


async def test_close_with_nothing_open_is_recorded_and_answered_200(webhook: Webhook) -> None:
    strat = await webhook.add_strategy()
    r = await webhook.post(_close(webhook, strat))
    assert r.status_code == 200, r.text
    assert r.json()["outcome"] == "NOTHING_TO_CLOSE"
    assert r.json()["reason"].startswith("nothing to close: no open long trade")
    row = await webhook.signal(r.json()["signal_id"])
    assert (row.outcome, row.intent, row.symbol) == (
        SignalOutcome.NOTHING_TO_CLOSE,
        "CLOSE_LONG",
        "BTCUSDT",
    )


async def test_close_signals_the_open_trade_of_that_strategy_and_symbol(webhook: Webhook) -> None:
    strat, other = await webhook.add_strategy(), await webhook.add_strategy()
    opened = (await webhook.post(webhook.alert(strat, time=_at(5)))).json()
    elsewhere = (await webhook.post(webhook.alert(strat, ticker="ETHUSDT", time=_at(5)))).json()
    theirs = (await webhook.post(webhook.alert(other, time=_at(5)))).json()
    r = await webhook.post(_close(webhook, strat))
    assert r.status_code == 202, r.text
    assert [c["trade_id"] for c in r.json()["closing"]] == [opened["trade_id"]]
    assert await _signals(webhook, opened["workflow_id"]) == [
        (
            "close",
            {
                "reason": f"exit alert (signal #{r.json()['signal_id']})",
                "signal_id": r.json()["signal_id"],
                "notify_workflow_id": None,
            },
        )
    ]
    assert await _signals(webhook, elsewhere["workflow_id"]) == []
    assert await _signals(webhook, theirs["workflow_id"]) == []
    again = await webhook.post(_close(webhook, strat, alert_id=None))  # another exit alert
    assert again.status_code == 202  # the trade is still TRACKING here: no worker moved it


async def test_close_delivered_before_its_open_leaves_the_late_open_refused_as_stale(
    webhook: Webhook,
) -> None:
    strat = await webhook.add_strategy()
    close = await webhook.post(_close(webhook, strat, time=_at(1)))
    assert close.json()["outcome"] == "NOTHING_TO_CLOSE"
    late_open = await webhook.post(webhook.alert(strat, time=_at(3)))
    assert late_open.status_code == 422, late_open.text
    assert late_open.json()["reason"].startswith("stale open: an exit alert for")
    row = await webhook.signal(late_open.json()["signal_id"])
    assert (row.outcome, row.intent) == (SignalOutcome.REFUSED, "OPEN_LONG")
    assert await webhook.trades_of(strat) == []
    newer_open = await webhook.post(webhook.alert(strat, time=_at(0)))
    assert newer_open.status_code == 202


async def test_an_open_of_the_same_second_as_an_exit_that_found_nothing_is_refused_as_stale(
    webhook: Webhook,
) -> None:
    """`{{timenow}}` has whole seconds: an entry and its exit fired on one bar carry equal times.
    The rule (review finding 13): an exit of that second that found nothing to close was this
    open's, delivered first, so the open is stale; after an exit that did close a trade, an open
    of the same second is a re-entry and is accepted."""
    strat = await webhook.add_strategy()
    bar = _at(2)  # one second, for both alerts
    close = await webhook.post(_close(webhook, strat, time=bar))
    assert close.json()["outcome"] == "NOTHING_TO_CLOSE"
    late_open = await webhook.post(webhook.alert(strat, time=bar))
    assert late_open.status_code == 422, late_open.text
    assert late_open.json()["reason"].startswith("stale open: an exit alert for")
    assert await webhook.trades_of(strat) == []

    other = await webhook.add_strategy()
    first = await webhook.post(webhook.alert(other, time=_at(5)))
    assert first.status_code == 202, first.text
    bar = _at(4)
    closed = await webhook.post(_close(webhook, other, time=bar))
    assert closed.json()["outcome"] == "ACCEPTED"
    reentry = await webhook.post(webhook.alert(other, time=bar))
    assert reentry.status_code == 202, reentry.text


async def test_an_exit_older_than_the_open_trade_is_refused_as_stale(webhook: Webhook) -> None:
    strat = await webhook.add_strategy()
    opened = await webhook.post(webhook.alert(strat, time=_at(1)))
    stale = await webhook.post(_close(webhook, strat, time=_at(5)))
    assert stale.status_code == 422
    assert stale.json()["reason"].startswith(
        f"stale exit: the open long trade #{opened.json()['trade_id']}"
    )
    assert await _signals(webhook, opened.json()["workflow_id"]) == []


async def test_reverse_closes_the_open_trade_first_and_sizes_by_market_position_size(
    webhook: Webhook,
) -> None:
    strat = await webhook.add_strategy()
    opened = (await webhook.post(webhook.alert(strat, size=Decimal("0.01"), time=_at(5)))).json()
    reverse = webhook.alert(
        strat,
        action="sell",
        market_position="short",
        prev_market_position="long",
        size=Decimal("0.03"),
        market_position_size=Decimal("0.02"),
        time=_at(1),
    )
    r = await webhook.post(reverse)
    assert r.status_code == 202, r.text
    assert r.json()["intent"] == "REVERSE_TO_SHORT"
    inp = await _started_input(webhook, r.json()["workflow_id"])
    assert inp["close_first_workflow_id"] == opened["workflow_id"]
    assert inp["sizing"] == {"size": "0.02", "size_usdt": None, "size_pct": None, "risk_pct": None}  # never 0.03
    trade = await webhook.trade(r.json()["trade_id"])
    assert (trade.side, trade.intent, trade.status) == (
        "SHORT",
        "REVERSE_TO_SHORT",
        TradeStatus.PENDING,
    )


async def test_reverse_passes_every_open_opposite_trade_to_the_new_workflow(
    webhook: Webhook,
) -> None:
    """Pyramiding: each of the strategy's open longs is closed, and waited for, by the reverse's
    own workflow (the newest in `close_first_workflow_id`, as before); none gets a close it
    would not wait for from the webhook."""
    strat = await webhook.add_strategy()
    first = (await webhook.post(webhook.alert(strat, time=_at(9)))).json()
    second = (await webhook.post(webhook.alert(strat, time=_at(8)))).json()
    third = (await webhook.post(webhook.alert(strat, time=_at(7)))).json()
    reverse = webhook.alert(
        strat, action="sell", market_position="short", prev_market_position="long", time=_at(1)
    )
    r = await webhook.post(reverse)
    assert r.status_code == 202, r.text
    inp = await _started_input(webhook, r.json()["workflow_id"])
    assert inp["close_first_workflow_id"] == third["workflow_id"]
    assert inp["also_close_first_workflow_ids"] == [second["workflow_id"], first["workflow_id"]]
    for opened in (first, second, third):
        assert await _signals(webhook, opened["workflow_id"]) == []


async def test_reverse_with_nothing_open_is_a_plain_open_of_the_new_leg(webhook: Webhook) -> None:
    strat = await webhook.add_strategy()
    r = await webhook.post(
        webhook.alert(
            strat,
            action="buy",
            market_position="long",
            prev_market_position="short",
            size=Decimal("2"),
            market_position_size=Decimal("1"),
        )
    )
    assert r.status_code == 202, r.text
    inp = await _started_input(webhook, r.json()["workflow_id"])
    assert (inp["intent"], inp["close_first_workflow_id"], inp["sizing"]["size"]) == (
        "OPEN_LONG",
        None,
        "1",
    )


async def _post_while_temporal_is_down(webhook: Webhook, db_url: str, body: dict) -> httpx.Response:
    down = webhook.settings.model_copy(update={"temporal_address": "127.0.0.1:9"})
    app = create_app(down, database_url=db_url)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://tw") as http,
    ):
        return await http.post("/webhook/tradingview", content=render_alert(body).encode())


async def test_temporal_down_is_503_and_a_redelivery_starts_the_same_workflow(
    webhook: Webhook, db_url: str
) -> None:
    strat = await webhook.add_strategy()
    body = webhook.alert(strat)
    r = await _post_while_temporal_is_down(webhook, db_url, body)
    assert r.status_code == 503, r.text
    assert r.json()["outcome"] == "NOT_STARTED"
    row = await webhook.signal(r.json()["signal_id"])
    assert row.outcome == SignalOutcome.NOT_STARTED and row.reason.startswith(
        "not started: Temporal unavailable"
    )
    again = await webhook.post(body)
    assert again.status_code == 202, again.text
    assert again.json()["trade_id"] == r.json()["trade_id"]
    assert again.json()["workflow_id"] == f"trade-{strat.name}-{r.json()['signal_id']}"
    assert (await webhook.signal(r.json()["signal_id"])).outcome == SignalOutcome.ACCEPTED
    described = await webhook.temporal.get_workflow_handle(again.json()["workflow_id"]).describe()
    assert described.status == WorkflowExecutionStatus.RUNNING
    third = await webhook.post(body)
    assert third.status_code == 200 and third.json()["trade_id"] == r.json()["trade_id"]
    assert len(await webhook.trades_of(strat)) == 1


async def test_an_exit_temporal_did_not_take_is_delivered_by_its_redelivery(
    webhook: Webhook, db_url: str
) -> None:
    strat = await webhook.add_strategy()
    opened = (await webhook.post(webhook.alert(strat, time=_at(5)))).json()
    close = _close(webhook, strat)
    r = await _post_while_temporal_is_down(webhook, db_url, close)
    assert r.status_code == 503 and r.json()["outcome"] == "NOT_STARTED"
    row = await webhook.signal(r.json()["signal_id"])
    assert row.outcome == SignalOutcome.NOT_STARTED and row.reason.startswith("not delivered")
    again = await webhook.post(close)
    assert again.status_code == 202, again.text
    assert [c["trade_id"] for c in again.json()["closing"]] == [opened["trade_id"]]
    assert [name for name, _ in await _signals(webhook, opened["workflow_id"])] == ["close"]


async def test_database_down_is_503_not_500(webhook: Webhook) -> None:
    bad = "postgresql+psycopg://postgres@/nosuchdb?host=/nonexistent-socket-dir"
    app = create_app(webhook.settings, database_url=bad)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://tw") as http,
    ):
        r = await http.post("/webhook/tradingview", content=b"{}")
    assert r.status_code == 503
    assert r.json()["reason"] == "database unavailable: retry"


def _partial(webhook: Webhook, strat, **fields):
    """TradingView's partial exit of a long: a sell that leaves the strategy still long."""
    return webhook.alert(
        strat, action="sell", market_position="long", prev_market_position="long", **fields
    )


async def _owning(webhook: Webhook, trade_id: int, qty: str) -> None:
    """Record the trade's fills as its workflow would (no worker runs here)."""
    from sqlalchemy import update

    from db.models import Trade

    async with webhook.sessionmaker.begin() as session:
        await session.execute(update(Trade).where(Trade.id == trade_id).values(
            status=TradeStatus.TRACKING.value, filled_qty=Decimal(qty)))


async def test_a_partial_exit_is_a_close_of_a_percent_of_each_or_a_base_size_oldest_first(
    webhook: Webhook,
) -> None:
    """Today's 422 "unsupported partial exit" is a partial close (docs/design.md#exits)."""
    strat = await webhook.add_strategy()
    older = (await webhook.post(webhook.alert(strat, time=_at(5)))).json()
    newer = (await webhook.post(webhook.alert(strat, time=_at(5)))).json()
    await _owning(webhook, older["trade_id"], "0.01")
    await _owning(webhook, newer["trade_id"], "0.01")

    pct = await webhook.post(_partial(webhook, strat, market_position_size=Decimal("0.01"),
                                      close_pct=Decimal("50")))
    assert pct.status_code == 202, pct.text
    row = await webhook.signal(pct.json()["signal_id"])
    assert (row.outcome, row.intent) == (SignalOutcome.ACCEPTED, "CLOSE_LONG")
    assert row.reason == f"closing 50 % of trade #{older['trade_id']}, #{newer['trade_id']}"
    for t in (older, newer):
        (name, body), = await _signals(webhook, t["workflow_id"])
        assert (name, Decimal(body["pct"]), body.get("qty")) == ("close", 50, None)

    base = await webhook.post(_partial(webhook, strat, market_position_size=Decimal("0.005"),
                                       size=Decimal("0.015")))
    assert base.status_code == 202, base.text
    assert [c["trade_id"] for c in base.json()["closing"]] == [older["trade_id"],
                                                              newer["trade_id"]]
    sent = [(await _signals(webhook, t["workflow_id"]))[-1][1] for t in (older, newer)]
    assert [Decimal(b["qty"]) for b in sent] == [Decimal("0.01"), Decimal("0.005")]

    small = await webhook.post(_partial(webhook, strat, market_position_size=Decimal("0.015"),
                                        size=Decimal("0.005")))
    assert [c["trade_id"] for c in small.json()["closing"]] == [older["trade_id"]]
    assert len(await _signals(webhook, newer["workflow_id"])) == 2  # not asked this time

    unsized = await webhook.post(_partial(webhook, strat, market_position_size=Decimal("0.01"),
                                          size=None))
    assert unsized.status_code == 422
    assert unsized.json()["reason"].startswith("missing field 'size': a partial exit")
    on_open = await webhook.post(webhook.alert(strat, close_pct=Decimal("50")))
    assert on_open.status_code == 422
    assert on_open.json()["reason"].startswith("field 'close_pct'")


async def test_a_partial_exit_with_nothing_open_answers_as_a_whole_exit_does(
    webhook: Webhook,
) -> None:
    strat = await webhook.add_strategy()
    r = await webhook.post(_partial(webhook, strat, market_position_size=Decimal("0.01"),
                                    size=Decimal("0.01")))
    assert r.status_code == 200, r.text
    assert r.json()["outcome"] == "NOTHING_TO_CLOSE"
    assert r.json()["reason"].startswith("nothing to close: no open long trade")
