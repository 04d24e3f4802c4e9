"""One fuzz alert through Tradewire's real local pipeline and onto the paper exchange.

    pair rules (client.trading_pairs → exchange.parse.pair_rules)
    → sizing (trading.sizing.entry_quantity / close_parts)
    → position-mode fields (trading.orders.order_fields, check_one_way_entry)
    → conforming (trading.precision.conform_order)
    → BitunixClient.place_order

What the exchange answers is tallied by code: a rule code (RuleRejected: 10002, 10008, 20012,
30013–30017, 30039) means something upstream let a non-conforming order through, which is the
bug this benchmark hunts; 20003/20008 (balance) and every other code are reported apart.
What the pipeline refuses before sending is tallied by the rule it names.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from decimal import Decimal, localcontext
from typing import Any

from bench.fuzz_alerts import FuzzAlert, raw_limit_price, raw_triggers
from bench.fuzz_tally import TPSL_RULE_CODES, Sent, Tally
from exchange.client import BitunixClient
from exchange.errors import ExchangeError, InsufficientFunds, RuleRejected
from trading.errors import (
    InvalidOrderRequest,
    InvalidSizing,
    OppositeTradeOpen,
    RuleViolation,
)
from trading.ids import LEG_ENTRY, LEG_EXIT, client_order_id
from trading.orders import PositionChange, check_one_way_entry, order_fields
from trading.precision import PriceKind, conform_order, conform_trigger
from trading.rules import PairRules
from trading.sizing import close_parts, entry_quantity
from trading.types import OrderType, PositionMode, PositionSide


@dataclass
class Round:
    """What one round (one position mode, one exchange reset) knows."""

    mode: PositionMode
    # Sides this fuzz opened per symbol: the one-way check needs them, and leverage may only
    # change on a symbol without exposure.
    sides: dict[str, set[PositionSide]] = field(default_factory=dict)


class Pipeline:
    def __init__(self, client: BitunixClient, rules: dict[str, PairRules], tally: Tally,
                 run_id: str) -> None:
        self.client = client
        self.rules = rules
        self.tally = tally
        self.run_id = run_id

    async def run(self, alert: FuzzAlert, rnd: Round) -> None:
        try:
            if alert.opening:
                self.tally.alerts["open"] += 1
                await self._open(alert, rnd)
            else:
                await self._close(alert, rnd)
        except RuleViolation as exc:
            self.tally.local_refusals[exc.rule] += 1
        except OppositeTradeOpen:
            self.tally.local_refusals["opposite_trade_open (one-way)"] += 1
        except InvalidSizing as exc:
            self.tally.local_refusals[f"invalid_sizing: {exc.message[:60]}"] += 1
        except InvalidOrderRequest as exc:  # a pipeline bug, not a market rule: show it
            self.tally.local_refusals[f"invalid_order_request: {exc.message[:80]}"] += 1

    async def _mark(self, symbol: str) -> tuple[Decimal | None, Decimal | None]:
        """(mark, last) as the exchange shows them now; (None, None) without a market."""
        for ticker in await self.client.tickers([symbol]):
            if ticker.symbol == symbol:
                return ticker.mark_price, ticker.last_price
        return None, None

    async def _open(self, alert: FuzzAlert, rnd: Round) -> None:
        assert alert.symbol is not None and alert.position_side is not None
        assert alert.sizing is not None
        rules = self.rules.get(alert.symbol)
        if rules is None:
            self.tally.local_refusals["pair_rules_unusable"] += 1
            return
        symbol = alert.symbol
        check_one_way_entry(rnd.mode, symbol=symbol, entry=alert.position_side,
                            open_trade_sides=rnd.sides.get(symbol, ()))
        mark, last = (None, None)
        if rules.tradable_for_open:
            mark, last = await self._mark(symbol)
        price = None
        if alert.order_type is OrderType.LIMIT and mark is not None:
            price = raw_limit_price(alert, mark, rules.price_protect_scope)
        leverage = await self._leverage(alert, rules, rnd)
        available = None
        if alert.sizing.size_pct is not None and rules.tradable_for_open:
            available = (await self.client.account()).available
        entry = entry_quantity(
            rules, alert.sizing, order_type=alert.order_type,
            price=price if price is not None else last, leverage=leverage,
            available_margin=available, notional_floor=alert.notional_floor,
            allow_split=alert.allow_split,
        )
        fields = order_fields(PositionChange(alert.position_side, opening=True), rnd.mode)
        filled = Decimal(0)
        for seq, part in enumerate(entry.parts):
            conformed = conform_order(
                rules, fill_side=fields.fill_side, qty=part, order_type=alert.order_type,
                price=price, mark_price=mark, reducing=False, notional_floor=alert.notional_floor,
            )
            sent = Sent(symbol, rnd.mode, True, fields.side.value, alert.order_type,
                         conformed.qty, conformed.price, mark)
            ok = await self._place(
                sent, alert, seq, LEG_ENTRY,
                side=fields.side, trade_side=fields.trade_side,
                reduce_only=fields.reduce_only or None, position_id=None,
            )
            if ok:
                rnd.sides.setdefault(symbol, set()).add(alert.position_side)
                filled += conformed.qty
        # Market openings fill at once on the paper exchange: protect what this trade owns.
        market = alert.order_type is OrderType.MARKET
        if market and filled and alert.protect_seed is not None and mark is not None:
            await self._protect(alert, rules, filled, mark, rnd)

    async def _protect(self, alert: FuzzAlert, rules: PairRules, own: Decimal,
                       mark: Decimal, rnd: Round) -> None:
        """TP/SL for the trade's own quantity: order-level when the position holds more than
        this trade, position-level when the trade owns all of it (docs/design.md#protection).
        Triggers are rounded and checked by conform_trigger."""
        assert alert.position_side is not None
        side = alert.position_side
        held = [p for p in await self.client.pending_positions(rules.symbol)
                if p.side is side and p.qty > 0]
        if not held:
            self.tally.tpsl["skipped: not filled (resting limit)"] += 1
            return
        pos = held[0]
        raw = raw_triggers(alert, mark, side)
        try:
            tp = None if raw.tp is None else conform_trigger(
                rules, kind=PriceKind.TAKE_PROFIT, position_side=side, price=raw.tp,
                reference_price=mark)
            sl = None if raw.sl is None else conform_trigger(
                rules, kind=PriceKind.STOP_LOSS, position_side=side, price=raw.sl,
                reference_price=mark)
        except RuleViolation as exc:
            self.tally.local_refusals[f"{exc.rule} (TP/SL)"] += 1
            return
        whole = own >= pos.qty
        try:
            if whole:
                await self.client.place_position_tpsl(
                    symbol=rules.symbol, position_id=pos.position_id, tp_price=tp, sl_price=sl)
            else:
                await self.client.place_tpsl_order(
                    symbol=rules.symbol, position_id=pos.position_id,
                    tp_price=tp, tp_qty=None if tp is None else own,
                    sl_price=sl, sl_qty=None if sl is None else own)
        except ExchangeError as exc:
            if exc.code in TPSL_RULE_CODES or isinstance(exc, RuleRejected):
                self.tally.tpsl_rule_rejections[str(exc.code)] += 1
                self.tally.example(Sent(rules.symbol, rnd.mode, True, f"TP/SL {side.value}",
                                        OrderType.MARKET, own, tp or sl, mark), rules, exc)
            else:
                self.tally.other_rejections[f"{exc.code} TP/SL {type(exc).__name__}"] += 1
            return
        self.tally.tpsl["position-level placed" if whole else "order-level placed"] += 1

    async def _leverage(self, alert: FuzzAlert, rules: PairRules, rnd: Round) -> int:
        """The symbol's leverage; the alert's wanted one is applied only without exposure."""
        current = (await self.client.leverage_margin_mode(rules.symbol)).leverage \
            if rules.tradable_for_open else rules.default_leverage
        if alert.leverage is None or alert.leverage == current or rnd.sides.get(rules.symbol):
            return current
        try:
            await self.client.change_leverage(rules.symbol, alert.leverage)
        except ExchangeError as exc:
            self.tally.other_rejections[f"{exc.code} change_leverage"] += 1
            return current
        self.tally.leverage_changes += 1
        return alert.leverage

    async def _close(self, alert: FuzzAlert, rnd: Round) -> None:
        assert alert.close_fraction is not None
        positions = [p for p in await self.client.pending_positions() if p.qty > 0]
        if not positions:
            self.tally.alerts["close (nothing open)"] += 1
            return
        self.tally.alerts["close"] += 1
        pick = random.Random(alert.index)
        pos = pick.choice(sorted(positions, key=lambda p: p.position_id))
        rules = self.rules.get(pos.symbol)
        if rules is None:
            self.tally.local_refusals["pair_rules_unusable"] += 1
            return
        with localcontext() as ctx:
            ctx.prec = 60
            own = pos.qty * alert.close_fraction  # this trade's share of the position
        parts = close_parts(rules, own, pos.qty, alert.order_type)
        fields = order_fields(PositionChange(pos.side, opening=False), rnd.mode,
                              position_id=pos.position_id)
        mark, _ = await self._mark(pos.symbol)
        price = None
        if alert.order_type is OrderType.LIMIT and mark is not None:
            price = raw_limit_price(alert, mark, rules.price_protect_scope)
        for seq, part in enumerate(parts):
            conformed = conform_order(
                rules, fill_side=fields.fill_side, qty=part, order_type=alert.order_type,
                price=price, mark_price=mark, reducing=True,
            )
            sent = Sent(pos.symbol, rnd.mode, False, fields.side.value, alert.order_type,
                         conformed.qty, conformed.price, mark)
            await self._place(
                sent, alert, seq, LEG_EXIT,
                side=fields.side, trade_side=fields.trade_side,
                reduce_only=fields.reduce_only or None, position_id=fields.position_id,
            )
        await self._forget_if_flat(pos.symbol, rnd)

    async def _forget_if_flat(self, symbol: str, rnd: Round) -> None:
        """A trade that ends cancels its working orders; then the symbol has no exposure."""
        if any(p.qty > 0 for p in await self.client.pending_positions(symbol)):
            return
        if await self.client.pending_orders(symbol, limit=1):
            await self.client.cancel_all_orders(symbol)
        rnd.sides.pop(symbol, None)

    async def _place(self, sent: Sent, alert: FuzzAlert, seq: int, leg: str,
                     **fields: Any) -> bool:
        self.tally.orders_sent += 1
        try:
            await self.client.place_order(
                symbol=sent.symbol, qty=sent.qty, order_type=sent.order_type, price=sent.price,
                client_id=client_order_id(f"{self.run_id}-{alert.index}", leg, seq),
                **fields,
            )
        except RuleRejected as exc:
            self.tally.rule_rejections[str(exc.code)] += 1
            self.tally.example(sent, self.rules[sent.symbol], exc)
            return False
        except InsufficientFunds as exc:
            self.tally.balance_rejections[str(exc.code)] += 1
            return False
        except ExchangeError as exc:
            self.tally.other_rejections[f"{exc.code or exc.http_status} {type(exc).__name__}"] += 1
            return False
        self.tally.orders_accepted += 1
        kind = "open" if sent.opening else "close"
        self.tally.accepted_by[f"{sent.mode.value} {sent.order_type.value} {kind}"] += 1
        return True
