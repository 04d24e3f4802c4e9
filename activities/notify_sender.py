"""Notifications (docs/design.md#notifications), how they reach people: the receivers, the
messages' text, and the worker's `Sender`, which delivers the outbox rows the events wrote
(activities/notify.py) with retries and backoff, and keeps the queue bounded (the oldest
waiting are dropped, logged and counted).

The receivers are looked up when a row is sent: the strategy's own (strategy columns) where it
set one of that kind, else the account's (settings). No log line holds a receiver's secret; the
Telegram token travels in the API's URL, so no URL of Telegram's is ever logged or printed.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from pydantic import SecretStr
from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from activities.notify import enqueue
from db.models import Notification, Strategy, Trade
from trading.types import (
    OPEN_TRADE_STATUSES,
    NotifyEvent,
    NotifyReceiver,
    NotifyStatus,
    TradeStatus,
)

log = logging.getLogger("activities.notify_sender")

SIGNATURE_HEADER = "X-Tradewire-Signature"
TIMESTAMP_HEADER = "X-Tradewire-Timestamp"
EVENT_HEADER = "X-Tradewire-Event"
BATCH = 50
# Retry n waits BACKOFF_S[n-1] (the last one from then on).
BACKOFF_S = (2, 5, 15, 30, 60, 120, 300)
# Sent, skipped, failed and dropped rows are kept this long (what was sent, for an operator).
KEEP = timedelta(days=14)
PRUNE_EVERY_S = 3600
# A claimed row is not taken again by another sender for the delivery's timeout plus this.
LEASE_MARGIN_S = 30


TELEGRAM_API = "https://api.telegram.org"


# --- receivers -------------------------------------------------------------------------------


@dataclass(frozen=True)
class WebhookReceiver:
    url: str
    secret: SecretStr | None = None

    def __repr__(self) -> str:  # the URL may carry a token of the receiver's in its query
        return f"WebhookReceiver({shown_url(self.url)})"


@dataclass(frozen=True)
class TelegramReceiver:
    token: SecretStr
    chat_id: str
    api_url: str = TELEGRAM_API

    def __repr__(self) -> str:
        return f"TelegramReceiver(chat {self.chat_id})"


@dataclass(frozen=True)
class Receivers:
    """Where notifications go; `None`: no receiver of that kind."""

    webhook: WebhookReceiver | None = None
    telegram: TelegramReceiver | None = None
    telegram_api_url: str = TELEGRAM_API
    # Kept apart so a strategy that names only its chat uses the account's bot.
    telegram_token: SecretStr | None = None
    telegram_chat_id: str | None = None

    @classmethod
    def of(cls, *, webhook_url: str | None, webhook_secret: SecretStr | str | None,
           telegram_token: SecretStr | str | None, telegram_chat_id: str | None,
           telegram_api_url: str = TELEGRAM_API) -> Receivers:
        secret = _secret(webhook_secret)
        token = _secret(telegram_token)
        # Empty (compose passes `${VAR:-}`) means Telegram's own.
        api = telegram_api_url.rstrip("/") or TELEGRAM_API
        return cls(
            webhook=WebhookReceiver(webhook_url, secret) if webhook_url else None,
            telegram=(TelegramReceiver(token, telegram_chat_id, api)
                      if token is not None and telegram_chat_id else None),
            telegram_api_url=api, telegram_token=token, telegram_chat_id=telegram_chat_id,
        )

    def for_strategy(self, strategy: Strategy | None) -> Receivers:
        """The strategy's receivers where it set them, else these: its webhook URL (with its own
        secret, or none) replaces the account's; its bot token and chat id each replace the
        account's one."""
        if strategy is None:
            return self
        webhook = (WebhookReceiver(strategy.notify_webhook_url,
                                   _secret(strategy.notify_webhook_secret))
                   if strategy.notify_webhook_url else self.webhook)
        token = _secret(strategy.telegram_bot_token) or self.telegram_token
        chat = strategy.telegram_chat_id or self.telegram_chat_id
        telegram = (TelegramReceiver(token, chat, self.telegram_api_url)
                    if token is not None and chat else None)
        return replace(self, webhook=webhook, telegram=telegram, telegram_token=token,
                       telegram_chat_id=chat)

    def get(self, kind: NotifyReceiver) -> WebhookReceiver | TelegramReceiver | None:
        return self.webhook if kind is NotifyReceiver.WEBHOOK else self.telegram


