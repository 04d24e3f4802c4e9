"""Per-symbol market: one price (mark = last), a seeded random walk, and a depth book around it.

The book is a pure function of (seed, symbol, price): best bid = price − SPREAD_TICKS ticks,
best ask = price + SPREAD_TICKS ticks, then one level per tick outwards. Level sizes are a few
BOOK_LEVEL_NOTIONAL worth of base coin, on the qty grid and never below minTradeVolume. Takers
walk these levels; the book is not depleted by fills (it is regenerated from the price), which
keeps the simulator predictable: the same price always shows the same book.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal

from paper.instruments import Pair

SPREAD_TICKS = 1
BOOK_LEVELS = 50
BOOK_LEVEL_NOTIONAL = Decimal("25000")
WALK_SIGMA_BPS = 5.0
DEPTH_LIMITS = {"1": 1, "5": 5, "15": 15, "50": 50, "max": BOOK_LEVELS}

Level = tuple[Decimal, Decimal]


@dataclass
class SymbolMarket:
    pair: Pair
    price: Decimal | None  # None: a PREVIEW pair, no market yet
    start_price: Decimal | None
    frozen: bool = False


class Market:
    """Prices of every symbol; mutated only under the engine's lock."""

    def __init__(self, pairs: dict[str, Pair], prices: dict[str, Decimal], seed: int,
                 frozen: bool) -> None:
        self.seed = seed
        self.default_frozen = frozen
        self._rng = random.Random(seed)
        self.symbols = {
            s: SymbolMarket(p, prices.get(s), prices.get(s), frozen) for s, p in pairs.items()
        }

    def price(self, symbol: str) -> Decimal | None:
        return self.symbols[symbol].price

    def set_price(self, symbol: str, price: Decimal) -> Decimal:
        sm = self.symbols[symbol]
        snapped = max(sm.pair.snap_price(price), sm.pair.tick)
        sm.price = snapped
        return snapped

    def move_bps(self, symbol: str, bps: Decimal) -> Decimal:
        current = self.symbols[symbol].price
        if current is None:
            raise ValueError(f"{symbol} has no price (PREVIEW)")
        return self.set_price(symbol, current * (1 + bps / Decimal(10000)))

    def walk(self) -> list[str]:
        """One random-walk step for every unfrozen symbol; returns the symbols that moved."""
        moved = []
        for symbol, sm in self.symbols.items():
            if sm.frozen or sm.price is None:
                continue
            bps = Decimal(repr(round(self._rng.gauss(0.0, WALK_SIGMA_BPS), 3)))
            before = sm.price
            if self.set_price(symbol, before * (1 + bps / Decimal(10000))) != before:
                moved.append(symbol)
        return moved

    def reset(self) -> None:
        self._rng = random.Random(self.seed)
        for sm in self.symbols.values():
            sm.price = sm.start_price
            sm.frozen = self.default_frozen

    def book(self, symbol: str, levels: int = BOOK_LEVELS) -> tuple[list[Level], list[Level]]:
        """(bids best first, asks best first); empty for a symbol without a price."""
        sm = self.symbols[symbol]
        if sm.price is None:
            return [], []
        pair, price = sm.pair, sm.price
        rng = random.Random(f"{self.seed}:{symbol}:{price}")
        bids: list[Level] = []
        asks: list[Level] = []
        for i in range(min(levels, BOOK_LEVELS)):
            offset = pair.tick * (SPREAD_TICKS + i)
            asks.append((price + offset, _level_qty(pair, price, i, rng)))
            if price - offset > 0:
                bids.append((price - offset, _level_qty(pair, price, i, rng)))
        return bids, asks

    def best_bid_ask(self, symbol: str) -> tuple[Decimal | None, Decimal | None]:
        sm = self.symbols[symbol]
        if sm.price is None:
            return None, None
        offset = sm.pair.tick * SPREAD_TICKS
        bid = sm.price - offset
        return (bid if bid > 0 else None), sm.price + offset


def _level_qty(pair: Pair, price: Decimal, index: int, rng: random.Random) -> Decimal:
    factor = Decimal(repr(round(0.5 + rng.random() * 1.5, 3))) * (1 + Decimal(index) / 8)
    qty = (BOOK_LEVEL_NOTIONAL * factor / price).quantize(pair.qty_step, rounding=ROUND_DOWN)
    return max(qty, pair.min_qty, pair.qty_step)
