"""Public market endpoints (docs/bitunix.md#market-endpoints): pairs, tickers, depth."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Literal

from exchange import parse
from exchange import schemas as w
from exchange.endpoints.base import Endpoints, csv
from exchange.models import Book, Ticker
from trading.errors import PairRulesInvalid
from trading.rules import PairRules

log = logging.getLogger("exchange.client")
DepthLimit = Literal[1, 5, 15, 50, "max"]


class MarketEndpoints(Endpoints):
    async def trading_pairs_raw(self, symbols: Sequence[str] | None = None) -> list[w.TradingPair]:
        """The pairs as BitUnix sent them (every field kept) for the pair sync to store."""
        return await self._request(
            "GET",
            "market/trading_pairs",
            lambda d: [w.TradingPair.model_validate(x) for x in w.as_list(d)],
            params={"symbols": csv(symbols)},
            signed=False,
        )

    async def trading_pairs(self, symbols: Sequence[str] | None = None) -> list[PairRules]:
        """Rules of every pair we can read. A pair whose rules are unusable (unknown status,
        inconsistent limits) is left out with a warning: it cannot be traded, and one odd
        listing must not stop every other symbol."""
        rules = []
        for pair in await self.trading_pairs_raw(symbols):
            try:
                rules.append(parse.pair_rules(pair))
            except (PairRulesInvalid, ValueError) as exc:
                log.warning("pair %s left out: %s", pair.symbol, exc)
        return rules

    async def tickers(self, symbols: Sequence[str] | None = None) -> list[Ticker]:
        """Tickers with both prices; entries without prices (pre-listing) are left out."""

        def decode(data: Any) -> list[Ticker]:
            out = []
            for raw in w.as_list(data):
                wire = w.Ticker.model_validate(raw)
                if wire.markPrice is None or wire.lastPrice is None:
                    continue
                out.append(parse.ticker(wire))
            return out

        return await self._request(
            "GET", "market/tickers", decode, params={"symbols": csv(symbols)}, signed=False
        )

    async def depth(self, symbol: str, limit: DepthLimit = 15) -> Book:
        return await self._request(
            "GET",
            "market/depth",
            lambda d: parse.book(symbol, w.Depth.model_validate(w.as_object(d))),
            params={"symbol": symbol, "limit": str(limit)},
            signed=False,
        )