def _secret(value: SecretStr | str | None) -> SecretStr | None:
    if value is None or isinstance(value, SecretStr):
        return value if value is None or value.get_secret_value() else None
    return SecretStr(value) if value else None


def shown_url(url: str) -> str:
    """A URL as printed or logged: scheme, host and path; no query, no user info."""
    parsed = httpx.URL(url)
    port = f":{parsed.port}" if parsed.port else ""
    return f"{parsed.scheme}://{parsed.host}{port}{parsed.path}"


# --- messages --------------------------------------------------------------------------------


def _d(value: Any) -> str:
    return "?" if value is None else str(value)


def message(event: str, payload: Mapping[str, Any]) -> str:
    """The one-line text a person reads (Telegram's message, the webhook's `text`)."""
    p = payload
    who = f"{p.get('strategy') or '-'} {p.get('symbol', '')} {p.get('side', '')}".strip()
    trade = f"trade #{p.get('trade_id')} ({who})"
    match event:
        case NotifyEvent.TRADE_OPENED:
            return (f"Tradewire: {trade} opened: {_d(p.get('filled_qty'))} at "
                    f"{_d(p.get('avg_entry_price'))}")
        case NotifyEvent.TRADE_CLOSED:
            return (f"Tradewire: {trade} closed at {_d(p.get('avg_exit_price'))}: PnL "
                    f"{_d(p.get('realized_pnl'))} USDT (fees {_d(p.get('fees'))})")
        case NotifyEvent.TRADE_REFUSED | NotifyEvent.TRADE_FAILED | NotifyEvent.TRADE_CANCELLED:
            return f"Tradewire: {trade} {p.get('status', '').lower()}: {_d(p.get('reason'))}"
        case NotifyEvent.ALERT_REFUSED:
            return (f"Tradewire: alert of {p.get('strategy')} refused (signal "
                    f"#{p.get('signal_id')}{', ' + p['symbol'] if p.get('symbol') else ''}): "
                    f"{_d(p.get('reason'))}")
        case NotifyEvent.INCIDENT_RAISED:
            return (f"Tradewire: incident #{p.get('incident_id')} {p.get('kind')} "
                    f"{p.get('symbol')}: {p.get('detail')}")
        case NotifyEvent.INCIDENT_RESOLVED:
            return (f"Tradewire: incident #{p.get('incident_id')} {p.get('kind')} "
                    f"{p.get('symbol')} resolved: {_d(p.get('resolution'))}")
        case NotifyEvent.RISK_STATE_CHANGED:
            return (f"Tradewire: {p.get('scope_label')} {p.get('state_before')} → "
                    f"{p.get('state_after')}{' with flatten' if p.get('flatten') else ''} "
                    f"by {p.get('actor')}: {p.get('reason')}")
        case NotifyEvent.DAILY_SUMMARY:
            return (f"Tradewire: {p.get('day')}: {p.get('closed')} trade(s) closed, PnL "
                    f"{p.get('realized_pnl')} USDT (fees {p.get('fees')}), "
                    f"{p.get('refused')} refused or failed; {p.get('open')} open now")
        case _:
            return f"Tradewire: {p.get('text') or event}"


# --- delivery --------------------------------------------------------------------------------


TOKEN_PLACEHOLDER = "TOKEN"
TELEGRAM_MAX_TEXT = 4096  # Telegram refuses a longer message (sendMessage's `text`)
_TOKEN_EXTENSION = "tradewire_bot_token"


