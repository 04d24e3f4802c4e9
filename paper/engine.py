"""The paper venue: instruments, market, account state and fault switches in one object.

Synchronous and single-threaded by design: the app calls it under one asyncio lock, and the
unit tests call it directly. A price event (walk step or admin) runs, in order: TP/SL
triggers, liquidations, then resting limit orders.
"""

from __future__ import annotations

import logging
from decimal import Decimal

from paper import closing, ledger, matching, tpsl
from paper import errors as E
from paper.errors import ExchangeError
from paper.faults import Faults
from paper.instruments import Pair, load_pairs, load_start_prices
from paper.market import Market
from paper.state import State, SymbolConfig
from paper.tiers import Tier
from settings import Settings
from trading.types import MarginMode, PairStatus, PositionSide

log = logging.getLogger("paper")

# [UNCONFIRMED] a new symbol's margin mode before change_margin_mode (pairs carry an opaque
# defaultMarginMode); most venues start in cross.
DEFAULT_MARGIN_MODE = MarginMode.CROSS


class Engine:
    def __init__(self, settings: Settings, *, frozen: bool = False) -> None:
        self.settings = settings
        self.pairs: dict[str, Pair] = load_pairs(settings.paper_pairs_file)
        prices = load_start_prices(settings.paper_tickers_file, self.pairs)
        self.market = Market(self.pairs, prices, settings.paper_seed, frozen)
        self.faults = Faults(settings.paper_seed)
        self.state = self.fresh_state()
        # Risk-limit ladders set through the admin API (paper/tiers.py); unset: the default.
        self.tiers: dict[str, list[Tier]] = {}

    # --- lookups ---------------------------------------------------------------------------
    def fresh_state(self) -> State:
        coins = sorted({p.quote for p in self.pairs.values()})
        return State(balances={c: self.settings.paper_balance for c in coins})

    def pair(self, symbol: str) -> Pair:
        pair = self.pairs.get(symbol)
        if pair is None:
            raise ExchangeError(E.MARKET_NOT_EXISTS, symbol)
        return pair

    def status(self, symbol: str) -> PairStatus:
        return self.state.statuses.get(symbol, self.pairs[symbol].status)

    def coin(self, symbol: str) -> str:
        return self.pairs[symbol].quote

    def config(self, symbol: str) -> SymbolConfig:
        cfg = self.state.configs.get(symbol)
        if cfg is None:
            cfg = SymbolConfig(self.pairs[symbol].default_leverage, DEFAULT_MARGIN_MODE)
            self.state.configs[symbol] = cfg
        return cfg

    def fee_rate(self, role: str) -> Decimal:
        if role == ledger.MAKER:
            return self.settings.paper_fee_rate_maker
        return self.settings.paper_fee_rate_taker

    def post_only_mode(self) -> str:
        return self.faults.post_only_mode or self.settings.paper_post_only_mode

    # --- price events ----------------------------------------------------------------------
    def on_price(self, symbol: str) -> None:
        tpsl.evaluate(self, symbol)
        price = self.market.price(symbol)
        if price is not None:
            for pos in self.state.open_positions(symbol):
                if ledger.breached(self, pos, price):
                    self.liquidate_position(pos.position_id)
        matching.evaluate_resting(self, symbol)

    def tick(self) -> list[str]:
        """One random-walk step; returns the symbols whose price moved."""
        moved = self.market.walk()
        for symbol in moved:
            self.on_price(symbol)
        return moved

    def set_price(self, symbol: str, price: Decimal) -> Decimal:
        self._priced(symbol)
        snapped = self.market.set_price(symbol, price)
        self.on_price(symbol)
        return snapped

    def move(self, symbol: str, bps: Decimal) -> Decimal:
        self._priced(symbol)
        moved = self.market.move_bps(symbol, bps)
        self.on_price(symbol)
        return moved

    def _priced(self, symbol: str) -> None:
        self.pair(symbol)
        if self.market.price(symbol) is None:
            raise ExchangeError(E.FUTURES_NOT_TRADABLE, f"{symbol} has no market (PREVIEW)")

    # --- admin -----------------------------------------------------------------------------
    def reset(self) -> None:
        self.state = self.fresh_state()
        self.market.reset()
        self.faults.clear()
        self.tiers = {}

    def set_status(self, symbol: str, status: PairStatus) -> None:
        self.pair(symbol)
        self.state.statuses[symbol] = status

    def liquidate(self, symbol: str, side: PositionSide | None) -> list[str]:
        self.pair(symbol)
        ids = [
            p.position_id for p in self.state.open_positions(symbol)
            if side is None or p.side is side
        ]
        for pid in ids:
            self.liquidate_position(pid)
        return ids

    def liquidate_position(self, position_id: str) -> None:
        """Close the whole position as a liquidation: one taker fill at the current mark price
        (the price has crossed the liq price, or the admin API forces it), recorded as liqQty
        with the liq price the position had, in its history."""
        pos = self.state.positions[position_id]
        price = self.market.price(pos.symbol) or pos.avg_price
        estimated = ledger.liq_price(self, pos)
        log.info("liquidating position %s %s %s at %s", position_id, pos.symbol, pos.qty, price)
        order = closing.market_close_at(self, pos, price, "liquidation")
        pos.liq_qty += order.trade_qty
        pos.liq_price = estimated if estimated > 0 else None
