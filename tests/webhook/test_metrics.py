"""`/metrics` on the admin port (docs/design.md#metrics-and-logs): scraped over HTTP from a
real webhook app after real alerts, parsed with Prometheus' own parser; the exchange client's
requests to the paper exchange counted; loopback by default, nothing else served."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.testing import WorkflowEnvironment

import metrics
from db.models import Incident, RiskState, Trade
from exchange.client import BitunixClient
from exchange.errors import ExchangeError
from settings import Settings
from tests.support.paper import PaperExchange
from trading.types import OPEN_TRADE_STATUSES
from webhook.app import create_app
from wiring import exchange_client

from .conftest import Webhook, make_settings

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def free_port_pair() -> int:
    """A free port whose next one is free too (the worker's metrics take the webhook's + 1):
    on a machine running other stacks, the port after a free one is often taken."""
    for _ in range(100):
        port = free_port()
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
        return port
    raise AssertionError("no two free ports in a row")


async def scrape(url: str) -> Samples:
    """Every sample of a scrape, keyed by name and sorted labels; the text must parse."""
    async with httpx.AsyncClient() as http:
        r = await http.get(url)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain; version=")
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(r.text)
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


@asynccontextmanager
async def served_webhook(settings: Settings, db_url: str, sessionmaker: Any,
                         temporal_client: Any) -> AsyncIterator[Webhook]:
    app = create_app(settings, database_url=db_url)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://tw") as http:
            yield Webhook(http, app, settings, sessionmaker, temporal_client)


async def test_a_scrape_counts_the_alerts_and_reads_the_books(
    temporal_env: WorkflowEnvironment,
    paper_exchange: PaperExchange,
    tmp_path: Any,
    db_url: str,
    synced_pairs: list[str],
    sessionmaker: async_sessionmaker[AsyncSession],
    temporal_client: Any,
) -> None:
    port = free_port()
    settings = make_settings(temporal_env, paper_exchange, tmp_path, metrics_port=port)
    url = f"http://127.0.0.1:{port}/metrics"
    async with served_webhook(settings, db_url, sessionmaker, temporal_client) as wh:
        before = await scrape(url)
        strat = await wh.add_strategy()
        accepted = await wh.post(wh.alert(strat))
        assert accepted.status_code == 202, accepted.text
        refused = await wh.post(wh.alert(strat, secret="wrong-secret-0123456789"))
        assert refused.status_code == 401
        after = await scrape(url)

        async with sessionmaker() as session:
            open_trades = await session.scalar(select(func.count()).select_from(Trade).where(
                Trade.status.in_(OPEN_TRADE_STATUSES)))
            open_incidents = await session.scalar(select(func.count()).select_from(Incident)
                                                  .where(Incident.status == "open"))
            scopes = (await session.execute(select(RiskState.scope, RiskState.state))).all()

    alerts = "tradewire_alerts_total"
    assert value(after, alerts, outcome="ACCEPTED") == value(before, alerts, outcome="ACCEPTED") + 1
    assert value(after, alerts, outcome="REFUSED") == value(before, alerts, outcome="REFUSED") + 1
    # Read from the database at the scrape: the accepted trade (PENDING, no worker here) is open.
    assert open_trades is not None and open_trades >= 1
    assert value(after, "tradewire_open_trades") == open_trades
    assert value(after, "tradewire_open_incidents") == open_incidents
    assert value(after, "tradewire_metrics_database_up") == 1
    assert ("tradewire_risk_state", (("scope", "account"),)) in after
    for scope, state in scopes:
        assert value(after, "tradewire_risk_state", scope=scope) == metrics.STATE_VALUE[state]
    # Every series is Tradewire's own: no process collectors of the default registry.
    assert all(name.startswith("tradewire_") for name, _ in after)


async def test_the_exchange_clients_requests_are_counted_by_endpoint_and_code(
    paper_exchange: PaperExchange,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    server = metrics.MetricsServer(sessionmaker)
    await server.start("127.0.0.1", 0)
    host, port = server.address
    try:
        ticker = ("tradewire_exchange_requests_total", "market/tickers", "0")
        missing = ("tradewire_exchange_errors_total", "trade/get_order_detail")
        before = metrics.REGISTRY.get_sample_value
        ok_before = before(ticker[0], {"endpoint": ticker[1], "code": "0"}) or 0
        async with exchange_client(paper_exchange.settings) as client:
            await client.tickers(["BTCUSDT"])
            try:
                await client.order_detail(order_id="no-such-order-123")
            except ExchangeError as exc:
                code = str(exc.code)
            else:
                raise AssertionError("the paper exchange found an order that does not exist")
        samples = await scrape(f"http://{host}:{port}/metrics")
    finally:
        await server.close()
    assert value(samples, ticker[0], endpoint=ticker[1], code="0") == ok_before + 1
    assert value(samples, missing[0], endpoint=missing[1], code=code) >= 1
    assert value(samples, "tradewire_exchange_requests_total", endpoint=missing[1],
                 code=code) >= 1
    assert value(samples, "tradewire_exchange_request_seconds_count",
                 endpoint="market/tickers") >= 1


async def test_metrics_bind_to_loopback_by_default_and_serve_nothing_else(
    temporal_env: WorkflowEnvironment,
    paper_exchange: PaperExchange,
    tmp_path: Any,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    fields = Settings.model_fields
    assert fields["metrics_host"].default == "127.0.0.1"  # loopback: only this host scrapes
    assert fields["metrics_port"].default == 9464  # on by default (Prometheus' usual port)
    off = Settings(_env_file=None, metrics_port=0)  # type: ignore[call-arg]
    assert await metrics.serve(off, sessionmaker, name="test") is None

    port = free_port_pair()
    settings = make_settings(temporal_env, paper_exchange, tmp_path, metrics_port=port)
    server = await metrics.serve(settings, sessionmaker, name="test")
    assert server is not None
    try:
        assert server.address == ("127.0.0.1", port)
        async with httpx.AsyncClient() as http:
            assert (await http.get(f"http://127.0.0.1:{port}/")).status_code == 404
            assert (await http.post(f"http://127.0.0.1:{port}/metrics")).status_code == 405
        # The worker's port is the next one; a port in use is logged, never fatal.
        taken = await metrics.serve(settings, sessionmaker, name="test")
        assert taken is None
        worker = await metrics.serve(settings, sessionmaker, offset=1, name="worker")
        assert worker is not None and worker.address == ("127.0.0.1", port + 1)
        await worker.close()
    finally:
        await server.close()


async def test_an_observer_that_fails_never_fails_the_request(
    paper_exchange: PaperExchange, caplog: Any,
) -> None:
    seen: list[tuple[str, str]] = []

    def observer(endpoint: str, code: str, elapsed_s: float) -> None:  # float-ok: seconds
        seen.append((endpoint, code))
        raise RuntimeError("a broken metrics sink")

    settings = paper_exchange.settings
    api_key, api_secret = settings.exchange_credentials()
    async with BitunixClient(settings.exchange_url, api_key, api_secret,
                             observer=observer) as client:
        tickers = await client.tickers(["BTCUSDT"])
    assert [t.symbol for t in tickers] == ["BTCUSDT"]
    assert seen == [("market/tickers", "0")]
    assert "exchange observer failed" in caplog.text


async def test_scrapes_at_once_share_one_read_of_the_database(
    temporal_env: WorkflowEnvironment,
    paper_exchange: PaperExchange,
    tmp_path: Any,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    """Each read of the gauges is three queries: twenty scrapers at once must not cost twenty."""
    import asyncio

    port = free_port_pair()
    settings = make_settings(temporal_env, paper_exchange, tmp_path, metrics_port=port)
    server = await metrics.serve(settings, sessionmaker, name="test")
    assert server is not None
    try:
        async with httpx.AsyncClient() as http:
            answers = await asyncio.gather(
                *(http.get(f"http://127.0.0.1:{port}/metrics") for _ in range(20)))
            assert all(a.status_code == 200 for a in answers)
            assert server.reads < 20, server.reads
            before = server.reads
            await http.get(f"http://127.0.0.1:{port}/metrics")  # a later scrape reads afresh
            assert server.reads == before + 1
    finally:
        await server.close()
