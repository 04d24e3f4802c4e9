"""`make run`'s demo strategy: created on the first start, its secret shown that once."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from pydantic import SecretStr
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.models import Strategy
from webhook import strategies
from webhook.auth import server_key_for

DEMO_NAME = "demo"
DEMO_PARAMETERS = {"size_usdt": Decimal("100"), "entry_type": "market", "rate_limit_per_min": 60}


async def ensure_demo_strategy(
    sessionmaker: async_sessionmaker[AsyncSession],
    state_dir: Path,
    secret_key: SecretStr | None = None,
) -> str | None:
    """Create strategy `demo` (paper trading, 100 USDT market entries) unless it exists.
    Returns its new secret, for the caller to print once, or None when it already existed.
    Pass `settings.secret_key` as `secret_key` so the hash uses the webhook's server key."""
    async with sessionmaker() as session:
        exists = (
            await session.execute(select(Strategy.id).where(Strategy.name == DEMO_NAME))
        ).first()
    if exists:
        return None
    key = server_key_for(state_dir, secret_key)
    try:
        _, secret = await strategies.add(sessionmaker, key, DEMO_NAME, params=DEMO_PARAMETERS)
    except strategies.StrategyError:  # created meanwhile by another process: not ours to show
        return None
    return secret
