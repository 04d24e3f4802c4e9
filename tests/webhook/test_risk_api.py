"""The risk API and the intake gate (docs/design.md#risk) on real parts: the app with its
lifespan, the migrated PostgreSQL, Temporal (the trades it starts have no worker here: their
workflows stay where intake left them, so the signals the kill switch sends are visible in
their histories). tests/workflows/test_risk_switch.py runs the same switch on real trades."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest_asyncio
from sqlalchemy import delete, func, select, text, update

from db.models import RiskDay, RiskPnl, RiskState, Signal, Strategy, Trade
from webhook import risk_queries
from webhook.apidoc import RiskView
from webhook.app import create_app
from webhook.risk_queries import COUNTED

from .conftest import TOKEN, Strat, Webhook

AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest_asyncio.fixture
async def api(webhook: Webhook) -> AsyncIterator[Webhook]:
    """The webhook with every scope ACTIVE before and after (the database is shared: a state
    left behind would refuse other tests' alerts)."""
    async with webhook.sessionmaker.begin() as session:
        await session.execute(delete(RiskState))
    try:
        yield webhook
    finally:
        async with webhook.sessionmaker.begin() as session:
            await session.execute(delete(RiskState))


async def change(api: Webhook, verb: str, **body: Any) -> dict[str, Any]:
    r = await api.http.post(f"/risk/{verb}", json=body, headers=AUTH)
    assert r.status_code == 200, r.text
    return r.json()


async def show(api: Webhook) -> dict[str, Any]:
    r = await api.http.get("/risk", headers=AUTH)
    assert r.status_code == 200, r.text
    return r.json()


def open_alert(strat: Strat, ticker: str = "BTCUSDT.P", **fields: Any) -> dict[str, Any]:
    return Webhook.alert(strat, ticker=ticker, **fields)


def exit_alert(strat: Strat, ticker: str = "BTCUSDT.P") -> dict[str, Any]:
    return Webhook.alert(strat, ticker=ticker, action="sell", market_position="flat",
                         prev_market_position="long", size=None)


async def refused(api: Webhook, body: dict[str, Any]) -> str:
    """The 422 refusal's reason, checked to be the signal row's recorded outcome."""
    r = await api.post(body)
    assert r.status_code == 422, r.text
    answer = r.json()
    assert answer["outcome"] == "REFUSED"
    row = await api.signal(answer["signal_id"])
    assert (row.outcome, row.reason) == ("REFUSED", answer["reason"])
    return answer["reason"]


async def set_limits(api: Webhook, strat: Strat, **limits: Any) -> None:
    async with api.sessionmaker.begin() as session:
        await session.execute(update(Strategy).where(Strategy.id == strat.id).values(**limits))


async def test_every_risk_endpoint_needs_the_admin_token(api: Webhook) -> None:
    for method, path in (("GET", "/risk"), ("POST", "/risk/halt"), ("POST", "/risk/reduce-only"),
                         ("POST", "/risk/resume")):
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
            r = await api.http.request(method, path, headers=headers, json={})
            assert r.status_code == 401, (method, path, headers)
            assert "admin token required" in r.json()["detail"]
    assert (await show(api))["account"]["state"] == "ACTIVE"  # nothing was changed


async def test_states_are_set_shown_recorded_and_resumed(api: Webhook) -> None:
    strat = await api.add_strategy()
    await set_limits(api, strat, max_open_trades=3, max_order_usdt=Decimal("250"))
    view = await show(api)
    assert view["account"] == {
        "scope": "account", "label": "account", "state": "ACTIVE", "latched": False,
        "flatten": False, "reason": None, "changed_by": None, "changed_at": None}
    [mine] = [s for s in view["strategies"] if s["name"] == strat.name]
    assert (mine["state"], mine["effective"]) == ("ACTIVE", {"state": "ACTIVE", "scope": "account"})
    assert mine["limits"]["max_open_trades"] == 3 and mine["limits"]["max_order_usdt"] == "250"
    assert mine["limits"]["daily_loss_usdt"] is None
    assert set(view["limits"]) >= {"max_order_usdt", "max_open_trades", "daily_loss_pct"}
    assert view["today"]["timezone"] == "UTC" and "net_pnl" in view["today"]

    done = await change(api, "reduce-only", strategy=strat.name, reason="news at 14:00",
                        by="alice")
    assert (done["before"]["state"], done["state"]["state"]) == ("ACTIVE", "REDUCE_ONLY")
    assert done["state"]["scope"] == f"strategy:{strat.name}"
    event = done["event"]
    assert (event["scope"], event["state_before"], event["state_after"], event["actor"],
            event["reason"]) == (f"strategy:{strat.name}", "ACTIVE", "REDUCE_ONLY", "alice",
                                 "news at 14:00")
    done = await change(api, "halt", flatten=True, reason="going offline")
    assert done["state"]["state"] == "HALTED" and done["state"]["flatten"] is True
    assert done["event"]["actor"] == "api"  # no `by`: the API's own name

    view = await show(api)
    assert (view["account"]["state"], view["account"]["changed_by"],
            view["account"]["reason"]) == ("HALTED", "api", "going offline")
    [mine] = [s for s in view["strategies"] if s["name"] == strat.name]
    # The stricter wins: the account's halt over the strategy's reduce-only.
    assert (mine["state"], mine["effective"]) == ("REDUCE_ONLY",
                                                  {"state": "HALTED", "scope": "account"})
    [own] = [s for s in view["scopes"] if s["scope"] == f"strategy:{strat.name}"]
    assert (own["changed_by"], own["reason"]) == ("alice", "news at 14:00")
    newest = [(e["scope"], e["state_after"], e["flatten"]) for e in view["events"][:2]]
    assert newest == [("account", "HALTED", True), (f"strategy:{strat.name}", "REDUCE_ONLY", False)]

    done = await change(api, "resume", reason="back")
    assert (done["before"]["state"], done["state"]["state"], done["state"]["flatten"]) == (
        "HALTED", "ACTIVE", False)
    await change(api, "resume", strategy=strat.name)
    view = await show(api)
    [mine] = [s for s in view["strategies"] if s["name"] == strat.name]
    assert (view["account"]["state"], mine["effective"]["state"]) == ("ACTIVE", "ACTIVE")
    assert view["events"][0]["reason"] == "no reason given"


async def test_unknown_strategy_is_404_and_flatten_belongs_to_halt_only(api: Webhook) -> None:
    for verb in ("halt", "reduce-only", "resume"):
        r = await api.http.post(f"/risk/{verb}", json={"strategy": "no-such-strategy"},
                                headers=AUTH)
        assert r.status_code == 404, r.text
        assert r.json()["detail"].startswith("no strategy 'no-such-strategy'")
    r = await api.http.post("/risk/reduce-only", json={"flatten": True}, headers=AUTH)
    assert r.status_code == 422
    async with api.sessionmaker() as session:
        assert (await session.scalars(select(RiskState))).all() == []


async def test_a_halt_signals_cancel_to_the_entries_it_stops(api: Webhook) -> None:
    strat = await api.add_strategy()
    opened = await api.post(open_alert(strat))
    assert opened.status_code == 202, opened.text
    wid = opened.json()["workflow_id"]
    done = await change(api, "halt", strategy=strat.name, reason="stop it")
    assert (done["signalled"], done["undelivered"]) == (1, [])
    history = await api.temporal.get_workflow_handle(wid).fetch_history()
    signals = [e.workflow_execution_signaled_event_attributes for e in history.events
               if e.HasField("workflow_execution_signaled_event_attributes")]
    # The stop, then the state the trade shows in its details (without waiting for the
    # account watcher's round).
    assert [s.signal_name for s in signals] == ["cancel", "trading_state"]
    payload = signals[0].input.payloads[0].data.decode()
    assert f"risk: strategy '{strat.name}' HALTED" in payload and "stop it" in payload
    assert '"flatten":false' in payload.replace(" ", "")
    notice = json.loads(signals[1].input.payloads[0].data)
    assert (notice["state"], notice["scope"]) == ("HALTED", f"strategy:{strat.name}")
    assert "stop it" in notice["reason"]


async def test_reduce_only_refuses_an_open_and_lets_an_exit_through(api: Webhook) -> None:
    strat = await api.add_strategy()
    assert (await api.post(open_alert(strat))).status_code == 202
    await change(api, "reduce-only", reason="wind down")
    reason = await refused(api, open_alert(strat, ticker="ETHUSDT.P"))
    assert reason == ("risk: the account is REDUCE_ONLY: no new position is opened "
                      "(`tradewire risk resume` lifts it)")
    r = await api.post(exit_alert(strat))
    assert r.status_code == 202, r.text
    assert r.json()["outcome"] == "ACCEPTED" and len(r.json()["closing"]) == 1


async def test_halted_refuses_opens_and_exits(api: Webhook) -> None:
    strat = await api.add_strategy()
    assert (await api.post(open_alert(strat))).status_code == 202
    await change(api, "halt", strategy=strat.name)
    reason = await refused(api, open_alert(strat, ticker="ETHUSDT.P"))
    assert reason.startswith(f"risk: the strategy '{strat.name}' is HALTED: no new position")
    reason = await refused(api, exit_alert(strat))
    assert reason.startswith(f"risk: the strategy '{strat.name}' is HALTED: nothing new is sent, "
                             "exits included")
    other = await api.add_strategy()  # another strategy is not halted
    assert (await api.post(open_alert(other))).status_code == 202


async def test_the_stricter_of_the_account_and_the_strategy_wins(api: Webhook) -> None:
    strat = await api.add_strategy()
    assert (await api.post(open_alert(strat))).status_code == 202
    await change(api, "reduce-only")
    await change(api, "halt", strategy=strat.name)
    assert f"the strategy '{strat.name}' is HALTED" in await refused(api, exit_alert(strat))
    await change(api, "halt")
    await change(api, "reduce-only", strategy=strat.name)
    assert "the account is HALTED" in await refused(api, exit_alert(strat))
    await change(api, "resume")
    # The account resumed; the strategy's own reduce-only still applies: exits pass, opens not.
    assert "the strategy" in await refused(api, open_alert(strat, ticker="ETHUSDT.P"))
    assert (await api.post(exit_alert(strat))).status_code == 202


async def test_a_reverse_under_reduce_only_carries_out_its_close_half_only(api: Webhook) -> None:
    strat = await api.add_strategy()
    long = await api.post(open_alert(strat))
    assert long.status_code == 202
    await change(api, "reduce-only", strategy=strat.name)
    r = await api.post(Webhook.alert(strat, action="sell", market_position="short",
                                     prev_market_position="long", size=None,
                                     market_position_size=Decimal("0.01")))
    assert r.status_code == 202, r.text
    body = r.json()
    assert [t["trade_id"] for t in body["closing"]] == [long.json()["trade_id"]]
    assert "only this reverse's close half is carried out" in body["reason"]
    assert "REVERSE_TO_SHORT became CLOSE_LONG" in body["reason"]
    row = await api.signal(body["signal_id"])
    assert row.intent == "CLOSE_LONG" and "close half" in (row.reason or "")
    assert len(await api.trades_of(strat)) == 1  # nothing new opened
    await change(api, "halt", strategy=strat.name)
    reverse = Webhook.alert(strat, action="buy", market_position="long",
                            prev_market_position="short", size=None,
                            market_position_size=Decimal("0.01"))
    assert "exits included" in await refused(api, reverse)


async def test_max_open_trades_of_the_strategy_refuses_the_next_open(api: Webhook) -> None:
    strat = await api.add_strategy()
    await set_limits(api, strat, max_open_trades=1)
    assert (await api.post(open_alert(strat))).status_code == 202
    reason = await refused(api, open_alert(strat, ticker="ETHUSDT.P"))
    assert reason == (f"risk: max_open_trades of the strategy '{strat.name}' is 1: 1 trade(s) "
                      "already entering or open")
    # A reverse replaces the trades it closes: it is not one more.
    reverse = Webhook.alert(strat, action="sell", market_position="short",
                            prev_market_position="long", size=None,
                            market_position_size=Decimal("0.01"))
    assert (await api.post(reverse)).status_code == 202
    # An exit is never counted.
    assert (await api.post(exit_alert(strat, ticker="ETHUSDT.P"))).status_code == 200


async def test_max_open_trades_of_the_account_counts_every_strategy(
    api: Webhook, wh_settings: Any, db_url: str
) -> None:
    async with api.sessionmaker() as session:
        live = await session.scalar(select(func.count(Trade.id)).where(Trade.status.in_(COUNTED)))
    settings = wh_settings.model_copy(update={"risk_max_open_trades": live + 1})
    one, two = await api.add_strategy(), await api.add_strategy()
    app = create_app(settings, database_url=db_url)
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://tw") as http:
            second = Webhook(http, app, settings, api.sessionmaker, api.temporal)
            assert (await second.post(open_alert(one))).status_code == 202
            reason = await refused(second, open_alert(two, ticker="SOLUSDT.P"))
    assert reason == (f"risk: max_open_trades of the account is {live + 1}: {live + 1} trade(s) "
                      "already entering or open")


async def test_max_open_trades_holds_when_alerts_of_many_symbols_race(api: Webhook) -> None:
    """Four opens of four symbols at once under max_open_trades 1: the strategy-and-symbol
    lock does not serialise them, the count's own lock does: exactly one is accepted."""
    strat = await api.add_strategy()
    await set_limits(api, strat, max_open_trades=1)
    tickers = ["BTCUSDT.P", "ETHUSDT.P", "SOLUSDT.P", "XRPUSDT.P"]
    answers = await asyncio.gather(*(api.post(open_alert(strat, ticker=t)) for t in tickers))
    assert sorted(r.status_code for r in answers) == [202, 422, 422, 422], [r.text for r in answers]
    assert len(await api.trades_of(strat)) == 1
    refusals = [s for s in await api.signals_of(strat) if s.outcome == "REFUSED"]
    assert len(refusals) == 3 and all("max_open_trades" in (s.reason or "") for s in refusals)


async def test_a_halt_outlives_the_process_that_set_it(
    api: Webhook, wh_settings: Any, db_url: str
) -> None:
    """The state is in PostgreSQL: a new app on the same database (a restarted webhook) shows
    it and refuses by it."""
    strat = await api.add_strategy()
    await change(api, "halt", reason="before the restart")
    app = create_app(wh_settings.model_copy(), database_url=db_url)
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://tw") as http:
            fresh = Webhook(http, app, wh_settings, api.sessionmaker, api.temporal)
            view = await show(fresh)
            assert (view["account"]["state"], view["account"]["reason"]) == (
                "HALTED", "before the restart")
            assert "the account is HALTED" in await refused(fresh, open_alert(strat))
    async with api.sessionmaker() as session:
        recorded = await session.scalar(select(Signal.reason).where(
            Signal.strategy_name == strat.name).order_by(Signal.id.desc()).limit(1))
        assert recorded is not None and "HALTED" in recorded
        assert await session.scalar(text("SELECT state FROM risk_state WHERE scope = 'account'")) \
            == "HALTED"


async def test_a_redelivery_that_starts_an_accepted_alert_is_not_counted_again(
    api: Webhook,
) -> None:
    """An alert accepted while Temporal did not take its start (NOT_STARTED) already has its
    trade row: its redelivery starts that trade, it is not one more under max_open_trades."""
    strat = await api.add_strategy()
    await set_limits(api, strat, max_open_trades=1)
    body = open_alert(strat)
    first = await api.post(body)
    assert first.status_code == 202, first.text
    async with api.sessionmaker.begin() as session:
        await session.execute(text("UPDATE signal SET outcome = 'NOT_STARTED' WHERE id = :id"),
                              {"id": first.json()["signal_id"]})
    again = await api.post(body)
    assert again.status_code == 202, again.text
    assert again.json()["trade_id"] == first.json()["trade_id"]
    assert len(await api.trades_of(strat)) == 1


async def test_each_scope_shows_the_latchs_pnl_at_mark_beside_its_daily_limits(api: Webhook) -> None:
    """Where the daily loss latch keeps today's figure of a scope (realized with fees and
    unrealized at mark), GET /risk shows it with the scope's daily loss limits and the loss
    that would latch it; elsewhere the realized figure only, saying so."""
    strat = await api.add_strategy()
    other = await api.add_strategy()
    await set_limits(api, strat, daily_loss_usdt=Decimal(50), daily_loss_pct=Decimal(2))
    today = datetime.now(UTC).date()
    async with api.sessionmaker.begin() as session:
        await session.execute(delete(RiskPnl))
        await session.execute(delete(RiskDay).where(RiskDay.day == today))
        session.add(RiskDay(day=today, equity=Decimal(2000)))
        session.add(RiskPnl(scope=f"strategy:{strat.name}", day=today,
                            realized=Decimal("-40.00"), unrealized=Decimal("-12.31")))
        session.add(RiskPnl(scope="account", day=today - timedelta(days=1),
                            realized=Decimal(-1), unrealized=Decimal(-1)))  # yesterday's
    try:
        view = await show(api)
    finally:
        async with api.sessionmaker.begin() as session:
            await session.execute(delete(RiskPnl))
            await session.execute(delete(RiskDay).where(RiskDay.day == today))
    RiskView.model_validate(view)  # the answer the OpenAPI document describes
    [mine] = [s for s in view["strategies"] if s["name"] == strat.name]
    at = mine["today"].pop("at")
    assert at is not None and at.startswith(str(today))
    assert mine["today"] == {"source": "latch", "pnl": "-52.31", "realized": "-40.00",
                             "unrealized": "-12.31", "loss_limit_usdt": "40.00"}  # 2 % of 2000
    assert mine["today_pnl"] == "-52.31"
    [free] = [s for s in view["strategies"] if s["name"] == other.name]
    assert free["today"] == {"source": "realized", "pnl": "0", "realized": "0",
                             "unrealized": None, "at": None, "loss_limit_usdt": None}
    account = view["today"]["account"]
    assert account["source"] == "realized" and account["unrealized"] is None
    assert account["pnl"] == view["today"]["net_pnl"]  # yesterday's figure is not today's
    assert view["today"]["start_equity"] == "2000"
    # One definition of the day and of its realized PnL: the latch's (activities/daily_loss).
    assert not hasattr(risk_queries, "day_start") and not hasattr(risk_queries, "pnl_since")
