"""Pair rules: the `trading_pair` table is the single source of truth, refreshed from the exchange.

`sync_pairs` (used by `tradewire pairs sync` and `tradewire up`) upserts every pair and reports
what appeared, disappeared or changed. The `get_rules` activity returns one stored pair, fetching
it again when it is older than the caller's `max_age_s` or when forced (the trade workflow forces
one refresh after the exchange rejects an order for a rule, docs/design.md#errors-and-retries).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.exceptions import ApplicationError

from db.models import TradingPair
from exchange import parse
from trading.errors import PairRulesInvalid
from trading.rules import PairRules
from trading.types import PairStatus

log = logging.getLogger("activities.pairs")

RULE_FIELDS = tuple(f.name for f in dataclasses.fields(PairRules))


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


class SyncReport(BaseModel):
    total: int
    appeared: list[str]
    disappeared: list[str]
    changed: dict[str, list[str]]  # symbol -> ["min_qty: 0.001 -> 0.002", ...]

    def lines(self) -> list[str]:
        out = [f"{self.total} pairs synced"]
        out += [f"  new: {s}" for s in self.appeared]
        out += [f"  gone (now STOP here): {s}" for s in self.disappeared]
        out += [f"  changed {s}: {'; '.join(c)}" for s, c in self.changed.items()]
        return out


async def fetch_pairs(
    client: Any, symbols: list[str] | None = None
) -> list[tuple[PairRules, dict[str, Any]]]:
    """Every usable pair with the row BitUnix sent (kept verbatim in `trading_pair.raw`). A row
    whose rules cannot be trusted is left out and logged: one odd listing must not stop the rest."""
    out = []
    for wire in await client.trading_pairs_raw(symbols):
        try:
            out.append((parse.pair_rules(wire), wire.model_dump(mode="json", by_alias=True)))
        except (PairRulesInvalid, ValueError) as exc:
            log.warning("pair %s left out: %s", wire.symbol, exc)
    return out


def rule_changes(old: PairRules, new: PairRules) -> list[str]:
    """Human-readable differences between two versions of a pair's rules."""
    return [
        f"{name}: {getattr(old, name)} -> {getattr(new, name)}"
        for name in RULE_FIELDS
        if getattr(old, name) != getattr(new, name)
    ]


def row_to_rules(row: TradingPair) -> PairRules:
    return PairRules(
        **{
            name: (PairStatus(row.status) if name == "status" else getattr(row, name))
            for name in RULE_FIELDS
        }
    )


def _row_values(rules: PairRules, raw: dict[str, Any], synced_at: datetime) -> dict[str, Any]:
    values: dict[str, Any] = {name: getattr(rules, name) for name in RULE_FIELDS}
    values["status"] = rules.status.value
    values["raw"] = raw
    values["synced_at"] = synced_at
    return values


async def upsert_pairs(
    session: AsyncSession, pairs: list[tuple[PairRules, dict[str, Any]]], synced_at: datetime
) -> None:
    for rules, raw in pairs:
        values = _row_values(rules, raw, synced_at)
        stmt = insert(TradingPair).values(**values)
        stmt = stmt.on_conflict_do_update(
            index_elements=[TradingPair.symbol],
            set_={k: v for k, v in values.items() if k != "symbol"},
        )
        await session.execute(stmt)


async def sync_pairs(
    client: Any,
    sessionmaker: async_sessionmaker[AsyncSession],
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> SyncReport:
    """Fetch every pair, upsert them, and report what is new, gone or different."""
    fetched = await fetch_pairs(client)
    synced_at = now()
    async with sessionmaker() as session, session.begin():
        stored = {
            row.symbol: row_to_rules(row)
            for row in (await session.scalars(select(TradingPair))).all()
        }
        await upsert_pairs(session, fetched, synced_at)
        seen = {rules.symbol for rules, _ in fetched}
        gone = sorted(s for s in stored if s not in seen and stored[s].status != PairStatus.STOP)
        for symbol in gone:
            # Keep the row (trades reference it) but let nothing open on a pair the exchange
            # no longer lists.
            row = await session.get(TradingPair, symbol)
            assert row is not None
            row.status = PairStatus.STOP.value
            row.synced_at = synced_at
    changed = {
        rules.symbol: diff
        for rules, _ in fetched
        if rules.symbol in stored and (diff := rule_changes(stored[rules.symbol], rules))
    }
    report = SyncReport(
        total=len(fetched),
        appeared=sorted(seen - stored.keys()),
        disappeared=gone,
        changed=changed,
    )
    for line in report.lines():
        log.info("%s", line)
    return report


async def known_symbols(sessionmaker: async_sessionmaker[AsyncSession]) -> list[str]:
    async with sessionmaker() as session:
        return list((await session.scalars(select(TradingPair.symbol))).all())


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
        fetched = await fetch_pairs(self._client, [symbol])
        match = [(rules, raw) for rules, raw in fetched if rules.symbol == symbol]
        if not match:
            raise ApplicationError(
                f"{symbol} is not a pair on the exchange: refusing to trade it",
                type="UnknownSymbol",
                non_retryable=True,
            )
        synced_at = self._now()
        async with self._sessionmaker() as session, session.begin():
            await upsert_pairs(session, match, synced_at)
        return PairRulesModel.from_rules(match[0][0], synced_at)

    @activity.defn(name="get_rules")
    async def get_rules(self, inp: GetRulesInput) -> PairRulesModel:
        return await self.rules_for(inp.symbol, inp.max_age_s, inp.force)
