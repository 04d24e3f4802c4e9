"""Prometheus metrics of a Tradewire process, served on an admin port (`TRADEWIRE_METRICS_PORT`,
loopback by default): the webhook on that port, the worker on the next one (docs/design.md#metrics-and-logs).

Counters and histograms count what this process did (alerts answered, orders placed, requests
sent to the exchange); the gauges of open trades, open incidents and trading states are read
from the database at each scrape, so any process tells the same figure.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime
from typing import TYPE_CHECKING

import prometheus_client
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError

from trading.risk import ACCOUNT
from trading.types import OPEN_TRADE_STATUSES, IncidentStatus, OrderStatus, TradingState

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

    from settings import Settings

log = logging.getLogger("metrics")

# `<name>_created` series double every counter for nothing a dashboard of this app reads.
prometheus_client.disable_created_metrics()

# Our own registry: the default one carries the process collectors of whatever imports
# prometheus_client, and several apps built in one test process must not register twice.
REGISTRY = CollectorRegistry()

ALERTS = Counter(
    "tradewire_alerts", "Alert deliveries answered by the webhook, by outcome "
    "(ACCEPTED, DUPLICATE, REFUSED, NOT_STARTED, NOTHING_TO_CLOSE, NOT_RECORDED).",
    ["outcome"], registry=REGISTRY,
)
ALERT_TO_ORDER = Histogram(
    "tradewire_alert_to_order_seconds",
    "From an alert's receipt by the webhook to the send of its trade's first entry order.",
    buckets=(0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1, 2, 5, 10, 30, 60, 300),
    registry=REGISTRY,
)
QUEUED_STARTS = Counter(
    "tradewire_queued_starts", "Opens answered from their record whose workflow start was queued "
    "behind the answer (docs/design.md#starts-queued-behind-the-answer), by what came of the "
    "start: queued (answered), started, not_started (left to the outbox).",
    ["stage"], registry=REGISTRY,
)
START_QUEUE = Gauge(
    "tradewire_start_queue", "Starts queued behind their answer in this webhook, not ended yet.",
    registry=REGISTRY,
)
ORDERS = Counter(
    "tradewire_orders", "Orders that reached a final result, by result (filled, "
    "part_filled_canceled, canceled, rejected, refused: not sent, expired, system_canceled).",
    ["result"], registry=REGISTRY,
)
EXCHANGE_REQUESTS = Counter(
    "tradewire_exchange_requests", "Requests sent to the exchange, by endpoint and answer code "
    "(0: done; a BitUnix code; http_<status>; transport; unreadable).",
    ["endpoint", "code"], registry=REGISTRY,
)
EXCHANGE_ERRORS = Counter(
    "tradewire_exchange_errors", "Requests to the exchange that failed, by endpoint and code "
    "(the code as in tradewire_exchange_requests_total).",
    ["endpoint", "code"], registry=REGISTRY,
)
EXCHANGE_SECONDS = Histogram(
    "tradewire_exchange_request_seconds", "Time of one request to the exchange, by endpoint.",
    ["endpoint"], buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
    registry=REGISTRY,
)
OPEN_TRADES = Gauge(
    "tradewire_open_trades", "Trades open (pending, entering, tracking or closing).",
    registry=REGISTRY,
)
OPEN_INCIDENTS = Gauge("tradewire_open_incidents", "Incidents open.", registry=REGISTRY)
RISK_STATE = Gauge(
    "tradewire_risk_state", "Trading state per scope (account, strategy:<name>): "
    "0 ACTIVE, 1 REDUCE_ONLY, 2 HALTED.",
    ["scope"], registry=REGISTRY,
)
DATABASE_UP = Gauge(
    "tradewire_metrics_database_up", "1: the gauges read from the database are of this scrape; "
    "0: the database did not answer (they are absent).", registry=REGISTRY,
)

STATE_VALUE = {TradingState.ACTIVE: 0, TradingState.REDUCE_ONLY: 1, TradingState.HALTED: 2}
REQUEST_HEAD_TIMEOUT_S = 5
REQUEST_HEAD_LIMIT = 8192


# --- what the parts report ---------------------------------------------------------------------


def alert_answered(outcome: str) -> None:
    ALERTS.labels(outcome=outcome).inc()


def queued_start(stage: str) -> None:
    """A queued start was answered ("queued"), or its start ended ("started", "not_started")."""
    QUEUED_STARTS.labels(stage=stage).inc()


def start_queue_depth(waiting: int) -> None:
    START_QUEUE.set(waiting)


def first_entry_sent(received_at: datetime, sent_at: datetime) -> None:
    """Called on the order path, after the send: counting must never fail an order."""
    try:
        ALERT_TO_ORDER.observe(max((sent_at - received_at).total_seconds(), 0))
    except Exception:  # noqa: BLE001 - a metrics failure must never fail an order
        log.exception("metrics: alert-to-order not counted")


def order_settled(status: OrderStatus, error: str | None) -> None:
    """An order row just became final (called on the order path: never raises)."""
    try:
        result = "refused" if status is OrderStatus.REJECTED and (error or "").startswith(
            "not sent") else status.value.lower()
        ORDERS.labels(result=result).inc()
    except Exception:  # noqa: BLE001 - a metrics failure must never fail an order
        log.exception("metrics: a settled order not counted")


def exchange_request(endpoint: str, code: str, elapsed_s: float) -> None:  # float-ok: seconds
    """The exchange client's observer (exchange/client.py `observer`)."""
    EXCHANGE_REQUESTS.labels(endpoint=endpoint, code=code).inc()
    if code != "0":
        EXCHANGE_ERRORS.labels(endpoint=endpoint, code=code).inc()
    EXCHANGE_SECONDS.labels(endpoint=endpoint).observe(elapsed_s)


