"""Strategies in the database: the demo strategy, secrets stored as HMACs, limits enforced."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import delete, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.models import Strategy
from devstack.demo import DEMO_NAME, ensure_demo_strategy
from webhook import strategies
from webhook.auth import server_key_for, verify_secret
from webhook.strategies import StrategyError

from .conftest import Webhook


async def test_demo_strategy_is_created_once_and_its_secret_shown_once(
    sessionmaker: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    async with sessionmaker.begin() as session:  # the session database may hold one already
        await session.execute(delete(Strategy).where(Strategy.name == DEMO_NAME))
    secret = await ensure_demo_strategy(sessionmaker, tmp_path)
    assert secret is not None and len(secret) >= 32
    assert await ensure_demo_strategy(sessionmaker, tmp_path) is None
    demo = await strategies.get(sessionmaker, DEMO_NAME)
    assert verify_secret(server_key_for(tmp_path), secret, demo.secret_hash)
    assert secret not in str(strategies.describe(demo))
    assert (demo.size_usdt, demo.entry_type, demo.enabled) == (Decimal("100"), "market", True)


async def test_alerts_authenticate_with_the_demo_secret(webhook: Webhook) -> None:
    async with webhook.sessionmaker.begin() as session:
        await session.execute(delete(Strategy).where(Strategy.name == DEMO_NAME))
    secret = await ensure_demo_strategy(
        webhook.sessionmaker, webhook.settings.state_dir, webhook.settings.secret_key
    )
    assert secret is not None
    r = await webhook.post(
        {
            "secret": secret,
            "strategy": "demo",
            "ticker": "BTCUSDT.P",
            "action": "buy",
            "alert_id": "demo-1",
        }
    )
    assert r.status_code == 202, r.text


async def test_add_validates_names_sizing_and_addresses(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    key = b"k" * 32
    with pytest.raises(StrategyError, match="invalid strategy name"):
        await strategies.add(sessionmaker, key, "no spaces")
    with pytest.raises(StrategyError, match="one default sizing"):
        await strategies.add(
            sessionmaker, key, "two-sizes", params={"size": Decimal(1), "size_pct": Decimal(5)}
        )
    with pytest.raises(StrategyError, match="not an IP address"):
        await strategies.add(sessionmaker, key, "bad-ip", params={"allowed_ips": ["10.0.0.300"]})
    strategy, _ = await strategies.add(sessionmaker, key, "sized", params={"size": Decimal("0.5")})
    assert (strategy.size, strategy.size_usdt, strategy.size_pct) == (Decimal("0.5"), None, None)
    with pytest.raises(StrategyError, match="ck_strategy_rate_limit_positive"):
        await strategies.update(sessionmaker, "sized", {"rate_limit_per_min": 0})


async def test_limits_are_validated_stored_and_removed(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    key = b"k" * 32
    with pytest.raises(StrategyError, match=r"--daily-loss-pct 100: input should be less than 100"):
        await strategies.add(sessionmaker, key, "lim-bad", params={"daily_loss_pct": "100"})
    with pytest.raises(StrategyError, match="no strategy named 'lim-bad'"):
        await strategies.get(sessionmaker, "lim-bad")  # nothing stored
    strategy, _ = await strategies.add(sessionmaker, key, "lim", params={
        "max_order_usdt": "250.5", "max_open_trades": 2, "max_leverage": 4})
    assert (strategy.max_order_usdt, strategy.max_open_trades, strategy.max_leverage) == (
        Decimal("250.5"), 2, 4)
    with pytest.raises(StrategyError, match="--max-open-trades 0: input should be greater"):
        await strategies.update(sessionmaker, "lim", {"max_open_trades": 0})
    with pytest.raises(StrategyError, match="only risk limits can be removed, not leverage"):
        await strategies.update(sessionmaker, "lim", {}, clear=["leverage"])
    with pytest.raises(StrategyError, match="max_leverage: set or removed, not both"):
        await strategies.update(sessionmaker, "lim", {"max_leverage": 3}, clear=["max_leverage"])
    changed = await strategies.update(sessionmaker, "lim", {"max_leverage": 3},
                                      clear=["max_order_usdt"])
    assert (changed.max_order_usdt, changed.max_open_trades, changed.max_leverage) == (None, 2, 3)
    described = strategies.describe(changed)
    assert {n: described[n] for n in strategies.LIMITS} == {
        "max_order_usdt": None, "max_position_usdt": None, "max_open_trades": 2,
        "max_leverage": 3, "max_exposure_usdt": None, "min_free_margin_usdt": None,
        "daily_loss_usdt": None, "daily_loss_pct": None}


async def test_the_migration_enforces_a_positive_rate_limit(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    with pytest.raises(IntegrityError, match="ck_strategy_rate_limit_positive"):
        async with sessionmaker.begin() as session:
            await session.execute(
                text("INSERT INTO strategy (name, rate_limit_per_min) VALUES ('rl0', 0)")
            )
