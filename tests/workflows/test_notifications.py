"""Notifications end to end (docs/design.md#notifications): real trades on the paper exchange,
the outbox in the real PostgreSQL, the worker's sender delivering to a local HTTP receiver that
stands for the webhook receiver and for Telegram's Bot API."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from pydantic import SecretStr
from sqlalchemy import select, text

from activities.incidents import IncidentBook, Mismatch
from activities.notify import enqueue
from activities.notify_sender import Receivers, Sender
from activities.risk import RiskBook
from db.models import Notification, Strategy
from tests.support.receiver import Receiver, free_port, receiver
from tests.workflows.harness import Harness, strategy, until
from trading.risk import strategy_scope
from trading.types import IncidentKind, NotifyEvent, PositionSide, TradeStatus, TradingState
from webhook.routing import snapshot as strategy_snapshot
from workflows.contract import Sizing
from workflows.messages import CloseRequest
from workflows.trade import TradeWorkflow

BTC = "BTCUSDT"
QTY = Decimal("0.0100")
TOKEN = "123456:telegram-token-" + uuid.uuid4().hex
HOOK_SECRET = "hook-secret-" + uuid.uuid4().hex
CHAT = "-100777"


def account(rec_url: str, *, hook_url: str | None = None) -> Receivers:
    return Receivers.of(webhook_url=hook_url or f"{rec_url}/hook",
                        webhook_secret=SecretStr(HOOK_SECRET),
                        telegram_token=SecretStr(TOKEN), telegram_chat_id=CHAT,
                        telegram_api_url=rec_url)


@contextlib.asynccontextmanager
async def sending(h: Harness, receivers: Receivers, *, timeout_s: float = 5.0
                  ) -> AsyncIterator[Sender]:
    """The worker's sender, running beside the harness's worker on an empty outbox."""
    async with h.sessionmaker() as session, session.begin():
        await session.execute(text("TRUNCATE notification"))
    sender = Sender(h.sessionmaker, receivers, timeout_s=timeout_s)
    task = asyncio.create_task(sender.run(0.1))
    try:
        yield sender
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def rows(h: Harness, **where: object) -> list[Notification]:
    async with h.sessionmaker() as session:
        stmt = select(Notification).order_by(Notification.id)
        for column, value in where.items():
            stmt = stmt.where(getattr(Notification, column) == value)
        return list((await session.scalars(stmt)).all())


async def new_strategy(h: Harness, **receivers: str) -> Strategy:
    async with h.sessionmaker() as session, session.begin():
        row = Strategy(name=f"notify-{uuid.uuid4().hex[:8]}", **receivers)
        session.add(row)
    return row


def hooks(rec: Receiver, path: str, event: str) -> list[dict]:
    return [r.json for r in rec.at(path) if r.json["event"] == event]


def telegrams(rec: Receiver) -> list[dict]:
    return [r.json for r in rec.at(f"/bot{TOKEN}/sendMessage")]


async def test_a_trade_s_open_and_close_are_notified_with_the_pnl_signed(harness: Harness) -> None:
    h = harness
    await h.paper.admin.set_price(BTC, "95000")
    with receiver() as rec:
        async with sending(h, account(rec.url)):
            handle = await h.trade(sizing=Sizing(size=QTY), tp=Decimal("99000"))
            await h.until_state(handle, lambda s: s.status is TradeStatus.TRACKING
                                and s.protection.order_id is not None, "tracking")
            await h.paper.admin.set_price(BTC, "95500")
            await handle.signal(TradeWorkflow.close, CloseRequest(reason="exit alert"))
            result = await h.result(handle)
            assert result.status is TradeStatus.CLOSED
            await until(lambda: _true(len(hooks(rec, "/hook", "trade_closed")) == 1
                                              and len(telegrams(rec)) == 2), "both delivered")
    opened, closed = hooks(rec, "/hook", "trade_opened"), hooks(rec, "/hook", "trade_closed")
    assert len(opened) == 1 and opened[0]["trade_id"] == result.trade_id
    assert Decimal(opened[0]["filled_qty"]) == QTY
    assert Decimal(closed[0]["realized_pnl"]) == result.realized_pnl != 0
    assert f"PnL {format(result.realized_pnl, 'f')} USDT" in closed[0]["text"]
    # The webhook's signature: HMAC-SHA256 of "<timestamp>.<body>" under the secret.
    for sent in rec.at("/hook"):
        ts = sent.headers["X-Tradewire-Timestamp"]
        mac = hmac.new(HOOK_SECRET.encode(), ts.encode() + b"." + sent.body, hashlib.sha256)
        assert sent.headers["X-Tradewire-Signature"] == "sha256=" + mac.hexdigest()
        assert abs(int(ts) - datetime.now(UTC).timestamp()) < 600
    # Telegram: the bot's sendMessage, to the chat, opened first.
    first, second = telegrams(rec)
    assert first["chat_id"] == second["chat_id"] == CHAT
    assert "opened" in first["text"] and "closed" in second["text"] and "PnL" in second["text"]

    # A row is marked sent once its receiver has answered: the receiver saw it just before.
    async def all_sent() -> bool:
        return {r.status for r in await rows(h)} == {"sent"}

    await until(all_sent, "every notification row marked sent")


async def test_a_refused_trade_is_notified_to_its_strategy_s_own_receiver(
        harness: Harness) -> None:
    h = harness
    with receiver() as rec:
        own = await new_strategy(h, notify_webhook_url=f"{rec.url}/strategy-hook")
        async with sending(h, account(rec.url)):
            handle = await h.trade(sizing=Sizing(size=QTY), strategy_id=own.id,
                                   strat=strategy(own.name),
                                   alert_time=datetime.now(UTC) - timedelta(minutes=10))
            result = await h.result(handle)
            assert result.status is TradeStatus.REFUSED
            await until(lambda: _true(hooks(rec, "/strategy-hook", "trade_refused")
                                              and telegrams(rec)), "the refusal delivered")
    refused = hooks(rec, "/strategy-hook", "trade_refused")[0]
    assert refused["strategy"] == own.name and "max alert age" in refused["reason"]
    assert "max alert age" in refused["text"]
    assert "X-Tradewire-Signature" not in rec.at("/strategy-hook")[0].headers  # its own: unsigned
    assert not rec.at("/hook")  # the strategy's webhook replaced the account's
    assert "max alert age" in telegrams(rec)[0]["text"]  # the account's bot still writes


async def test_an_incident_and_a_risk_change_are_notified(harness: Harness) -> None:
    h = harness
    with receiver() as rec:
        own = await new_strategy(h, telegram_chat_id="-100555")
        async with sending(h, account(rec.url)):
            book = IncidentBook(h.sessionmaker)
            gap = Mismatch(f"test-notify:{uuid.uuid4().hex}", IncidentKind.UNOWNED_QUANTITY, BTC,
                           PositionSide.LONG, Decimal("0.5"), Decimal(0), "0.5 nobody owns")
            raised = await book.apply({gap.fingerprint: gap},
                                      {gap.fingerprint: (gap, datetime.now(UTC))})
            assert raised.raised
            await book.apply({}, {})
            risk = RiskBook(h.sessionmaker)
            scope = strategy_scope(own.name)
            await risk.set_state(scope, TradingState.HALTED, actor="test", reason="by hand")
            await risk.set_state(scope, TradingState.ACTIVE, actor="test", reason="again")
            mine = raised.raised[0].id
            await until(lambda: _true(len(_about(rec, mine)) == 8), "all delivered")
    hooked = [r.json for r in _about(rec, mine) if r.path == "/hook"]
    assert [r["event"] for r in hooked] == ["incident_raised", "incident_resolved",
                                            "risk_state_changed", "risk_state_changed"]
    assert hooked[0]["detail"] == "0.5 nobody owns"
    assert (hooked[2]["state_before"], hooked[2]["state_after"], hooked[2]["actor"]) == (
        "ACTIVE", "HALTED", "test")
    chats = [r.json["chat_id"] for r in _about(rec, mine) if r.path.startswith("/bot")]
    # The incidents are the account's; the strategy's state goes to its own chat.
    assert chats == [CHAT, CHAT, "-100555", "-100555"]


def _about(rec: Receiver, incident_id: int) -> list:
    """What the receiver got about this incident, and every risk change (ours only here)."""
    def mine(body: dict) -> bool:
        said = body.get("text", "")
        if "incident_id" in body:
            return body["incident_id"] == incident_id
        return (f"incident #{incident_id} " in said or body.get("event") == "risk_state_changed"
                or "→" in said)
    return [r for r in rec.received if mine(r.json)]


async def _true(value: object) -> object:
    return value


async def test_a_dead_or_slow_receiver_never_delays_a_trade_and_is_retried(
        harness: Harness, caplog: pytest.LogCaptureFixture) -> None:
    h = harness
    caplog.set_level(logging.DEBUG)
    dead = free_port()  # nothing listens: connection refused
    await h.paper.admin.set_price(BTC, "95000")
    with receiver(hold_s=10) as slow:
        receivers = account(slow.url, hook_url=f"http://127.0.0.1:{dead}/hook")
        async with sending(h, receivers, timeout_s=30):
            handle = await h.trade(sizing=Sizing(size=QTY), tp=Decimal("99000"))
            await until(lambda: _status(h, handle, TradeStatus.TRACKING), "tracking")
            # The trade is tracking; its notification is still waiting on both receivers.
            opened = await rows(h, event="trade_opened")
            assert len(opened) == 2 and {r.status for r in opened} == {"pending"}
            await until(lambda: _attempted(h, "webhook"), "the webhook tried and failed")
            with receiver(dead) as revived:
                slow.release.set()
                await until(lambda: _all_sent(h, "trade_opened"), "delivered once it answers")
                assert len(hooks(revived, "/hook", "trade_opened")) == 1
            history = (await handle.fetch_history()).to_json()
            await handle.signal(TradeWorkflow.close, CloseRequest(reason="exit alert"))
            assert (await h.result(handle)).status is TradeStatus.CLOSED
    webhook_row = (await rows(h, event="trade_opened", receiver="webhook"))[0]
    assert webhook_row.attempts >= 2 and webhook_row.status == "sent"
    assert any("notification #" in r.getMessage() and "ConnectError" in r.getMessage()
               for r in caplog.records)
    # The receivers' secrets are in no log line, no workflow history and no outbox row.
    logged = "\n".join(r.getMessage() + (r.exc_text or "") for r in caplog.records)
    payloads = str([r.payload for r in await rows(h)])
    for secret in (TOKEN, HOOK_SECRET):
        assert secret not in logged and secret not in history and secret not in payloads


async def _status(h: Harness, handle: object, status: TradeStatus) -> bool:
    return (await h.trade_row(handle)).status == status.value  # type: ignore[arg-type]


async def _attempted(h: Harness, kind: str) -> bool:
    return any(r.attempts >= 1 and r.last_error for r in await rows(h, receiver=kind))


async def _all_sent(h: Harness, event: str) -> bool:
    found = await rows(h, event=event)
    return bool(found) and all(r.status == "sent" for r in found)


async def test_the_daily_summary_is_written_once_after_the_day_boundary(harness: Harness) -> None:
    h = harness
    await h.paper.admin.set_price(BTC, "95000")
    with receiver() as rec:
        async with sending(h, account(rec.url)) as sender:
            handle = await h.trade(sizing=Sizing(size=QTY), tp=Decimal("99000"))
            await h.until_state(handle, lambda s: s.status is TradeStatus.TRACKING, "tracking")
            await handle.signal(TradeWorkflow.close, CloseRequest(reason="exit alert"))
            result = await h.result(handle)
            tomorrow = datetime.now(UTC) + timedelta(days=1)
            # The running sender wrote none: today has not ended.
            assert not await rows(h, event="daily_summary")
            assert await sender.summarise(tomorrow)
            # Another worker (or a restart) at the same boundary writes no second one.
            assert await Sender(h.sessionmaker, sender.account).summarise(tomorrow)
            await until(lambda: _true(hooks(rec, "/hook", "daily_summary")), "delivered")
    (summary,) = hooks(rec, "/hook", "daily_summary")
    assert summary["day"] == datetime.now(UTC).date().isoformat()
    assert summary["closed"] == 1 and summary["open"] == 0
    assert Decimal(summary["realized_pnl"]) == result.realized_pnl
    assert len(await rows(h, event="daily_summary")) == 2  # one per kind of receiver


async def test_the_queue_over_its_bound_drops_the_oldest_and_says_so(
        wf_db, caplog: pytest.LogCaptureFixture) -> None:
    _, sessionmaker = wf_db
    caplog.set_level(logging.WARNING, logger="activities.notify_sender")
    async with sessionmaker() as session, session.begin():
        await session.execute(text("TRUNCATE notification"))
        for n in range(4):  # 8 rows: one per kind of receiver each
            await enqueue(session, NotifyEvent.TEST, {"text": f"number {n}"})
    sender = Sender(sessionmaker, Receivers(), queue_max=5)
    assert await sender.bound() == 3
    async with sessionmaker() as session:
        got = (await session.execute(select(Notification.status, Notification.payload)
                                     .order_by(Notification.id))).all()
    assert [s for s, _ in got] == ["dropped"] * 3 + ["pending"] * 5
    assert [p["text"] for _, p in got[:3]] == ["number 0", "number 0", "number 1"]
    assert sender.counts.dropped == 3
    assert any("over the bound of 5: dropped the 3 oldest" in r.getMessage()
               for r in caplog.records)
    assert await sender.bound() == 0


async def test_a_strategy_s_receiver_secrets_never_reach_a_trade_s_input(harness: Harness) -> None:
    """The webhook builds a trade's strategy snapshot from the row (webhook/routing.py): the
    receivers' columns are not part of it, so nothing of them enters a workflow's history."""
    own = await new_strategy(harness, notify_webhook_url="http://127.0.0.1:9/x",
                             notify_webhook_secret=HOOK_SECRET, telegram_bot_token=TOKEN,
                             telegram_chat_id=CHAT)
    async with harness.sessionmaker() as session:
        row = await session.get(Strategy, own.id)
        snapshot = strategy_snapshot(row).model_dump_json()
    assert own.name in snapshot
    assert HOOK_SECRET not in snapshot and TOKEN not in snapshot
