"""The exchange reads an entry decides with (account, leverage, mark price, best bid/ask),
started as early as possible and shared by alerts that arrive together.

An alert's reads must be no older than the alert: a read is reused only when it started at or
after the moment the alert was received (`not_before`). The webhook's fast path calls `warm`
as soon as an open's symbol is known, so the reads run while the alert is being recorded and
the workflow started; the entry's `read_venue` then finds them done or in flight. Alerts on one
symbol that arrive while a read is in flight join it instead of sending their own. Nothing is
kept beyond the latest read of each kind per symbol.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from exchange.client import BitunixClient
from trading.types import Account, Book, LeverageMarginMode, Ticker

log = logging.getLogger("activities.venue_reads")
ACCOUNT = "account"
LEVERAGE = "leverage"
TICKER = "ticker"
BOOK = "book"


@dataclass(frozen=True)
class VenueReads:
    account: Account
    config: LeverageMarginMode
    ticker: Ticker | None  # None: the exchange has no ticker for the symbol
    book: Book


@dataclass
class _Read:
    started: datetime
    task: asyncio.Task[Any]


class VenueReader:
    """One per process; every method runs on the process's event loop."""

    def __init__(
        self, client: BitunixClient, *, now: Callable[[], datetime] = lambda: datetime.now(UTC)
    ) -> None:
        self._client = client
        self._now = now
        self._reads: dict[tuple[str, str], _Read] = {}

    def warm(self, symbol: str) -> None:
        """Start `symbol`'s reads now (fire and forget: a failure is only logged; the entry's
        own call reads again)."""
        try:
            self._start_all(symbol, self._now())
        except Exception:  # noqa: BLE001 - warming must never disturb the alert's intake
            log.exception("warming the venue reads of %s failed", symbol)

    def forget(self, symbol: str) -> None:
        """Drop `symbol`'s leverage read (after this process changed the leverage)."""
        self._reads.pop((LEVERAGE, symbol), None)

    async def read(self, symbol: str, not_before: datetime) -> VenueReads:
        """The four reads, each started no earlier than `not_before`."""
        # Shielded: a cancelled entry must not cancel a read that other alerts share.
        account, config, tickers, book = await asyncio.gather(
            *(asyncio.shield(task) for task in self._start_all(symbol, not_before))
        )
        ticker = next((t for t in tickers if t.symbol == symbol), None)
        return VenueReads(account=account, config=config, ticker=ticker, book=book)

    def _start_all(self, symbol: str, not_before: datetime) -> list[asyncio.Task[Any]]:
        c = self._client
        return [
            self._task((ACCOUNT, ""), not_before, c.account),
            self._task((LEVERAGE, symbol), not_before, lambda: c.leverage_margin_mode(symbol)),
            self._task((TICKER, symbol), not_before, lambda: c.tickers([symbol])),
            self._task((BOOK, symbol), not_before, lambda: c.depth(symbol, 1)),
        ]

    def _task(
        self, key: tuple[str, str], not_before: datetime, call: Callable[[], Awaitable[Any]]
    ) -> asyncio.Task[Any]:
        known = self._reads.get(key)
        if known is not None and known.started >= not_before and not _failed(known.task):
            return known.task
        read = _Read(started=self._now(), task=asyncio.ensure_future(call()))
        read.task.add_done_callback(_consume)
        self._reads[key] = read
        return read.task


def _failed(task: asyncio.Task[Any]) -> bool:
    return task.done() and (task.cancelled() or task.exception() is not None)


def _consume(task: asyncio.Task[Any]) -> None:
    """Mark a warm read's failure as seen: the entry that needs it reads again."""
    if not task.cancelled():
        task.exception()
