"""The `trading_pair` table, refreshed from the exchange: the single source of truth for pair rules.

`sync_pairs` (used by `tradewire pairs sync` and `tradewire up`) upserts every pair and reports
what appeared, disappeared or changed. The `get_rules` activity (activities/pairs.py) reads one
pair from here, and fetches and upserts it again when it is stale.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.models import TradingPair
from exchange import parse
from trading.errors import PairRulesInvalid
from trading.rules import PairRules
from trading.types import PairStatus

log = logging.getLogger("pair_catalog")

RULE_FIELDS = tuple(f.name for f in dataclasses.fields(PairRules))


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


class EmptyPairList(RuntimeError):
    """The exchange listed no pair at all: an empty or cut answer, never applied (it would mark
    every stored pair STOP and refuse every entry until the next sync). Nothing was changed."""


async def fetch_pairs(
    client: Any, symbols: list[str] | None = None
) -> list[tuple[PairRules, dict[str, Any]]]:
    """Every usable pair with the row BitUnix sent (kept verbatim in `trading_pair.raw`). A row
    whose rules cannot be trusted is left out and logged: one odd listing must not stop the rest."""
    return _usable(await client.trading_pairs_raw(symbols))


def _usable(wires: list[Any]) -> list[tuple[PairRules, dict[str, Any]]]:
    out = []
    for wire in wires:
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
    """Fetch every pair, upsert them, and report what is new, gone or different. A pair is gone
    only when the exchange no longer lists it (one it lists with rules we cannot read keeps its
    stored rules); an empty listing changes nothing and raises EmptyPairList."""
    listed = await client.trading_pairs_raw(None)
    if not listed:
        raise EmptyPairList("the exchange listed no pair: nothing was changed (an empty or cut "
                            "answer is never taken as every pair gone)")
    fetched = _usable(listed)
    synced_at = now()
    async with sessionmaker() as session, session.begin():
        stored = {
            row.symbol: row_to_rules(row)
            for row in (await session.scalars(select(TradingPair))).all()
        }
        await upsert_pairs(session, fetched, synced_at)
        seen = {rules.symbol for rules, _ in fetched}
        still_listed = {wire.symbol for wire in listed}
        gone = sorted(s for s in stored
                      if s not in still_listed and stored[s].status != PairStatus.STOP)
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
