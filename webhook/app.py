"""The webhook process: FastAPI app factory and its lifespan (engine, Temporal client)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from settings import Settings
from webhook import health
from webhook.deps import AppState, TemporalHandle

log = logging.getLogger("webhook")


def create_app(settings: Settings, database_url: str | None = None) -> FastAPI:
    """Build the app. `database_url` overrides the setting (the embedded server's URL)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        from db.session import make_engine, make_sessionmaker

        url = database_url or settings.database_url
        if not url:
            raise RuntimeError(
                "no database: set TRADEWIRE_DATABASE_URL (tradewire up sets it for its children)"
            )
        engine = make_engine(url)
        temporal = TemporalHandle(settings.temporal_target, settings.temporal_namespace)
        await temporal.try_connect()
        app.state.tw = AppState(
            settings=settings,
            engine=engine,
            sessionmaker=make_sessionmaker(engine),
            temporal=temporal,
        )
        try:
            yield
        finally:
            await engine.dispose()

    app = FastAPI(
        title="Tradewire",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.include_router(health.router)
    return app
