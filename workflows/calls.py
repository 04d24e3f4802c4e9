"""Every activity a trade runs, with its timeouts and retry policies: the one place workflow code
starts an activity (a test keeps it so). Each method is one call and changes nothing of the
trade; `TradeRun` applies the answers. `window`: how long an entry's call may keep retrying
(until the alert is too old); None: retry until it works, as exposure exists."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.workflow import ActivityCancellationType, ActivityHandle

with workflow.unsafe.imports_passed_through():
    from activities.adoption import AdoptionActivities
    from activities.contract import (
        AdoptRequest,
        AdoptResult,
        BookQuery,
        BooksRequest,
        BookTop,
        ClaimsRequest,
        OrderRef,
        OrderRequest,
        OrderSnapshot,
        ProtectionCancelled,
        ProtectionRef,
        ProtectionRequest,
        ProtectionSnapshot,
        SettleRequest,
        SettleResult,
        StartCheck,
        SymbolConfigRequest,
        SymbolConfigResult,
        TradeBooks,
        VenueQuery,
        VenueSnapshot,
    )
    from activities.contract_tracking import (
        CollectRequest,
        CollectResult,
        ExternalCloseRequest,
        ExternalCloseResult,
        FastChaseRequest,
        FastChaseResult,
        PriceQuery,
        PriceRead,
        RefreshRequest,
        RefreshResult,
        TradeOutcome,
        TradeOutcomeQuery,
        TradeRecord,
    )
    from activities.fast_chase import FastChaseActivities
    from activities.orders import OrderActivities
    from activities.pairs import GetRulesInput, PairActivities, PairRulesModel
    from activities.protection import ProtectionActivities
    from activities.resume import ResumeActivities
    from activities.tracking import TrackingActivities
    from activities.trades import TradeActivities
    from activities.venue import VenueActivities
    from workflows.policies import (
        CALL_TIMEOUT,
        KEEP_TRYING,
        LOCAL_CALL_TIMEOUT,
        PLACE_RETRY,
        PRE_ENTRY_RETRY,
        PROTECT_RETRY,
    )

FAST_CHASE_HEARTBEAT = timedelta(seconds=10)
# An adoption waits this long for the other trades' orders on the position to settle; then the
# adopting trade ends with nothing and the incident stays open for the next attempt.
ADOPT_WAIT = timedelta(minutes=5)
LONGEST_FAST_CHASE = timedelta(days=1)  # a resting post-only may wait long; the heartbeat is the liveness


def _until_it_works() -> dict[str, Any]:
    return {"start_to_close_timeout": CALL_TIMEOUT, "retry_policy": KEEP_TRYING}


async def _call(method: Any, arg: Any, *, local: bool) -> Any:
    """One call retried until it works; `local`: as a local activity, in the worker running
    the workflow task (an exit's calls: no task-queue round trip and workflow task each)."""
    if local:
        return await workflow.execute_local_activity_method(method, arg, **_until_it_works())
    return await workflow.execute_activity_method(method, arg, **_until_it_works())


class TradeCalls:
    # --- before the entry (local: in the process that started the workflow) -----------------

    async def get_rules(self, inp: GetRulesInput, *, local: bool,
                        window: timedelta | None) -> PairRulesModel:
        """The pair's rules: before the first placement, bounded by the alert's age; otherwise
        retried until they come, as a tracking trade needs them to close."""
        if local:
            return await workflow.execute_local_activity_method(
                PairActivities.get_rules, inp, start_to_close_timeout=LOCAL_CALL_TIMEOUT,
                schedule_to_close_timeout=window, retry_policy=PRE_ENTRY_RETRY,
            )
        return await workflow.execute_activity_method(
            PairActivities.get_rules, inp, start_to_close_timeout=CALL_TIMEOUT,
            retry_policy=PRE_ENTRY_RETRY if window is not None else KEEP_TRYING,
            **({"schedule_to_close_timeout": window} if window is not None else {}),
        )

    async def read_venue(self, query: VenueQuery, *, window: timedelta | None) -> VenueSnapshot:
        """Before the entry: local, bounded by the alert's age. `window` None: once something
        filled (an order found after the entry was given up), retried until it works."""
        if window is None:
            return await workflow.execute_activity_method(
                VenueActivities.read_venue, query, **_until_it_works()
            )
        return await workflow.execute_local_activity_method(
            VenueActivities.read_venue, query, start_to_close_timeout=LOCAL_CALL_TIMEOUT,
            schedule_to_close_timeout=window, retry_policy=PRE_ENTRY_RETRY,
        )

    async def configure_symbol(self, req: SymbolConfigRequest, *,
                               window: timedelta) -> SymbolConfigResult:
        return await workflow.execute_local_activity_method(
            VenueActivities.configure_symbol, req, start_to_close_timeout=LOCAL_CALL_TIMEOUT,
            schedule_to_close_timeout=window, retry_policy=PRE_ENTRY_RETRY,
        )

    # --- orders -----------------------------------------------------------------------------

    async def place_order(self, req: OrderRequest, *, local: bool,
                          window: timedelta | None) -> OrderSnapshot:
        """`local`: the first placement, as a local activity in the process that started the
        workflow, or (no `window`) an exit's, retried until it works; `window`: an entry,
        whose retries end with the alert's max age."""
        if local and window is None:
            return await _call(OrderActivities.place_order, req, local=True)
        if local:
            # An attempt cut short while it waits its turn in the account's request budget (a
            # candle-close burst) sent nothing and releases its claim: the next one sends at
            # once. (An attempt allowed longer than the workflow task's timeout made the SDK end
            # the task early, and a trade evicted from the fast path's cache meanwhile ran its
            # placement again beside the first: measured, orders waited out the 30 s window.)
            return await workflow.execute_local_activity_method(
                OrderActivities.place_order, req, start_to_close_timeout=LOCAL_CALL_TIMEOUT,
                schedule_to_close_timeout=window, retry_policy=PLACE_RETRY,
            )
        if window is not None:
            return await workflow.execute_activity_method(
                OrderActivities.place_order, req, start_to_close_timeout=CALL_TIMEOUT,
                schedule_to_close_timeout=window, retry_policy=PLACE_RETRY,
            )
        return await workflow.execute_activity_method(
            OrderActivities.place_order, req, **_until_it_works()
        )

    async def sync_order(self, ref: OrderRef) -> OrderSnapshot:
        return await workflow.execute_activity_method(
            OrderActivities.sync_order, ref, **_until_it_works()
        )

    async def cancel_order(self, ref: OrderRef) -> OrderSnapshot:
        return await workflow.execute_activity_method(
            OrderActivities.cancel_order, ref, **_until_it_works()
        )

    async def settle_orders(self, req: SettleRequest) -> SettleResult:
        """Never bounded by the alert's age: an order's fate is found out before the trade ends."""
        return await workflow.execute_activity_method(
            OrderActivities.settle_orders, req, **_until_it_works()
        )

    async def read_book(self, query: BookQuery) -> BookTop:
        return await workflow.execute_activity_method(
            VenueActivities.read_book, query, **_until_it_works()
        )

    def start_fast_chase(self, req: FastChaseRequest) -> ActivityHandle[FastChaseResult]:
        """A sub-second chase runs inside one heartbeating activity; cancelling the handle
        waits until the activity has stopped sending."""
        return workflow.start_activity_method(
            FastChaseActivities.chase_fast, req, start_to_close_timeout=LONGEST_FAST_CHASE,
            heartbeat_timeout=FAST_CHASE_HEARTBEAT, retry_policy=KEEP_TRYING,
            cancellation_type=ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
        )

    async def collect_orders(self, req: CollectRequest) -> CollectResult:
        return await workflow.execute_activity_method(
            FastChaseActivities.collect_orders, req, **_until_it_works()
        )

    # --- tracking and protection -----------------------------------------------------------

    async def refresh_trade(self, req: RefreshRequest, *, local: bool = False) -> RefreshResult:
        return await _call(TrackingActivities.refresh_trade, req, local=local)

    async def read_trail_price(self, query: PriceQuery) -> PriceRead:
        return await workflow.execute_activity_method(
            TrackingActivities.read_trail_price, query, **_until_it_works()
        )

    async def record_external_close(self, req: ExternalCloseRequest) -> ExternalCloseResult:
        return await workflow.execute_activity_method(
            TrackingActivities.record_external_close, req, **_until_it_works()
        )

    async def place_protection(self, req: ProtectionRequest) -> ProtectionSnapshot:
        return await workflow.execute_activity_method(
            ProtectionActivities.place_protection, req,
            start_to_close_timeout=CALL_TIMEOUT, retry_policy=PROTECT_RETRY,
        )

    async def cancel_protection(self, ref: ProtectionRef, *,
                                local: bool = False) -> ProtectionCancelled:
        return await _call(ProtectionActivities.cancel_protection, ref, local=local)

    async def settle_protection_claims(self, req: ClaimsRequest) -> None:
        await workflow.execute_activity_method(
            ProtectionActivities.settle_protection_claims, req, **_until_it_works()
        )

    async def record_trade(self, record: TradeRecord, *, local: bool = False) -> None:
        await _call(TradeActivities.record_trade, record, local=local)

    async def adopt_quantity(self, req: AdoptRequest) -> AdoptResult:
        return await workflow.execute_activity_method(
            AdoptionActivities.adopt_quantity, req, start_to_close_timeout=CALL_TIMEOUT,
            schedule_to_close_timeout=ADOPT_WAIT, retry_policy=KEEP_TRYING,
        )

    async def read_books(self, req: BooksRequest) -> TradeBooks:
        return await workflow.execute_activity_method(
            ResumeActivities.read_books, req, **_until_it_works()
        )

    async def check_trade_start(self, req: StartCheck, *, window: timedelta | None) -> None:
        """Whether this run may act for its trade (ForeignStart when not). `window`: before an
        entry, bounded by the alert's age; None: a tracking trade's, retried until it works."""
        await workflow.execute_activity_method(
            TradeActivities.check_trade_start, req, start_to_close_timeout=CALL_TIMEOUT,
            retry_policy=PRE_ENTRY_RETRY if window is not None else KEEP_TRYING,
            **({"schedule_to_close_timeout": window} if window is not None else {}),
        )

    async def read_trade_outcome(self, query: TradeOutcomeQuery) -> TradeOutcome:
        return await workflow.execute_activity_method(
            TradeActivities.read_trade_outcome, query, **_until_it_works()
        )