class _TokenTransport(httpx.AsyncBaseTransport):
    """Puts the bot token into the URL below httpx's client, which logs every request's URL
    (at INFO, whatever level our logging sets): that line shows `bot<TOKEN>`, never the token."""

    def __init__(self) -> None:
        self._inner = httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        token = request.extensions.get(_TOKEN_EXTENSION)
        if token is not None:
            request = httpx.Request(
                request.method, str(request.url).replace(f"/bot{TOKEN_PLACEHOLDER}/",
                                                         f"/bot{token}/", 1),
                headers=request.headers, stream=request.stream,
                extensions={k: v for k, v in request.extensions.items()
                            if k != _TOKEN_EXTENSION})
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


def http_client(timeout_s: float) -> httpx.AsyncClient:  # float-ok: seconds
    """The client notifications are sent with (see _TokenTransport)."""
    return httpx.AsyncClient(timeout=timeout_s, transport=_TokenTransport())


@dataclass(frozen=True)
class Delivery:
    ok: bool
    detail: str  # "HTTP 200", "ConnectError", …: never a URL or a secret


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """The webhook's signature header: HMAC-SHA256 of `<timestamp>.<body>` under the secret."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


async def deliver(client: httpx.AsyncClient, receiver: WebhookReceiver | TelegramReceiver,
                  event: str, payload: Mapping[str, Any]) -> Delivery:
    """One attempt; never raises for the receiver's failures."""
    text = message(event, payload)
    try:
        if isinstance(receiver, WebhookReceiver):
            body = json.dumps({"event": event, "text": text, **payload},
                              separators=(",", ":"), sort_keys=True).encode()
            ts = str(int(time.time()))
            headers = {"Content-Type": "application/json", EVENT_HEADER: event,
                       TIMESTAMP_HEADER: ts}
            if receiver.secret is not None:
                headers[SIGNATURE_HEADER] = signature(receiver.secret.get_secret_value(), ts, body)
            answer = await client.post(receiver.url, content=body, headers=headers)
        else:
            answer = await client.post(
                f"{receiver.api_url}/bot{TOKEN_PLACEHOLDER}/sendMessage",
                json={"chat_id": receiver.chat_id, "text": text[:TELEGRAM_MAX_TEXT],
                      "disable_web_page_preview": True},
                extensions={_TOKEN_EXTENSION: receiver.token.get_secret_value()})
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        # The exception's text may hold the URL (Telegram's holds the token): its type only.
        return Delivery(False, type(exc).__name__)
    return Delivery(answer.is_success, f"HTTP {answer.status_code}")


# --- the sender ------------------------------------------------------------------------------


@dataclass
class Counts:
    sent: int = 0
    failed: int = 0  # attempts that failed
    given_up: int = 0
    dropped: int = 0
    skipped: int = 0


