"""The `get_rules` activity: one pair's rules, from the `trading_pair` table (pair_catalog.py),
and `sync_pairs`, the whole table refreshed (the worker's hourly Temporal Schedule runs it).

`get_rules` returns one stored pair, fetching
it again when it is older than the caller's `max_age_s` or when forced (the trade workflow forces
one refresh after the exchange rejects an order for a rule, docs/design.md#errors-and-retries);
a forced refresh logs what changed in that pair's rules, as the full sync does for every pair.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity

from activities.contract import Failure
from activities.errors import refuse
from db.models import TradingPair
from pair_catalog import (
    RULE_FIELDS,
    SyncReport,
    fetch_pairs,
    row_to_rules,
    rule_changes,
    upsert_pairs,
)
from pair_catalog import sync_pairs as sync_every_pair
from trading.rules import PairRules
from trading.types import PairStatus

log = logging.getLogger("activities.pairs")


class PairRulesModel(BaseModel):
    """`PairRules` as it travels through Temporal (the pydantic converter keeps Decimal exact)."""

    model_config = ConfigDict(frozen=True)

    symbol: str
    base: str
    quote: str
    qty_step: Decimal
    price_tick: Decimal
    min_qty: Decimal
    max_limit_qty: Decimal
    max_market_qty: Decimal
    min_leverage: int
    max_leverage: int
    default_leverage: int
    min_buy_price_offset: Decimal | None
    max_sell_price_offset: Decimal | None
    price_protect_scope: Decimal | None
    status: PairStatus
    api_supported: bool
    synced_at: datetime | None = None

    @classmethod
    def from_rules(cls, rules: PairRules, synced_at: datetime | None = None) -> PairRulesModel:
        return cls(**{name: getattr(rules, name) for name in RULE_FIELDS}, synced_at=synced_at)

    def to_rules(self) -> PairRules:
        return PairRules(**{name: getattr(self, name) for name in RULE_FIELDS})


class GetRulesInput(BaseModel):
    symbol: str
    max_age_s: int = 3600
    force: bool = False


class SyncPairsInput(BaseModel):
    """The pair sync's input (the workflow's and its activity's): none yet; a model, so that a
    field added later is backward compatible (docs/design.md#one-input-model-one-result-model)."""


class PairActivities:
    """Activities over the pair table; dependencies passed in
    (docs/design.md#activities-receive-their-dependencies)."""

    def __init__(
        self,
        client: Any,
        sessionmaker: async_sessionmaker[AsyncSession],
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._client = client
        self._sessionmaker = sessionmaker
        self._now = now
        # The last rules this process read or synced, per symbol: an entry reuses them while
        # they are within its max age, as it would the row (no database read on the hot path).
        self._recent: dict[str, PairRulesModel] = {}

    async def rules_for(self, symbol: str, max_age_s: int, force: bool) -> PairRulesModel:
        recent = self._recent.get(symbol)
        if (recent is not None and not force
                and self._now() - recent.synced_at <= timedelta(seconds=max_age_s)):
            return recent
        rules = await self._read_or_sync(symbol, max_age_s, force)
        self._recent[symbol] = rules
        return rules

    async def _read_or_sync(self, symbol: str, max_age_s: int, force: bool) -> PairRulesModel:
        async with self._sessionmaker() as session:
            row = await session.get(TradingPair, symbol)
            fresh = (
                row is not None
                and not force
                and self._now() - row.synced_at <= timedelta(seconds=max_age_s)
            )
            if row is not None and fresh:
                return PairRulesModel.from_rules(row_to_rules(row), row.synced_at)
            stored = row_to_rules(row) if row is not None else None
        fetched = await fetch_pairs(self._client, [symbol])
        match = [(rules, raw) for rules, raw in fetched if rules.symbol == symbol]
        if not match:
            raise refuse(
                Failure.UNKNOWN_SYMBOL, f"{symbol} is not a pair on the exchange: refusing to trade it"
            )
        synced_at = self._now()
        async with self._sessionmaker() as session, session.begin():
            await upsert_pairs(session, match, synced_at)
        changes = rule_changes(stored, match[0][0]) if stored is not None else []
        if changes:
            log.info("pair %s re-synced%s: %s", symbol, " (forced)" if force else "",
                     "; ".join(changes))
        return PairRulesModel.from_rules(match[0][0], synced_at)

    @activity.defn(name="get_rules")
    async def get_rules(self, inp: GetRulesInput) -> PairRulesModel:
        return await self.rules_for(inp.symbol, inp.max_age_s, inp.force)

    @activity.defn(name="sync_pairs")
    async def sync_pairs(self, inp: SyncPairsInput) -> SyncReport:
        """Every pair fetched and stored; the report says what appeared, went or changed (and
        `sync_pairs` logs it). This process's recent rules are dropped: the table is newer."""
        report = await sync_every_pair(self._client, self._sessionmaker, self._now)
        self._recent.clear()
        return report
