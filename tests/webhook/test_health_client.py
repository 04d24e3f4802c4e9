"""/healthz checks the exchange through one client the app keeps, not a client per check (each
new client loads the CA bundle into a fresh TLS context; Docker checks every few seconds)."""

from __future__ import annotations

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from settings import Settings
from tests.support.paper import PaperExchange
from webhook.app import create_app


@pytest.fixture
def settings(
    temporal_env: WorkflowEnvironment, paper_exchange: PaperExchange, tmp_path
) -> Settings:
    target = temporal_env.client.service_client.config.target_host
    return Settings(
        temporal_address=target,
        state_dir=tmp_path,
        exchange_base_url=paper_exchange.base_url,
        fast_path=False,
    )


async def test_healthz_reuses_one_exchange_client_and_closes_it(
    settings: Settings, db_url: str
) -> None:
    app = create_app(settings, database_url=db_url)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://tw") as client:
            first = await client.get("/healthz")
            probe = app.state.health_exchange
            second = await client.get("/healthz")
            assert app.state.health_exchange is probe
    assert first.json()["exchange"] == second.json()["exchange"] == "ok"
    assert app.state.health_exchange is None
    assert probe._http.is_closed


async def test_an_unreachable_exchange_fails_every_check_and_the_client_is_closed(
    settings: Settings, db_url: str
) -> None:
    down = settings.model_copy(update={"exchange_base_url": "http://127.0.0.1:9"})
    app = create_app(down, database_url=db_url)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://tw") as client:
            first = await client.get("/healthz")
            probe = app.state.health_exchange
            again = await client.get("/healthz")
            assert app.state.health_exchange is probe
    assert first.json()["exchange"] == again.json()["exchange"] == "fail"
    assert app.state.health_exchange is None
    assert probe._http.is_closed
