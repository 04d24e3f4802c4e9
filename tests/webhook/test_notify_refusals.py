"""The webhook's own refusals are notified (docs/design.md#notifications): an authenticated
alert it refuses, and a trade its outbox ends REFUSED ("never started": Temporal never took
it), like one its workflow refused."""

from __future__ import annotations

import asyncio

from sqlalchemy import select

from db.models import Notification
from trading.types import TradeStatus

from .conftest import Webhook
from .test_outbox import _not_started, _outbox


async def test_a_trade_that_never_started_is_notified_refused(webhook: Webhook) -> None:
    _, strat = await _not_started(webhook, max_alert_age_s=1)
    await asyncio.sleep(1.2)  # past its max alert age, as test_outbox does
    assert await _outbox(webhook).sweep() >= 1
    (trade,) = await webhook.trades_of(strat)
    assert trade.status == TradeStatus.REFUSED.value
    async with webhook.sessionmaker() as session:
        rows = (await session.scalars(select(Notification).where(
            Notification.event == "trade_refused",
            Notification.payload["trade_id"].as_integer() == trade.id))).all()
    assert {r.receiver for r in rows} == {"webhook", "telegram"}
    assert all("never started" in r.payload["reason"] and r.strategy_id == strat.id
               for r in rows)


async def test_an_authenticated_alert_refused_at_the_door_is_notified(webhook: Webhook) -> None:
    """A fresh install's first trap (an unknown symbol) reaches the trader; a delivery with a
    wrong secret is nobody's alert and notifies nothing."""
    strat = await webhook.add_strategy()
    r = await webhook.post(webhook.alert(strat, ticker="BTCUSDX.P"))
    assert r.status_code == 422, r.text
    signal_id = r.json()["signal_id"]
    wrong = webhook.alert(strat) | {"secret": "x" * 40}
    assert (await webhook.post(wrong)).status_code == 401
    async with webhook.sessionmaker() as session:
        rows = (await session.scalars(select(Notification).where(
            Notification.event == "alert_refused", Notification.strategy_id == strat.id))).all()
    assert len(rows) == 2 and {r.receiver for r in rows} == {"webhook", "telegram"}
    assert all(r.payload["signal_id"] == signal_id and "unknown symbol 'BTCUSDX'"
               in r.payload["reason"] for r in rows)
