"""The CLI's tests run against the webhook's real parts: the app served over real HTTP, its
database and Temporal (tests/webhook/conftest.py)."""

from __future__ import annotations

from tests.webhook.conftest import (  # noqa: F401
    Live,
    engine,
    live_webhook,
    sessionmaker,
    synced_pairs,
)

__all__ = ["Live"]
