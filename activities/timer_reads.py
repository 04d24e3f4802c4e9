"""The exchange reads that checks on the trades' own timers share: one account snapshot for
every trade of the process checking about then, whatever its symbol.

A check on a trade's own timer is a fallback (nothing signalled it: the account watcher wakes
a trade when something concerns it), so it may use a read some seconds old. Per symbol, the
pending TP/SL and ticker reads would still grow with the number of symbols traded; one snapshot
instead reads the positions, then the account's pending TP/SL orders (every page), then the
tickers of the symbols recently checked (one request for all of them): a fixed number of
requests per snapshot, however many trades and symbols are open
(docs/design.md#tracking-and-the-account-watcher). The order of the reads is the one a check
needs: the pending TP/SL list is read after the positions.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from activities.shared_read import SharedRead
from exchange.client import BitunixClient
from exchange.models import Position, Ticker

# A symbol no timer check asked about for this long is left out of the snapshot's ticker read
# (the trades on it have ended); longer than any tracking interval in use, so a symbol whose
# trades check rarely is not dropped between their checks.
SYMBOL_KEPT_S = 3600


@dataclass(frozen=True)
class AccountSnapshot:
    started_s: float  # float-ok: wall-clock seconds; every read started at or after this
    positions: list[Position]
    tpsl_ids: frozenset[str]  # the account's pending TP/SL orders
    tickers: dict[str, Ticker]  # symbol → ticker, for the symbols recently checked


class TimerReads:
    def __init__(self, client: BitunixClient,
                 read_positions: Callable[[], Awaitable[list[Position]]]) -> None:
        self._client = client
        self._read_positions = read_positions
        self._symbols: dict[str, float] = {}  # symbol → when a check last asked (monotonic)
        self._snapshot = SharedRead(self._read)

    async def get(self, symbol: str, not_before: float) -> AccountSnapshot:  # float-ok: seconds
        """The latest snapshot started at or after `not_before` (joined while it runs), or a new
        one. Its tickers may lack `symbol` when it is new: the caller reads that one itself."""
        self._symbols[symbol] = time.monotonic()
        return await self._snapshot.get(not_before)

    def _recent(self) -> list[str]:
        kept_after = time.monotonic() - SYMBOL_KEPT_S
        self._symbols = {s: t for s, t in self._symbols.items() if t >= kept_after}
        return sorted(self._symbols)

    async def _read(self) -> AccountSnapshot:
        started = time.time()
        positions = await self._read_positions()
        # After the positions: a TP/SL that fires between the reads shows as gone while the
        # position still holds its quantity (its history explains it), never the reverse.
        tpsl = await self._client.all_pending_tpsl_orders(None)
        symbols = self._recent()
        tickers = await self._client.tickers(symbols) if symbols else []
        return AccountSnapshot(
            started_s=started, positions=positions,
            tpsl_ids=frozenset(o.id for o in tpsl),
            tickers={t.symbol: t for t in tickers if t.symbol in symbols},
        )
