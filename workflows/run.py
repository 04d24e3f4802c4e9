"""One running trade: its input, ledger, visible state and messages (the activity calls every
phase makes are in workflows/calls.py). Workflow code: deterministic, no I/O, time only from
`workflow.now()`."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from decimal import Decimal

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.contract_tracking import TradeRecord
    from trading.rules import PairRules
    from trading.types import EntryType, PositionMode, TradeStatus
    from workflows import search_attributes as sa
    from workflows.calls import ActivityCalls
    from workflows.contract import (
        CancelRequest,
        CloseRequest,
        OpenOrderView,
        ProtectionView,
        TradeInput,
        TradeState,
    )
    from workflows.ledger import TradeLedger
    from workflows.policies import MIN_WINDOW
    from workflows.summary import details


class TradeEnded(Exception):
    """Ends a trade before anything filled (REFUSED, FAILED or CANCELLED), with the reason."""

    def __init__(self, status: TradeStatus, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class TradeRun(ActivityCalls):
    def __init__(self, inp: TradeInput) -> None:
        self.inp = inp
        self.strategy = inp.strategy
        self.workflow_id = workflow.info().workflow_id
        self.ledger = TradeLedger(
            trade_id=inp.trade_id, workflow_id=self.workflow_id,
            namespace=inp.client_id_namespace, symbol=inp.symbol, side=inp.side,
        )
        self.state = TradeState(trade_id=inp.trade_id, symbol=inp.symbol, side=inp.side)
        self.rules: PairRules | None = None
        self.mode: PositionMode | None = None
        self.mark: Decimal | None = inp.reference_price
        self.position_qty: Decimal | None = None  # the trade's side of the position, last seen
        self.tp: Decimal | None = None
        self.sl: Decimal | None = None
        # messages
        self.pending_cancel: CancelRequest | None = None  # cleared once acted upon
        self.close_request: CloseRequest | None = None
        self.notify: list[str] = []
        self.changed = False
        self.predecessor_closed = False
        # protection
        self.protection_lock = asyncio.Lock()
        self.protection_override = False  # set_protection replaced the alert's TP/SL
        self.protection_disabled = False  # refused, strategy says warn: track unprotected
        self.flatten_reason: str | None = None
        self.placed_any = False  # the first placement runs as a local activity
        self.final_status = TradeStatus.CLOSED
        self._published_status: TradeStatus | None = None

    @property
    def entry_type(self) -> EntryType:
        return self.inp.entry_type or self.strategy.entry_type

    # --- time -------------------------------------------------------------------------------

    @property
    def alert_deadline(self) -> datetime:
        start = self.inp.alert_time or self.inp.received_at
        return start + timedelta(seconds=self.strategy.max_alert_age_s)

    def entry_window(self) -> timedelta:
        """How long entry activities may keep retrying: until the alert is too old."""
        return max(self.alert_deadline - workflow.now(), MIN_WINDOW)

    def interrupted(self) -> bool:
        """A message the current phase must act on before waiting any longer."""
        return (
            self.pending_cancel is not None
            or self.close_request is not None
            or self.flatten_reason is not None
        )

    async def wait(self, seconds: Decimal | float) -> bool:
        """A durable timer that ends early when the exchange changed or a message arrived:
        True when it ended early, False when the trade's own timer ran out."""
        if not (self.changed or self.interrupted()):
            try:
                await workflow.wait_condition(
                    lambda: self.changed or self.interrupted(),
                    timeout=timedelta(seconds=float(seconds)),  # float-ok: time or rate, not money
                )
            except TimeoutError:
                return False
        self.changed = False
        return True

    # --- visibility -------------------------------------------------------------------------

    def set(self, status: TradeStatus | None = None, phase: str | None = None) -> None:
        if status is not None:
            self.state.status = status
        if phase is not None:
            self.state.phase = phase
        self.refresh_state()
        if self.state.status != self._published_status:
            self._published_status = self.state.status
            workflow.upsert_search_attributes([sa.TRADE_STATUS.value_set(self.state.status.value)])
        workflow.set_current_details(details(self.state, self.strategy.name))

    def publish_identity(self) -> None:
        workflow.upsert_search_attributes(
            [
                sa.SYMBOL.value_set(self.inp.symbol),
                sa.SIDE.value_set(self.inp.side.value),
                sa.STRATEGY.value_set(self.strategy.name),
            ]
        )

    def warn(self, text: str) -> None:
        workflow.logger.warning("%s", text)
        if text not in self.state.warnings:
            self.state.warnings.append(text)

    def refresh_state(self) -> None:
        s, led = self.state, self.ledger
        s.filled_qty = led.filled_qty
        s.avg_entry_price = led.avg_entry_price
        s.closed_qty = led.closed_qty
        s.avg_exit_price = led.avg_exit_price
        s.realized_pnl = led.realized_pnl
        s.fees = led.fees
        s.open_orders = [
            OpenOrderView(client_id=o.client_id, order_id=o.order_id, leg=o.leg.value,
                          side=o.fill_side.value, qty=o.qty, price=o.price)
            for o in led.working()
        ]
        p = led.protection
        s.protection = ProtectionView(
            tp=self.tp, sl=self.sl, qty=p.qty if p else Decimal(0),
            order_id=p.order_id if p else None, level=p.level.value if p else "none",
        )

    def record_of(self) -> TradeRecord:
        s = self.state
        return TradeRecord(
            trade_id=self.inp.trade_id, status=s.status, target_qty=s.target_qty,
            filled_qty=s.filled_qty, avg_entry_price=s.avg_entry_price, closed_qty=s.closed_qty,
            avg_exit_price=s.avg_exit_price, realized_pnl=s.realized_pnl, fees=s.fees,
            leverage=s.leverage,
            # The prices protecting the trade now (tp_pct/sl_pct resolved), else what was asked.
            tp_price=s.protection.tp if s.protection.tp is not None else self.tp,
            sl_price=s.protection.sl if s.protection.sl is not None else self.sl,
            warning="; ".join(s.warnings) or None, error=s.error,
        )