@dataclass
class Sender:
    """Delivers the outbox: in the worker process, beside the worker (worker.py)."""

    sessionmaker: async_sessionmaker[AsyncSession]
    account: Receivers
    queue_max: int = 1000
    max_attempts: int = 8
    timeout_s: float = 10.0  # float-ok: seconds
    day_timezone: str = "UTC"
    counts: Counts = field(default_factory=Counts)
    _summarised: date | None = None
    _pruned_at: float = float("-inf")  # float-ok: monotonic seconds

    async def run(self, interval_s: float) -> None:  # float-ok: seconds
        """Sweep every `interval_s` for the process's lifetime; a failed sweep is logged."""
        async with http_client(self.timeout_s) as client:
            while True:
                try:
                    await self.sweep(client)
                except Exception:  # noqa: BLE001 - the next sweep tries again; trading goes on
                    log.exception("notifications: the sweep failed")
                await asyncio.sleep(interval_s)

    async def sweep(self, client: httpx.AsyncClient | None = None) -> int:
        """Bound the queue, add the day's summary at the day boundary, deliver what is due;
        returns how many rows it took up."""
        await self.bound()
        await self.summarise()
        rows = await self._claim()
        if not rows:
            return 0
        ids = {r.strategy_id for r in rows if r.strategy_id is not None}
        async with self.sessionmaker() as session:
            strategies = {s.id: s for s in (await session.scalars(
                select(Strategy).where(Strategy.id.in_(ids)))).all()} if ids else {}
        lanes: dict[NotifyReceiver, list[Notification]] = {}
        for row in rows:
            lanes.setdefault(NotifyReceiver(row.receiver), []).append(row)
        own = client is None
        client = client or http_client(self.timeout_s)
        try:
            await asyncio.gather(*(self._lane(client, kind, lane, strategies)
                                   for kind, lane in lanes.items()))
        finally:
            if own:
                await client.aclose()
        return len(rows)

    async def _lane(self, client: httpx.AsyncClient, kind: NotifyReceiver,
                    rows: list[Notification], strategies: Mapping[int, Strategy]) -> None:
        """One kind's rows in their order; after a failure the rest wait as long as the failed
        one (in order, and a dead receiver is not hammered)."""
        for i, row in enumerate(rows):
            receivers = self.account.for_strategy(strategies.get(row.strategy_id or -1))
            receiver = receivers.get(kind)
            if receiver is None:
                await self._settle(row.id, NotifyStatus.SKIPPED, None)
                self.counts.skipped += 1
                continue
            result = await deliver(client, receiver, row.event, row.payload)
            if result.ok:
                await self._settle(row.id, NotifyStatus.SENT, None)
                self.counts.sent += 1
                continue
            self.counts.failed += 1
            if row.attempts >= self.max_attempts:
                self.counts.given_up += 1
                await self._settle(row.id, NotifyStatus.FAILED, result.detail)
                log.error("notification #%d %s to %s given up after %d attempts (%s)", row.id,
                          row.event, kind.value, row.attempts, result.detail)
                continue
            wait = BACKOFF_S[min(row.attempts, len(BACKOFF_S)) - 1]
            log.warning("notification #%d %s to %s failed (%s, attempt %d of %d): again in %d s",
                        row.id, row.event, kind.value, result.detail, row.attempts,
                        self.max_attempts, wait)
            await self._retry(row.id, wait, result.detail, [r.id for r in rows[i + 1:]])
            return

    async def _claim(self) -> list[Notification]:
        """Take the due rows: each counts an attempt and is leased, so another sender leaves it."""
        # A lane sends its rows one after another: the lease covers a whole batch of timeouts,
        # or another sender could take a row still being sent and send it twice.
        lease = timedelta(seconds=self.timeout_s * BATCH + LEASE_MARGIN_S)
        async with self.sessionmaker() as session, session.begin():
            due = (select(Notification.id)
                   .where(Notification.status == NotifyStatus.PENDING.value,
                          Notification.next_at <= func.now())
                   .order_by(Notification.id).limit(BATCH)
                   .with_for_update(skip_locked=True).scalar_subquery())
            rows = (await session.scalars(
                update(Notification).where(Notification.id.in_(due))
                .values(attempts=Notification.attempts + 1, next_at=func.now() + lease)
                .returning(Notification)
            )).all()
        return sorted(rows, key=lambda r: r.id)

    async def _settle(self, row_id: int, status: NotifyStatus, error: str | None) -> None:
        async with self.sessionmaker() as session, session.begin():
            await session.execute(
                update(Notification).where(Notification.id == row_id)
                .values(status=status.value, last_error=error,
                        sent_at=func.now() if status is NotifyStatus.SENT else None))

    async def _retry(self, row_id: int, wait_s: int, error: str, rest: list[int]) -> None:
        at = func.now() + timedelta(seconds=wait_s)
        async with self.sessionmaker() as session, session.begin():
            await session.execute(update(Notification).where(Notification.id == row_id)
                                  .values(next_at=at, last_error=error))
            if rest:  # not attempted: their claim's attempt is given back
                await session.execute(
                    update(Notification).where(Notification.id.in_(rest))
                    .values(next_at=at, attempts=Notification.attempts - 1))

    async def bound(self) -> int:
        """Drop the oldest waiting rows beyond `queue_max` (logged and counted); and forget
        the settled rows older than KEEP."""
        async with self.sessionmaker() as session, session.begin():
            waiting = await session.scalar(select(func.count()).select_from(Notification).where(
                Notification.status == NotifyStatus.PENDING.value)) or 0
            dropped: list[Any] = []
            if waiting > self.queue_max:
                oldest = (select(Notification.id)
                          .where(Notification.status == NotifyStatus.PENDING.value)
                          .order_by(Notification.id).limit(waiting - self.queue_max)
                          .with_for_update(skip_locked=True).scalar_subquery())
                dropped = list((await session.execute(
                    update(Notification).where(Notification.id.in_(oldest))
                    .values(status=NotifyStatus.DROPPED.value,
                            last_error=f"the queue held more than {self.queue_max}")
                    .returning(Notification.id, Notification.event)
                )).all())
            if time.monotonic() - self._pruned_at > PRUNE_EVERY_S:
                self._pruned_at = time.monotonic()
                await session.execute(delete(Notification).where(
                    Notification.status != NotifyStatus.PENDING.value,
                    Notification.created_at < func.now() - KEEP))
        if dropped:
            self.counts.dropped += len(dropped)
            log.warning("notifications: %d waiting, over the bound of %d: dropped the %d oldest "
                        "(#%d to #%d; %d dropped since start)", waiting, self.queue_max,
                        len(dropped), min(d.id for d in dropped), max(d.id for d in dropped),
                        self.counts.dropped)
        return len(dropped)

    async def summarise(self, now: datetime | None = None) -> bool:
        """Yesterday's summary (in `day_timezone`), once per day and account: the first sweep
        after the day boundary writes it (a unique key makes it once across workers and
        restarts). A day before any trade was recorded has none."""
        tz = ZoneInfo(self.day_timezone)
        today = (now or datetime.now(UTC)).astimezone(tz).date()
        day = today - timedelta(days=1)
        if self._summarised == day:
            return False
        start = datetime.combine(day, datetime.min.time(), tz)
        end = datetime.combine(today, datetime.min.time(), tz)
        async with self.sessionmaker() as session, session.begin():
            first = await session.scalar(select(func.min(Trade.created_at)))
            if first is not None and first < end:
                ended = (Trade.closed_at >= start) & (Trade.closed_at < end)
                closed, pnl, fees, refused = (await session.execute(select(
                    func.count().filter(ended & (Trade.status == TradeStatus.CLOSED.value)),
                    func.coalesce(func.sum(Trade.realized_pnl).filter(ended), 0),
                    func.coalesce(func.sum(Trade.fees).filter(ended), 0),
                    func.count().filter(ended & Trade.status.in_(
                        [TradeStatus.REFUSED.value, TradeStatus.FAILED.value])),
                ))).one()
                open_now = await session.scalar(select(func.count()).select_from(Trade).where(
                    Trade.status.in_(OPEN_TRADE_STATUSES)))
                await enqueue(session, NotifyEvent.DAILY_SUMMARY, {
                    "day": day.isoformat(), "timezone": self.day_timezone, "closed": closed,
                    "realized_pnl": Decimal(pnl), "fees": Decimal(fees), "refused": refused,
                    "open": open_now,
                }, dedupe_key=f"daily_summary:{day.isoformat()}")
        self._summarised = day
        return True


async def send_test(receivers: Receivers, *, timeout_s: float = 10.0,  # float-ok: seconds
                    strategy: str | None = None) -> list[tuple[str, Delivery]]:
    """`tradewire notify test`: one test message to each configured receiver, at once (not
    through the outbox); (what the receiver is, as printed, and its answer)."""
    payload = {"text": "test message: notifications reach this receiver"
                       + (f" (strategy {strategy!r})" if strategy else ""),
               "strategy": strategy, "at": datetime.now(UTC).isoformat()}
    out: list[tuple[str, Delivery]] = []
    async with http_client(timeout_s) as client:
        for kind in NotifyReceiver:
            receiver = receivers.get(kind)
            if receiver is None:
                continue
            name = (f"webhook {shown_url(receiver.url)}" if isinstance(receiver, WebhookReceiver)
                    else f"telegram chat {receiver.chat_id}")
            out.append((name, await deliver(client, receiver, NotifyEvent.TEST.value, payload)))
    return out
