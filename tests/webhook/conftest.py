"""Real parts for the webhook tests: the migrated PostgreSQL, the Temporal dev server, the
paper exchange over HTTP (its pair list synced into `trading_pair`), and the app with its
lifespan, called in-process through httpx's ASGI transport."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
import psycopg
import pytest
import pytest_asyncio
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from db.models import Signal, Trade
from db.session import make_engine, make_sessionmaker
from settings import Settings
from tests.support.paper import PaperExchange
from webhook import strategies
from webhook.app import create_app
from webhook.auth import server_key
from webhook.schemas import render_alert

from .live import run_webhook

TOKEN = "test-admin-token-webhook-0123456789"


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def engine(db_url: str) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(db_url)
    yield engine
    await engine.dispose()


@pytest.fixture(scope="session")
def sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return make_sessionmaker(engine)


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def synced_pairs(
    paper_exchange: PaperExchange,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> list[str]:
    """The paper exchange's pair list, read over HTTP and stored in `trading_pair`."""
    from exchange import parse
    from pair_catalog import upsert_pairs
    from wiring import exchange_client

    async with exchange_client(paper_exchange.settings) as client:
        wire = await client.trading_pairs_raw()
    pairs = [(parse.pair_rules(p), p.model_dump(mode="json")) for p in wire]
    async with sessionmaker.begin() as session:
        await upsert_pairs(session, pairs, datetime.now(UTC))
    return [rules.symbol for rules, _ in pairs]


def make_settings(
    temporal_env: WorkflowEnvironment, paper: PaperExchange, state_dir: Any, **overrides: Any
) -> Settings:
    values: dict[str, Any] = {
        "state_dir": state_dir,
        "host": "127.0.0.1",
        "temporal_address": temporal_env.client.service_client.config.target_host,
        "task_queue": f"tw-webhook-{uuid.uuid4().hex[:8]}",  # no worker polls it: starts stay visible
        "admin_token": TOKEN,
        "exchange_base_url": paper.base_url,
        "fast_path": False,
        "docs_enabled": True,
        "temporal_ui_url": "http://ui.test",
        # No worker runs an adoption here: incidents stay as the tests raise them
        # (tests/workflows/test_incident_policies.py runs the policies on real trades).
        "incident_policy": "report",
    }
    return Settings(_env_file=None, **(values | overrides))  # type: ignore[call-arg]


@pytest.fixture
def wh_settings(
    temporal_env: WorkflowEnvironment, paper_exchange: PaperExchange, tmp_path: Any
) -> Settings:
    return make_settings(temporal_env, paper_exchange, tmp_path)


@dataclass
class Strat:
    id: int
    name: str
    secret: str