# --- a scrape ---------------------------------------------------------------------------------


async def read_gauges(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    """Set the database's gauges; on a database error they are dropped (absent, not stale)."""
    from db.models import Incident, RiskState, Trade

    try:
        async with sessionmaker() as session:
            trades = await session.scalar(
                select(func.count()).select_from(Trade)
                .where(Trade.status.in_(OPEN_TRADE_STATUSES)))
            incidents = await session.scalar(
                select(func.count()).select_from(Incident)
                .where(Incident.status == IncidentStatus.OPEN.value))
            states = (await session.execute(select(RiskState.scope, RiskState.state))).all()
    except (SQLAlchemyError, OSError) as exc:
        log.warning("metrics: the database did not answer (%s); gauges left out",
                    type(exc).__name__)
        for gauge in (OPEN_TRADES, OPEN_INCIDENTS, RISK_STATE):
            gauge.clear()
        DATABASE_UP.set(0)
        return
    OPEN_TRADES.set(trades or 0)
    OPEN_INCIDENTS.set(incidents or 0)
    RISK_STATE.clear()  # a scope whose row is gone is ACTIVE again, or no longer exists
    RISK_STATE.labels(scope=ACCOUNT).set(0)  # a scope without a row is ACTIVE
    for scope, state in states:
        RISK_STATE.labels(scope=scope).set(STATE_VALUE[TradingState(state)])
    DATABASE_UP.set(1)


# --- the admin port ---------------------------------------------------------------------------


class MetricsServer:
    """`GET /metrics` over plain HTTP/1.1 on asyncio's own server: no framework, nothing else
    served, one request per connection. It shares the process's event loop and installs no
    signal handler (the worker's own stop on SIGTERM must stay the only one)."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self._sessionmaker = sessionmaker
        self._server: asyncio.Server | None = None
        # One read of the database gauges at a time (three queries): scrapes that come while
        # one runs share it, so any number of scrapers cost the database one read at once.
        self._reading: asyncio.Task[None] | None = None
        self.reads = 0  # how many reads the scrapes cost

    async def body(self) -> bytes:
        """The exposition, with the database gauges of the read in flight, or of a new one."""
        if self._reading is None or self._reading.done():
            self._reading = asyncio.ensure_future(self._read())
        await asyncio.shield(self._reading)
        return generate_latest(REGISTRY)

    async def _read(self) -> None:
        self.reads += 1
        await read_gauges(self._sessionmaker)

    @property
    def address(self) -> tuple[str, int]:
        assert self._server is not None
        return self._server.sockets[0].getsockname()[:2]

    async def start(self, host: str, port: int) -> None:
        self._server = await asyncio.start_server(
            self._serve, host, port, limit=REQUEST_HEAD_LIMIT
        )

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            try:
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"),
                                              REQUEST_HEAD_TIMEOUT_S)
            except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError):
                return
            parts = head.split(b"\r\n", 1)[0].decode("latin-1").split()
            if len(parts) < 2 or parts[0] not in ("GET", "HEAD"):
                await _answer(writer, 405, b"only GET /metrics\n")
            elif parts[1].split("?", 1)[0] != "/metrics":
                await _answer(writer, 404, b"only GET /metrics\n")
            else:
                body = await self.body()
                await _answer(writer, 200, body if parts[0] == "GET" else b"",
                              prometheus_client.CONTENT_TYPE_LATEST, length=len(body))
        except (ConnectionError, OSError):
            pass  # the scraper went away
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()


async def _answer(writer: asyncio.StreamWriter, status: int, body: bytes,
                  content_type: str = "text/plain; charset=utf-8",
                  length: int | None = None) -> None:
    reason = {200: "OK", 404: "Not Found", 405: "Method Not Allowed"}[status]
    writer.write(
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {len(body) if length is None else length}\r\n"
        "Connection: close\r\n\r\n".encode("latin-1") + body
    )
    await writer.drain()


async def serve(settings: Settings, sessionmaker: async_sessionmaker[AsyncSession], *,
                offset: int = 0, name: str) -> MetricsServer | None:
    """Start `/metrics` on `metrics_host`:`metrics_port + offset` (the webhook 0, the worker 1);
    None when metrics_port is 0. A port that cannot be bound is logged, not fatal: trading
    goes on without metrics."""
    if settings.metrics_port == 0:
        return None
    server = MetricsServer(sessionmaker)
    port = settings.metrics_port + offset
    try:
        await server.start(settings.metrics_host, port)
    except OSError as exc:
        log.error("%s: metrics not served: cannot bind %s:%d (%s); set TRADEWIRE_METRICS_PORT "
                  "to a free port (the worker takes the next one)", name, settings.metrics_host,
                  port, exc.strerror or exc)
        return None
    log.info("%s: metrics on http://%s:%d/metrics", name, settings.metrics_host, port)
    return server
