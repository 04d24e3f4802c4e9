"""Reads of the account and the market that a trade decides with, and the per-symbol
leverage/margin-mode change (made only while the symbol has no exposure,
docs/design.md#position-modes-and-leverage)."""

from __future__ import annotations

import asyncio
import logging
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity

from activities.contract import (
    BookQuery,
    BookTop,
    Failure,
    SymbolConfigRequest,
    SymbolConfigResult,
    VenueQuery,
    VenueSnapshot,
)
from activities.daily_loss import account_equity
from activities.errors import refuse, translated
from activities.ownership import refusal
from activities.records import Records
from activities.venue_reads import VenueReader
from exchange.client import BitunixClient
from exchange.errors import Rejected
from trading.exits import DEFAULT_TAKER_FEE_RATE
from trading.risk import ACCOUNT, RiskLimits, check_max_leverage

log = logging.getLogger("activities.venue")
SETTINGS_LOCKED = 20006  # "can't change leverage or margin mode with open orders"


class VenueActivities:
    def __init__(
        self,
        client: BitunixClient,
        sessionmaker: async_sessionmaker[AsyncSession],
        reader: VenueReader | None = None,
        account_limits: RiskLimits | None = None,
        taker_fee_rate: Decimal = DEFAULT_TAKER_FEE_RATE,
    ) -> None:
        self._client = client
        self._taker_fee_rate = taker_fee_rate
        self._account_limits = account_limits or RiskLimits()
        self._records = Records(sessionmaker)
        self._reader = reader or VenueReader(client)

    @activity.defn(name="read_venue")
    async def read_venue(self, q: VenueQuery) -> VenueSnapshot:
        """Four exchange reads (most often shared with recent alerts, or warmed by the webhook)
        and one database read, side by side: nothing here is written. The database read also
        says whether this run may act for the trade at all (ForeignStart when not)."""
        with translated():
            reads, context = await asyncio.gather(
                self._reader.read(q.symbol, q.not_before, fresh_account=q.fresh_account),
                self._records.entry_context(q.trade_id, q.symbol),
            )
            # Before anything is sent: this run's own trade, from an accepted alert (a start
            # that did not come from the webhook ends here; activities/ownership.py).
            refused = refusal(context.origin, trade_id=q.trade_id,
                              workflow_id=activity.info().workflow_id, symbol=q.symbol,
                              side=q.side)
            if refused is not None:
                raise refuse(Failure.FOREIGN_START, refused)
            if reads.ticker is None:
                raise refuse(Failure.UNKNOWN_SYMBOL, f"{q.symbol} has no ticker at the exchange")
            return VenueSnapshot(
                position_mode=reads.account.position_mode,
                available=reads.account.available,
                leverage=reads.config.leverage,
                margin_mode=reads.config.margin_mode,
                mark_price=reads.ticker.mark_price,
                best_bid=reads.book.best_bid,
                best_ask=reads.book.best_ask,
                other_trade_sides=context.other_sides,
                taker_fee_rate=self._taker_fee_rate,
                equity=account_equity(reads.account),
            )

    @activity.defn(name="configure_symbol")
    async def configure_symbol(self, req: SymbolConfigRequest) -> SymbolConfigResult:
        """Change leverage / margin mode only while the symbol has no position and no open
        order: both are per symbol and shared with every other trade on it."""
        with translated():
            current = await self._client.leverage_margin_mode(req.symbol)
            wants_leverage = req.leverage is not None and req.leverage != current.leverage
            if wants_leverage and req.leverage is not None:
                # The account's max_leverage (TRADEWIRE_RISK_MAX_LEVERAGE) before the symbol's
                # leverage is changed; the workflow checked the strategy's and the pair's. A
                # leverage kept as it is meets the same limit when the entry is claimed.
                check_max_leverage(self._account_limits, ACCOUNT, req.leverage)
            wants_mode = req.margin_mode is not None and req.margin_mode != current.margin_mode
            if not (wants_leverage or wants_mode):
                return SymbolConfigResult(leverage=current.leverage, margin_mode=current.margin_mode)
            if req.trade_id is not None:
                # A trade the states stop (halted or reduce-only since its alert) changes
                # nothing at the exchange: its entry would be refused at the claim anyway.
                why = await self._records.opening_refusal(req.trade_id)
                if why is not None:
                    raise refuse(Failure.RISK_REFUSED, why)
            positions, orders = await asyncio.gather(
                self._client.pending_positions(req.symbol),
                self._client.pending_orders(req.symbol, limit=1),
            )
            if any(p.qty > 0 for p in positions if p.symbol == req.symbol) or orders:
                note = (
                    f"kept leverage {current.leverage}x / {current.margin_mode.value}: {req.symbol} "
                    "has an open position or order, and both settings are shared by the symbol"
                )
                log.info("%s", note)
                return SymbolConfigResult(
                    leverage=current.leverage, margin_mode=current.margin_mode, note=note
                )
            try:
                if wants_mode:
                    assert req.margin_mode is not None
                    await self._client.change_margin_mode(req.symbol, req.margin_mode)
                if wants_leverage:
                    assert req.leverage is not None
                    await self._client.change_leverage(req.symbol, req.leverage)
            except Rejected as exc:
                if exc.code != SETTINGS_LOCKED:
                    raise
                # Another trade's order arrived between our check and the change.
                after = await self._client.leverage_margin_mode(req.symbol)
                return SymbolConfigResult(
                    leverage=after.leverage, margin_mode=after.margin_mode,
                    note=f"kept leverage {after.leverage}x: {exc.msg}",
                )
            finally:
                # Reads of the symbol's leverage from before the change must not be reused.
                self._reader.forget(req.symbol)
            after = await self._client.leverage_margin_mode(req.symbol)
            return SymbolConfigResult(leverage=after.leverage, margin_mode=after.margin_mode)

    @activity.defn(name="read_book")
    async def read_book(self, q: BookQuery) -> BookTop:
        with translated():
            book = await self._client.depth(q.symbol, 1)
            return BookTop(best_bid=book.best_bid, best_ask=book.best_ask)
