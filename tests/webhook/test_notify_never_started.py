"""A trade the webhook's outbox ends REFUSED ("never started": Temporal never took it) is
notified like one its workflow refused (docs/design.md#notifications)."""

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
