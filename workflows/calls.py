"""The activity calls a trade makes, with their timeouts and retry policies, as methods of the
running trade (`TradeRun` mixes this in): each phase reads as what it does, not how it retries.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

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
    )
    from activities.contract_tracking import (
        ExternalCloseRequest,
        ExternalCloseResult,
        RefreshRequest,
        RefreshResult,
    )
    from activities.orders import OrderActivities
    from activities.pairs import GetRulesInput, PairActivities
    from activities.protection import ProtectionActivities
    from activities.tracking import TrackingActivities
    from activities.trades import TradeActivities
    from activities.venue import VenueActivities
    from trading.orders import Leg as OrderLeg
    from trading.orders import OrderFields, order_fields
    from trading.rules import PairRules
    from workflows.policies import (
        CALL_TIMEOUT,
        KEEP_TRYING,
        LOCAL_CALL_TIMEOUT,
        PLACE_RETRY,
        PRE_ENTRY_RETRY,
        PROTECT_RETRY,
    )

if TYPE_CHECKING:
    from workflows.run import TradeRun


class ActivityCalls:
    async def record(self: TradeRun) -> None:
        self.refresh_state()
        await workflow.execute_activity_method(
            TradeActivities.record_trade, self.record_of(),
            start_to_close_timeout=CALL_TIMEOUT, retry_policy=KEEP_TRYING,
        )

    # --- orders -----------------------------------------------------------------------------

    def fields(self: TradeRun, opening: bool) -> OrderFields:
        assert self.mode is not None
        leg = OrderLeg(self.inp.side, opening=opening)
        return order_fields(leg, self.mode, position_id=self.ledger.position_id)

    def apply(self: TradeRun, snap: OrderSnapshot) -> None:
        self.ledger.apply(snap)
        self.refresh_state()

    async def place(self: TradeRun, req: OrderRequest, *, local: bool = False, entry: bool = False) -> OrderSnapshot:
        """Place one order. `local`: as a local activity (the first placement, in the process
        that started the workflow); `entry`: retries end with the alert's max age."""
        if local:
            snap = await workflow.execute_local_activity_method(
                OrderActivities.place_order, req,
                start_to_close_timeout=LOCAL_CALL_TIMEOUT,
                schedule_to_close_timeout=self.entry_window(), retry_policy=PLACE_RETRY,
            )
        else:
            opts: dict[str, Any] = {"start_to_close_timeout": CALL_TIMEOUT}
            if entry:
                opts.update(schedule_to_close_timeout=self.entry_window(), retry_policy=PLACE_RETRY)
            else:
                opts.update(retry_policy=KEEP_TRYING)
            snap = await workflow.execute_activity_method(OrderActivities.place_order, req, **opts)
        self.apply(snap)
        return snap

    def ref(self: TradeRun, snap: OrderSnapshot) -> OrderRef:
        return OrderRef(trade_id=self.inp.trade_id, client_id=snap.client_id,
                        symbol=self.inp.symbol, order_id=snap.order_id)

    async def sync(self: TradeRun, snap: OrderSnapshot) -> OrderSnapshot:
        out = await workflow.execute_activity_method(
            OrderActivities.sync_order, self.ref(snap),
            start_to_close_timeout=CALL_TIMEOUT, retry_policy=KEEP_TRYING,
        )
        self.apply(out)
        return out

    async def cancel(self: TradeRun, snap: OrderSnapshot) -> OrderSnapshot:
        out = await workflow.execute_activity_method(
            OrderActivities.cancel_order, self.ref(snap),
            start_to_close_timeout=CALL_TIMEOUT, retry_policy=KEEP_TRYING,
        )
        self.apply(out)
        return out

    async def cancel_working(self: TradeRun, *legs: Any) -> None:
        for snap in self.ledger.working(*legs):
            await self.cancel(snap)

    async def book(self: TradeRun) -> BookTop:
        return await workflow.execute_activity_method(
            VenueActivities.read_book, BookQuery(symbol=self.inp.symbol),
            start_to_close_timeout=CALL_TIMEOUT, retry_policy=KEEP_TRYING,
        )

    async def refresh(self: TradeRun, max_age_ms: int = 0) -> RefreshResult:
        """The trade's orders and position now; `max_age_ms` > 0 accepts exchange reads that
        other trades' checks made up to that long ago (the trade's own timer, not a signal)."""
        req = RefreshRequest(
            trade_id=self.inp.trade_id, symbol=self.inp.symbol, side=self.inp.side,
            orders=self.ledger.refs(), position_id=self.ledger.position_id,
            protection_id=self.ledger.protection.order_id if self.ledger.protection else None,
            max_age_ms=max_age_ms,
        )
        out = await workflow.execute_activity_method(
            TrackingActivities.refresh_trade, req,
            start_to_close_timeout=CALL_TIMEOUT, retry_policy=KEEP_TRYING,
        )
        for snap in out.orders:
            self.ledger.apply(snap)
        if out.mark_price is not None:
            self.mark = self.state.mark_price = out.mark_price
        self.position_qty = out.position.qty if out.position else None
        self.refresh_state()
        return out

    async def protect(self: TradeRun, req: ProtectionRequest) -> ProtectionSnapshot:
        return await workflow.execute_activity_method(
            ProtectionActivities.place_protection, req,
            start_to_close_timeout=CALL_TIMEOUT, retry_policy=PROTECT_RETRY,
        )

    async def unprotect(self: TradeRun) -> None:
        p = self.ledger.protection
        if p is None:
            return
        await workflow.execute_activity_method(
            ProtectionActivities.cancel_protection,
            ProtectionRef(trade_id=self.inp.trade_id, client_id=p.client_id,
                          symbol=self.inp.symbol, order_id=p.order_id),
            start_to_close_timeout=CALL_TIMEOUT, retry_policy=KEEP_TRYING,
        )
        self.ledger.protection = None
        self.refresh_state()

    async def external_close(self: TradeRun, req: ExternalCloseRequest) -> ExternalCloseResult:
        return await workflow.execute_activity_method(
            TrackingActivities.record_external_close, req,
            start_to_close_timeout=CALL_TIMEOUT, retry_policy=KEEP_TRYING,
        )

    async def rules_now(self: TradeRun, *, force: bool, local: bool) -> PairRules:
        """The pair's rules (local: before the first placement, bounded by the alert's age;
        otherwise retried until they come, as a tracking trade needs them to close)."""
        inp = GetRulesInput(symbol=self.inp.symbol, max_age_s=self.strategy.rules_max_age_s,
                            force=force)
        if local:
            model = await workflow.execute_local_activity_method(
                PairActivities.get_rules, inp, start_to_close_timeout=LOCAL_CALL_TIMEOUT,
                schedule_to_close_timeout=self.entry_window(), retry_policy=PRE_ENTRY_RETRY,
            )
        else:
            model = await workflow.execute_activity_method(
                PairActivities.get_rules, inp, start_to_close_timeout=CALL_TIMEOUT,
                retry_policy=PRE_ENTRY_RETRY if self.ledger.filled_qty == 0 else KEEP_TRYING,
                **({"schedule_to_close_timeout": self.entry_window()}
                   if self.ledger.filled_qty == 0 else {}),
            )
        self.rules = model.to_rules()
        return self.rules