@dataclass
class Webhook:
    """The app under test and what the tests need around it."""

    http: httpx.AsyncClient
    app: FastAPI
    settings: Settings
    sessionmaker: async_sessionmaker[AsyncSession]
    temporal: Client

    async def add_strategy(self, **params: Any) -> Strat:
        name = f"s{uuid.uuid4().hex[:10]}"
        strategy, secret = await strategies.add(
            self.sessionmaker, server_key(self.settings), name, params=params
        )
        return Strat(strategy.id, name, secret)

    @staticmethod
    def alert(strat: Strat, **fields: Any) -> dict[str, Any]:
        body: dict[str, Any] = {
            "secret": strat.secret,
            "strategy": strat.name,
            "ticker": "BTCUSDT.P",
            "action": "buy",
            "market_position": "long",
            "prev_market_position": "flat",
            "size": Decimal("0.01"),
            "alert_id": uuid.uuid4().hex,
            "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        body.update(fields)
        return {k: v for k, v in body.items() if v is not None}

    async def post(
        self, body: dict[str, Any] | bytes | str, content_type: str = "application/json", **kw: Any
    ) -> httpx.Response:
        content = render_alert(body).encode() if isinstance(body, dict) else body
        return await self.http.post(
            "/webhook/tradingview", content=content, headers={"Content-Type": content_type}, **kw
        )

    async def signal(self, signal_id: int) -> Signal:
        async with self.sessionmaker() as session:
            row = await session.get(Signal, signal_id)
        assert row is not None, f"no signal #{signal_id}"
        return row

    async def last_signal(self) -> Signal:
        """The newest signal row: the one a refusal without `signal_id` (before
        authentication, which never reveals the counter) was recorded as."""
        async with self.sessionmaker() as session:
            row = (
                await session.execute(select(Signal).order_by(Signal.id.desc()).limit(1))
            ).scalar_one()
        return row

    async def signals_of(self, strat: Strat) -> list[Signal]:
        async with self.sessionmaker() as session:
            rows = await session.execute(
                select(Signal).where(Signal.strategy_name == strat.name).order_by(Signal.id)
            )
        return list(rows.scalars())

    async def trade(self, trade_id: int) -> Trade:
        async with self.sessionmaker() as session:
            row = await session.get(Trade, trade_id)
        assert row is not None, f"no trade #{trade_id}"
        return row

    async def trades_of(self, strat: Strat) -> list[Trade]:
        async with self.sessionmaker() as session:
            rows = await session.execute(
                select(Trade).where(Trade.strategy_id == strat.id).order_by(Trade.id)
            )
        return list(rows.scalars())


@pytest_asyncio.fixture
async def webhook(
    wh_settings: Settings,
    db_url: str,
    synced_pairs: list[str],
    sessionmaker: async_sessionmaker[AsyncSession],
    temporal_client: Client,
) -> AsyncIterator[Webhook]:
    app = create_app(wh_settings, database_url=db_url)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://tw") as http:
            yield Webhook(http, app, wh_settings, sessionmaker, temporal_client)


@dataclass
class Live:
    """The webhook over real HTTP, for synchronous clients (the CLI, the fuzzer)."""

    url: str
    settings: Settings
    db_url: str

    def add_strategy(self, **params: Any) -> Strat:
        async def add() -> Strat:
            engine = make_engine(self.db_url, pool_size=1)
            try:
                name = f"s{uuid.uuid4().hex[:10]}"
                strategy, secret = await strategies.add(
                    make_sessionmaker(engine), server_key(self.settings), name, params=params
                )
                return Strat(strategy.id, name, secret)
            finally:
                await engine.dispose()

        return asyncio.run(add())

    def sql(self, query: str, *args: Any) -> list[tuple]:
        url = self.db_url.replace("postgresql+psycopg://", "postgresql://", 1)
        with psycopg.connect(url, autocommit=True) as conn:
            return conn.execute(query, args).fetchall()

    def env(self) -> dict[str, str]:
        """What the CLI needs to reach this webhook and its database."""
        return {
            "TRADEWIRE_DATABASE_URL": self.db_url,
            "TRADEWIRE_STATE_DIR": str(self.settings.state_dir),
            "TRADEWIRE_HOST": "127.0.0.1",
            "TRADEWIRE_WEBHOOK_PORT": str(self.settings.webhook_port),
            "TRADEWIRE_ADMIN_TOKEN": TOKEN,
            "TRADEWIRE_TEMPORAL_ADDRESS": self.settings.temporal_target,
        }


@pytest.fixture(scope="session")
def live_webhook(
    temporal_env: WorkflowEnvironment,
    paper_exchange: PaperExchange,
    db_url: str,
    synced_pairs: list[str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Live]:
    settings = make_settings(
        temporal_env,
        paper_exchange,
        tmp_path_factory.mktemp("live-webhook"),
        # The fuzzer sends hundreds of anonymous bodies from one address and checks each row:
        # the per-address limit and record cap (tests/webhook/test_front_door.py) stay out
        # of its way.
        anonymous_burst=1_000_000,
        anonymous_recorded_per_min=1_000_000,
    )
    with run_webhook(settings, db_url) as url:
        port = int(url.rsplit(":", 1)[1])
        yield Live(url, settings.model_copy(update={"webhook_port": port}), db_url)
