"""One running trade: its input, its memory (workflows/state.py: everything carried across
continue-as-new) and what each activity's answer changes in it. The calls themselves, with
their timeouts and retries, are in workflows/calls.py. Workflow code: deterministic, no I/O,
time only from `workflow.now()`."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.contract import (
        BookQuery,
        BookTop,
        OrderRef,
        OrderRequest,
        OrderSnapshot,
        ProtectionRef,
        ProtectionRequest,
        ProtectionSnapshot,
        VenueQuery,
        VenueSnapshot,
    )
    from activities.contract_tracking import (
        ExternalCloseRequest,
        ExternalCloseResult,
        RefreshRequest,
        RefreshResult,
        TradeRecord,
    )
    from activities.pairs import GetRulesInput
    from trading.orders import OrderFields, PositionChange, order_fields
    from trading.rules import PairRules
    from trading.types import EntryType, Leg, TradeStatus
    from workflows import exits
    from workflows import search_attributes as sa
    from workflows.calls import TradeCalls
    from workflows.contract import TradeInput
    from workflows.ledger import TradeLedger
    from workflows.policies import MIN_WINDOW
    from workflows.state import (
        Exits,
        Inbox,
        OpenOrderView,
        Protection,
        ProtectionView,
        TradeMemory,
        TradeState,
        Venue,
    )
    from workflows.summary import details

# An exit's calls run as local activities (`TradeRun.exit_local`): new commands, which a
# history recorded before them replays without.
EXIT_LOCAL_CALLS = "exit-local-calls"
# The records and the first check as tracking begins run as local activities
# (workflows/tracking.py `track`): new commands, which a history recorded before them replays
# without.
LOCAL_TRACKING_START = "local-tracking-start"


class TradeEnded(Exception):
    """Ends a trade before anything filled (REFUSED, FAILED or CANCELLED), with the reason."""

    def __init__(self, status: TradeStatus, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class TradeRun:
    def __init__(self, inp: TradeInput) -> None:
        self.inp = inp
        self.strategy = inp.strategy
        self.workflow_id = workflow.info().workflow_id
        self.memory = inp.carry or TradeMemory(
            ledger=TradeLedger(
                trade_id=inp.trade_id, workflow_id=self.workflow_id,
                namespace=inp.client_id_namespace, symbol=inp.symbol, side=inp.side,
            ),
            state=TradeState(trade_id=inp.trade_id, symbol=inp.symbol, side=inp.side),
            venue=Venue(mark=inp.reference_price),
            exits=Exits(plan=inp.exits),
        )
        self.calls = TradeCalls()
        # Not carried: the rules are read again by a continued run (they may have changed).
        self.rules: PairRules | None = None
        self.protection_lock = asyncio.Lock()
        self._published_status: TradeStatus | None = None
        # Set by `track` while tracking begins (LOCAL_TRACKING_START): its records and first
        # check run as local activities.
        self.local_start = False

    # The parts of the memory, by name.
    @property
    def inbox(self) -> Inbox:
        return self.memory.inbox

    @property
    def ledger(self) -> TradeLedger:
        return self.memory.ledger

    @property
    def protection(self) -> Protection:
        return self.memory.protection

    @property
    def venue(self) -> Venue:
        return self.memory.venue

    @property
    def state(self) -> TradeState:
        return self.memory.state

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
        return self.inbox.interrupted()

    async def wait(self, seconds: Decimal | float) -> bool:
        """A durable timer that ends early when the exchange changed or a message arrived:
        True when it ended early, False when the trade's own timer ran out."""
        inbox = self.inbox
        if not (inbox.exchange_changed or inbox.interrupted()):
            try:
                await workflow.wait_condition(
                    lambda: inbox.exchange_changed or inbox.interrupted(),
                    timeout=timedelta(seconds=float(seconds)),  # float-ok: time or rate, not money
                )
            except TimeoutError:
                return False
        inbox.exchange_changed = False
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
        self.show()

    def show(self) -> None:
        """The Temporal UI's current details from the state as it is: no command (a query of
        the workflow's metadata reads them), so any handler may call it."""
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
        s, led, wanted = self.state, self.ledger, self.protection
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
            tp=wanted.tp, sl=wanted.sl, qty=p.qty if p else Decimal(0),
            order_id=p.order_id if p else None, level=p.level.value if p else "none",
        )
        s.exits = exits.view(self.memory, self.rules, self.inp.side, s.exits)

    def record_of(self) -> TradeRecord:
        s, wanted = self.state, self.protection
        return TradeRecord(
            trade_id=self.inp.trade_id, status=s.status, target_qty=s.target_qty,
            filled_qty=s.filled_qty, avg_entry_price=s.avg_entry_price, closed_qty=s.closed_qty,
            avg_exit_price=s.avg_exit_price, realized_pnl=s.realized_pnl, fees=s.fees,
            leverage=s.leverage,
            # The prices protecting the trade now (tp_pct/sl_pct resolved), else what was asked.
            tp_price=s.protection.tp if s.protection.tp is not None else wanted.tp,
            sl_price=s.protection.sl if s.protection.sl is not None else wanted.sl,
            warning="; ".join(s.warnings) or None, error=s.error,
            position_id=self.ledger.position_id,
        )

    def exit_local(self) -> bool:
        """Whether this call runs as a local activity: once a whole exit is pending, the
        trade's reads, records, orders and TP/SL cancel run in the worker that runs its
        workflow task. Each as a task-queue activity cost a round trip and a workflow task
        (13 tasks per trade's exit): one exit alert to 50 trades took 15–25 s to close them
        on 2 cores. Behind EXIT_LOCAL_CALLS: exits recorded before replay their activities."""
        return self.inbox.close is not None and workflow.patched(EXIT_LOCAL_CALLS)

    def local_calls(self) -> bool:
        """Whether a record or a refresh runs as a local activity: as tracking begins (three
        calls in a row, each a task-queue round trip and a workflow task before), or for an
        exit (`exit_local`)."""
        return self.local_start or self.exit_local()

    async def record(self) -> None:
        self.refresh_state()
        await self.calls.record_trade(self.record_of(), local=self.local_calls())

    # --- orders: each answer goes into the ledger ---------------------------------------------

    def fields(self, opening: bool) -> OrderFields:
        assert self.venue.mode is not None
        change = PositionChange(self.inp.side, opening=opening)
        return order_fields(change, self.venue.mode, position_id=self.ledger.position_id)

    def risk_fields(self) -> dict[str, Any]:
        """What an entry's claim measures the risk limits with (activities/risk.py)."""
        return {"target_qty": self.state.target_qty, "leverage": self.state.leverage,
                "available_margin": self.venue.available}

    def apply(self, snap: OrderSnapshot) -> None:
        self.ledger.apply(snap)
        self.refresh_state()

    async def place(self, req: OrderRequest, *, local: bool = False, entry: bool = False) -> OrderSnapshot:
        """Place one order. `local`: as a local activity (the first placement, in the process
        that started the workflow); `entry`: retries end with the alert's max age."""
        window = self.entry_window() if local or entry else None
        local = local or (not entry and self.exit_local())
        snap = await self.calls.place_order(req, local=local, window=window)
        self.apply(snap)
        return snap

    def ref(self, snap: OrderSnapshot) -> OrderRef:
        return OrderRef(trade_id=self.inp.trade_id, client_id=snap.client_id,
                        symbol=self.inp.symbol, order_id=snap.order_id)

    async def sync(self, snap: OrderSnapshot) -> OrderSnapshot:
        out = await self.calls.sync_order(self.ref(snap))
        self.apply(out)
        return out

    async def settle(self, snap: OrderSnapshot) -> OrderSnapshot:
        """Wait for a market order to reach its terminal state (it does at once, normally)."""
        while not snap.is_terminal:
            await workflow.sleep(1)
            snap = await self.sync(snap)
        return snap

    async def cancel(self, snap: OrderSnapshot) -> OrderSnapshot:
        out = await self.calls.cancel_order(self.ref(snap))
        self.apply(out)
        return out

    async def cancel_working(self, *legs: Leg) -> None:
        for snap in self.ledger.working(*legs):
            await self.cancel(snap)

    async def book(self) -> BookTop:
        return await self.calls.read_book(BookQuery(symbol=self.inp.symbol))

    # --- the exchange's view of the trade -----------------------------------------------------

    async def refresh(self, max_age_ms: int = 0) -> RefreshResult:
        """The trade's orders and position now; `max_age_ms` > 0 accepts exchange reads that
        other trades' checks made up to that long ago (the trade's own timer, not a signal)."""
        led = self.ledger
        out = await self.calls.refresh_trade(RefreshRequest(
            trade_id=self.inp.trade_id, symbol=self.inp.symbol, side=self.inp.side,
            orders=led.refs(), position_id=led.position_id,
            protection_id=led.protection.order_id if led.protection else None,
            max_age_ms=max_age_ms,
        ), local=self.local_calls())
        for snap in out.orders:
            led.apply(snap)
        if out.mark_price is not None:
            self.venue.mark = self.state.mark_price = out.mark_price
        self.venue.position_qty = out.position.qty if out.position else None
        self.refresh_state()
        return out

    async def protect(self, req: ProtectionRequest) -> ProtectionSnapshot:
        return await self.calls.place_protection(req)

    async def unprotect(self, *, keep_if_gone: bool = False) -> bool:
        """Cancel the trade's TP/SL. True: it was pending (or there was none). False: it was
        gone already (it may have fired); with `keep_if_gone` the ledger keeps it, so the next
        reconciliation asks its history what it closed."""
        p = self.ledger.protection
        if p is None:
            return True
        out = await self.calls.cancel_protection(ProtectionRef(
            trade_id=self.inp.trade_id, client_id=p.client_id, symbol=self.inp.symbol,
            order_id=p.order_id,
        ), local=self.exit_local())
        was_pending = out is None or out.was_pending  # (None: recorded by the earlier code)
        if was_pending or not keep_if_gone:
            self.ledger.protection = None
        self.refresh_state()
        return was_pending

    async def external_close(self, req: ExternalCloseRequest) -> ExternalCloseResult:
        return await self.calls.record_external_close(req)

    async def venue_now(self) -> VenueSnapshot:
        """The account's position mode, leverage and the mark, read without the alert's bound
        (retried until they come: the trade holds, or takes on, quantity), into the memory."""
        venue = await self.calls.read_venue(
            VenueQuery(trade_id=self.inp.trade_id, symbol=self.inp.symbol, side=self.inp.side,
                       not_before=self.inp.received_at),
            window=None,
        )
        self.venue.mode, self.venue.mark = venue.position_mode, venue.mark_price
        self.state.position_mode, self.state.mark_price = venue.position_mode, venue.mark_price
        self.state.leverage = venue.leverage
        return venue

    async def rules_now(self, *, force: bool, local: bool) -> PairRules:
        """The pair's rules (local: before the first placement, bounded by the alert's age;
        otherwise retried until they come, as a tracking trade needs them to close)."""
        inp = GetRulesInput(symbol=self.inp.symbol, max_age_s=self.strategy.rules_max_age_s,
                            force=force)
        bounded = local or self.ledger.filled_qty == 0
        model = await self.calls.get_rules(
            inp, local=local, window=self.entry_window() if bounded else None
        )
        self.rules = model.to_rules()
        return self.rules
