"""The exchange reads an entry decides with (account, leverage, mark price, best bid/ask),
shared by alerts that arrive close together and started as early as possible.

A read serves an alert when it started no more than its kind's MAX_AGE before the alert was
received (`not_before`): market data and the account 1 s, the leverage 10 s (this process
forgets it when it changes it). An entry sized by a share of the available margin or of the
equity (`size_pct`, `risk_pct`) asks for an account and a leverage read started after its alert
(`fresh_account`), so two alerts never size off the same balance, nor off a leverage changed
since. Alerts that arrive while a read is in flight join it. On BitUnix each read is a round
trip of tens of milliseconds: alerts in a burst send one order each and share the reads. The
webhook's fast path calls `warm` as soon as an open's symbol is known, so a stale read is
under way while the alert is recorded. Only the latest read of each kind per symbol is kept.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from activities.shared_read import SharedRead
from exchange.client import BitunixClient
from exchange.models import Account, Book, LeverageMarginMode, Ticker

log = logging.getLogger("activities.venue_reads")
ACCOUNT = "account"
LEVERAGE = "leverage"
TICKER = "ticker"
BOOK = "book"
MAX_AGE = {
    ACCOUNT: timedelta(seconds=1),
    LEVERAGE: timedelta(seconds=10),
    TICKER: timedelta(seconds=1),
    BOOK: timedelta(seconds=1),
}


@dataclass(frozen=True)
class VenueReads:
    account: Account
    config: LeverageMarginMode
    ticker: Ticker | None  # None: the exchange has no ticker for the symbol
    book: Book


class VenueReader:
    """One per process; every method runs on the process's event loop."""

    def __init__(
        self, client: BitunixClient, *, now: Callable[[], datetime] = lambda: datetime.now(UTC)
    ) -> None:
        self._client = client
        self._now = now
        self._reads: dict[tuple[str, str], SharedRead[Any]] = {}

    def warm(self, symbol: str) -> None:
        """Start `symbol`'s reads now (fire and forget: a failure is only logged; the entry's
        own call reads again)."""
        try:
            self._start_all(symbol, self._now())
        except Exception:  # noqa: BLE001 - warming must never disturb the alert's intake
            log.exception("warming the venue reads of %s failed", symbol)

    def forget(self, symbol: str) -> None:
        """Drop `symbol`'s leverage read (after this process changed the leverage)."""
        shared = self._reads.get((LEVERAGE, symbol))
        if shared is not None:
            shared.forget()

    async def read(
        self, symbol: str, not_before: datetime, *, fresh_account: bool = False
    ) -> VenueReads:
        """The four reads for an alert received at `not_before` (see the module's note)."""
        tasks = self._start_all(symbol, not_before, fresh_account=fresh_account)
        # Shielded: a cancelled entry must not cancel a read that other alerts share.
        account, config, tickers, book = await asyncio.gather(
            *(asyncio.shield(task) for task in tasks)
        )
        ticker = next((t for t in tickers if t.symbol == symbol), None)
        return VenueReads(account=account, config=config, ticker=ticker, book=book)

    async def book(self, symbol: str, not_before: datetime) -> Book:
        """The best bid and ask from a read started no earlier than MAX_AGE before
        `not_before`: shared with the entries' reads and with other re-checks (a late re-send's
        price check), so a burst of them on one symbol costs one request."""
        task = self._task((BOOK, symbol), not_before, lambda: self._client.depth(symbol, 1))
        return await asyncio.shield(task)

    def _start_all(
        self, symbol: str, not_before: datetime, *, fresh_account: bool = False
    ) -> list[asyncio.Future[Any]]:
        c = self._client
        return [
            self._task((ACCOUNT, ""), not_before, c.account, fresh=fresh_account),
            # The size of a margin-share entry is margin × leverage: the leverage too is read
            # after the alert (another process, or the trader in BitUnix's app, may change it).
            self._task((LEVERAGE, symbol), not_before, lambda: c.leverage_margin_mode(symbol),
                       fresh=fresh_account),
            self._task((TICKER, symbol), not_before, lambda: c.tickers([symbol])),
            self._task((BOOK, symbol), not_before, lambda: c.depth(symbol, 1)),
        ]

    def _task(
        self, key: tuple[str, str], not_before: datetime, call: Callable[[], Awaitable[Any]],
        *, fresh: bool = False,
    ) -> asyncio.Future[Any]:
        oldest = not_before if fresh else not_before - MAX_AGE[key[0]]
        shared = self._reads.setdefault(key, SharedRead(call))
        return shared.start(oldest.timestamp())
