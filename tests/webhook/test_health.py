"""GET /healthz against real PostgreSQL and Temporal: anonymous callers get up or down only;
the components, the incident count and the details need the admin token."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from settings import Settings
from tests.support.paper import PaperExchange
from webhook.app import create_app

TOKEN = "test-admin-token-0123456789abcdef"
ADMIN = {"Authorization": f"Bearer {TOKEN}"}


@asynccontextmanager
async def _client(settings: Settings, db_url: str) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings, database_url=db_url)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://tw") as client:
            yield client


@pytest.fixture
def settings(
    temporal_env: WorkflowEnvironment, paper_exchange: PaperExchange, tmp_path
) -> Settings:
    target = temporal_env.client.service_client.config.target_host
    return Settings(
        temporal_address=target,
        admin_token=TOKEN,
        state_dir=tmp_path,
        exchange_base_url=paper_exchange.base_url,
        fast_path=False,
    )


async def test_healthz_ok_when_database_temporal_and_exchange_answer(
    settings: Settings, db_url: str
) -> None:
    async with _client(settings, db_url) as client:
        public = await client.get("/healthz")
        private = await client.get("/healthz", headers=ADMIN)
    assert (public.status_code, public.json()) == (200, {"status": "up"})
    assert private.status_code == 200
    assert {k: v for k, v in private.json().items() if k not in ("details", "checked_s_ago")} == {
        "database": "ok", "temporal": "ok", "exchange": "ok", "incidents": 0, "status": "ok",
        "risk": {"account": "ACTIVE"},
    }
    assert private.json()["details"]["risk"]["detail"] == "all ACTIVE"
    assert private.json()["details"]["exchange"]["detail"].startswith("paper http://127.0.0.1:")
    assert "BTCUSDT mark " in private.json()["details"]["exchange"]["detail"]


async def test_healthz_names_what_is_down_and_hides_details(
    settings: Settings, db_url: str
) -> None:
    settings = settings.model_copy(update={"temporal_address": "127.0.0.1:9"})
    async with _client(settings, db_url) as client:
        public = await client.get("/healthz")
        private = await client.get("/healthz", headers=ADMIN)
        wrong = await client.get("/healthz", headers={"Authorization": "Bearer nope"})
    assert (public.status_code, public.json()) == (503, {"status": "down"})
    assert (wrong.status_code, wrong.json()) == (503, {"status": "down"})
    assert private.status_code == 503
    assert {k: v for k, v in private.json().items() if k not in ("details", "checked_s_ago")} == {
        "database": "ok",
        "temporal": "fail",
        "exchange": "ok",
        "incidents": 0,
        "risk": {"account": "ACTIVE"},
        "status": "fail",
    }
    details = private.json()["details"]
    assert "127.0.0.1:9" in details["temporal"]["detail"]
    assert details["database"]["detail"] == "reachable"


async def test_healthz_reports_database_down(settings: Settings) -> None:
    bad_url = "postgresql+psycopg://postgres@/nosuchdb?host=/nonexistent-socket-dir"
    async with _client(settings, bad_url) as client:
        public = await client.get("/healthz")
        r = await client.get("/healthz", headers=ADMIN)
    assert (public.status_code, public.json()) == (503, {"status": "down"})
    assert r.status_code == 503
    assert r.json()["database"] == "fail"
    assert r.json()["temporal"] == "ok"
    assert r.json()["incidents"] is None  # not counted: unknown, not zero
    assert r.json()["risk"] is None  # the states are unknown too, not ACTIVE


async def test_healthz_reports_exchange_down(settings: Settings, db_url: str) -> None:
    settings = settings.model_copy(update={"exchange_base_url": "http://127.0.0.1:9"})
    async with _client(settings, db_url) as client:
        public = await client.get("/healthz")
        private = await client.get("/healthz", headers=ADMIN)
    assert (public.status_code, public.json()) == (503, {"status": "down"})
    assert {k: v for k, v in private.json().items() if k not in ("details", "checked_s_ago")} == {
        "database": "ok",
        "temporal": "ok",
        "exchange": "fail",
        "incidents": 0,
        "risk": {"account": "ACTIVE"},
        "status": "fail",
    }
    assert private.json()["details"]["exchange"]["detail"]


# /healthz checks the exchange through one client the app keeps, not a client per check (each
# new client loads the CA bundle into a fresh TLS context; Docker checks every few seconds).


async def _two_checks(settings: Settings, db_url: str) -> tuple[dict, dict, object, object]:
    """Two /healthz answers, the exchange client the app kept, and the app after shutdown."""
    app = create_app(settings, database_url=db_url)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://tw") as client:
            first = await client.get("/healthz", headers=ADMIN)
            probe = app.state.health_exchange
            second = await client.get("/healthz", headers=ADMIN)
            assert app.state.health_exchange is probe
    return first.json(), second.json(), probe, app


async def test_healthz_reuses_one_exchange_client_and_closes_it(
    settings: Settings, db_url: str
) -> None:
    first, second, probe, app = await _two_checks(settings, db_url)
    assert first["exchange"] == second["exchange"] == "ok"
    assert app.state.health_exchange is None
    assert probe._http.is_closed


async def test_an_unreachable_exchange_fails_every_check_and_the_client_is_closed(
    settings: Settings, db_url: str
) -> None:
    down = settings.model_copy(update={"exchange_base_url": "http://127.0.0.1:9"})
    first, second, probe, app = await _two_checks(down, db_url)
    assert first["exchange"] == second["exchange"] == "fail"
    assert app.state.health_exchange is None
    assert probe._http.is_closed
