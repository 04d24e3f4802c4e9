"""The migrations and the models describe the same schema, and go both ways."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.exc import IntegrityError

from db.base import Base
from db.migrate import downgrade, upgrade

TABLES = {"trading_pair", "strategy", "signal", "trade", "order", "fill", "position", "incident"}


def _sync_url(url: str) -> str:
    return url  # psycopg 3 serves both the sync and the async engine


def _diff(url: str) -> list:
    engine = create_engine(_sync_url(url))
    try:
        with engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"compare_type": True})
            return compare_metadata(ctx, Base.metadata)
    finally:
        engine.dispose()


def _tables(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        return set(inspect(engine).get_table_names()) - {"alembic_version"}
    finally:
        engine.dispose()


def test_upgrade_empty_database_to_head_matches_models(empty_db_url: str) -> None:
    upgrade(empty_db_url)
    assert TABLES <= _tables(empty_db_url)
    assert _diff(empty_db_url) == []


def test_downgrade_to_base_and_up_again(empty_db_url: str) -> None:
    upgrade(empty_db_url)
    downgrade(empty_db_url, "base")
    assert _tables(empty_db_url) == set()
    upgrade(empty_db_url)
    assert TABLES <= _tables(empty_db_url)
    assert _diff(empty_db_url) == []


def test_money_round_trips_exactly_and_domains_are_enforced(db_url: str) -> None:
    engine = create_engine(db_url)
    try:
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO trading_pair (symbol, base, quote, qty_step, price_tick, min_qty,"
                    " max_limit_qty, max_market_qty, min_leverage, max_leverage, default_leverage,"
                    " status, api_supported, raw, synced_at) VALUES ('MIGTEST', 'MIG', 'USDT',"
                    " 0.00000001, 0.1, 53, 100000, 50000, 1, 125, 20, 'OPEN', true, '{}', now())"
                )
            )
            step = conn.execute(
                text("SELECT qty_step, min_qty FROM trading_pair WHERE symbol='MIGTEST'")
            ).one()
            assert step == (Decimal("0.00000001"), Decimal("53"))
        with pytest.raises(IntegrityError, match="ck_trading_pair_status"), engine.begin() as conn:
            conn.execute(text("UPDATE trading_pair SET status='HALTED' WHERE symbol='MIGTEST'"))
        with pytest.raises(IntegrityError, match="ck_trade_status"), engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO trade (workflow_id, symbol, side, intent, entry_type, status)"
                    " VALUES ('wf-x', 'MIGTEST', 'LONG', 'OPEN_LONG', 'market', 'DONE')"
                )
            )
        with pytest.raises(IntegrityError, match="fk_trade_symbol"), engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO trade (workflow_id, symbol, side, intent, entry_type, status)"
                    " VALUES ('wf-y', 'NOPEUSDT', 'LONG', 'OPEN_LONG', 'market', 'PENDING')"
                )
            )
    finally:
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM trading_pair WHERE symbol='MIGTEST'"))
        engine.dispose()


def test_timestamps_are_timezone_aware(db_url: str) -> None:
    engine = create_engine(db_url)
    try:
        columns = {
            (table, col["name"]): col["type"]
            for table in TABLES
            for col in inspect(engine).get_columns(table)
        }
    finally:
        engine.dispose()
    stamps = {k: v for k, v in columns.items() if "TIMESTAMP" in str(v).upper()}
    assert stamps, "expected timestamp columns"
    assert all(getattr(v, "timezone", False) for v in stamps.values()), stamps


def test_no_float_columns(db_url: str) -> None:
    engine = create_engine(db_url)
    try:
        kinds = {
            str(col["type"]).upper()
            for table in TABLES
            for col in inspect(engine).get_columns(table)
        }
    finally:
        engine.dispose()
    assert not any(k.startswith(("FLOAT", "REAL", "DOUBLE")) for k in kinds), kinds


def test_upgrade_runs_inside_a_running_event_loop(empty_db_url: str) -> None:
    """The async Alembic env uses asyncio.run: it must work when called from a thread while
    another loop runs (tradewire up and the tests call it from async code via to_thread)."""

    async def main() -> None:
        await asyncio.to_thread(upgrade, empty_db_url)

    asyncio.run(main())
    assert TABLES <= _tables(empty_db_url)
