"""`TradeWorkflow`: one alert's trade, from rules to recorded PnL
(docs/design.md#the-trade-workflow).

    resolve rules → read the position mode → (one-way check) → leverage/margin mode → size
    → entry (market | limit | chase) → protection (TP/SL) → track until the trade's quantity
    is closed → record the result → complete

Messages: signal `cancel` {"flatten": bool}, signal `close` (exit alert), signal
`exchange_changed` (the account watcher), signal `predecessor_closed` (a reverse), signal
`trading_state` (the account watcher: the risk state that applies), update `set_protection`
{"tp", "sl"} and update `set_exits` (ExitsUpdate: the stop, the ladder, the trail; both
validated before they are accepted), queries `state` and `exits` (the plan and its view).
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.contract import Failure, StartCheck
    from activities.contract_tracking import ExchangeChanged, TradeOutcomeQuery
    from trading.errors import show
    from trading.types import Leg, TradeStatus, TradingState
    from workflows import exits, protection
    from workflows.adoption import adopt
    from workflows.contract import TradeInput, TradeResult
    from workflows.entry import enter, failed_before_fill, fate_unknown, prepare, settle_entry
    from workflows.exits_update import ExitsAnswer, ExitsRefused, answer, check
    from workflows.messages import (
        CancelRequest,
        CloseRequest,
        ExitsUpdate,
        PredecessorClosed,
        ProtectionUpdate,
        TradeMessages,
        TradingStateNotice,
    )
    from workflows.policies import ACTIVITY_FAILURES, failure_message, failure_type
    from workflows.resume import NotResumed, resume
    from workflows.run import TradeEnded, TradeRun
    from workflows.state import Protection, ProtectionView, TradeState
    from workflows.tracking import CONTINUE_AS_NEW, track

REVERSE_WAIT_S = 60
# Reverses that began before their predecessor's end was checked replay the earlier code.
REVERSE_CHECKS = "reverse-checks-predecessor-end"
SETTLES_ENTRY = "entry-settles-claimed-orders"
# A run that may not act for its trade (not the row's workflow, not from an accepted alert:
# a start that did not come from the webhook) ends REFUSED at once, touching nothing.
REFUSES_FOREIGN = "refuse-foreign-start"


@workflow.defn(name=TradeMessages.WORKFLOW)
class TradeWorkflow:
    @workflow.init
    def __init__(self, inp: TradeInput) -> None:
        self._run = TradeRun(inp)

    @workflow.run
    async def run(self, inp: TradeInput) -> TradeResult:
        run = self._run
        if inp.carry is not None:
            run.publish_identity()
            # A continued run tracks (and may close) at once, and its input can be copied into
            # someone else's start: checked first. Runs continued before the check replay
            # without it.
            if workflow.patched(REFUSES_FOREIGN):
                refused = await _check_start(run, window=None)
                if refused is not None:
                    return refused
            await run.rules_now(force=False, local=False)
        else:
            run.publish_identity()
            if inp.resume is not None:
                ended = await self._resume(run)
            elif inp.adopt is not None:
                ended = await self._adopt(run)
            else:
                ended = await self._open(run)
            if ended is not None:
                return ended
        while True:
            if await track(run) != CONTINUE_AS_NEW:
                return await finish(run, run.memory.final_status)
            await workflow.wait_condition(workflow.all_handlers_finished)
            # A message that came meanwhile is acted on first; a failing exit is carried over
            # (the memory holds it and when to try it again).
            if not run.interrupted() or run.memory.exit_retry_at is not None:
                run.refresh_state()
                workflow.continue_as_new(inp.model_copy(update={"carry": run.memory.next_run()}))

    async def _adopt(self, run: TradeRun) -> TradeResult | None:
        """An incident's unowned quantity taken on instead of an entry (workflows/adoption.py)."""
        try:
            await adopt(run)
        except TradeEnded as exc:
            return await finish(run, exc.status, exc.message)
        except ACTIVITY_FAILURES as err:
            if not _foreign(err):
                raise
            return _refused(run, failure_message(err))
        return None

    async def _resume(self, run: TradeRun) -> TradeResult | None:
        """A trade whose workflow was gone, rebuilt from its rows (workflows/resume.py)."""
        try:
            await resume(run)
        except NotResumed as exc:
            # Nothing of the trade is touched: its row stays as it is (an untracked trade
            # stays an incident for an operator; an ended one keeps its end).
            workflow.logger.warning("not resumed: %s", exc.message)
            s = run.state
            return TradeResult(trade_id=run.inp.trade_id, status=s.status, filled_qty=s.filled_qty,
                               closed_qty=s.closed_qty, realized_pnl=s.realized_pnl, fees=s.fees,
                               error=exc.message)
        except TradeEnded as exc:
            run.warn(exc.message)
            return await finish(run, exc.status,
                                exc.message if exc.status is TradeStatus.FAILED else None)
        except ACTIVITY_FAILURES as err:
            if not _foreign(err):
                raise
            return _refused(run, failure_message(err))
        return None

    async def _open(self, run: TradeRun) -> TradeResult | None:
        """Everything before tracking; a TradeResult when the trade ended with nothing filled."""
        ended: TradeEnded | None = None
        warning, activity_failed = "", False
        try:
            if run.inp.predecessors:
                # A reverse tells other trades to close before its venue read (where every
                # other entry's check is): its check comes first.
                if workflow.patched(REFUSES_FOREIGN):
                    refused = await _check_start(run, window=run.entry_window())
                    if refused is not None:
                        return refused
                await _close_predecessors(run, run.inp.predecessors)
            size = await prepare(run)
            await enter(run, size)
        except TradeEnded as exc:
            ended, warning = exc, exc.message
        except ACTIVITY_FAILURES as err:
            if _foreign(err):
                # Not this run's trade: no settling, no record (the row, if any, is another
                # workflow's); nothing was sent (the check is in the venue read).
                return _refused(run, failure_message(err))
            ended, warning = failed_before_fill(err), f"entry stopped: {err.cause or err}"
            activity_failed = True
        if ended is not None:
            # The status comes last: first every order the entry claimed is found out, the
            # working ones cancelled, what filled taken in (docs/design.md#late-sends).
            # Behind a patch: a trade that ended this way before settle_entry existed replays
            # its history without it (tests/histories/*_unsettled.json).
            if workflow.patched(SETTLES_ENTRY) and fate_unknown(run, activity_failed=activity_failed):
                await settle_entry(run)
            if run.ledger.filled_qty == 0:
                return await finish(run, ended.status, ended.message)
            run.warn(warning)
        await run.cancel_working(Leg.ENTRY)  # confirms any leftover entry order is terminal
        if run.ledger.filled_qty == 0:
            if run.inbox.cancel is not None or run.inbox.close is not None:
                return await finish(run, TradeStatus.CANCELLED, None)
            return await finish(run, TradeStatus.FAILED, "the entry filled nothing")
        if run.inbox.cancel is not None and not run.inbox.cancel.flatten:
            run.inbox.cancel = None  # entry stopped; the filled part keeps its TP/SL
        return None

    # --- messages ---------------------------------------------------------------------------

    @workflow.signal(name=TradeMessages.CANCEL)
    def cancel(self, req: CancelRequest) -> None:
        inbox = self._run.inbox
        if self._run.state.status.is_final:
            return
        flatten = req.flatten or (inbox.cancel is not None and inbox.cancel.flatten)
        if req.reason and (inbox.cancel is None or inbox.cancel.reason != req.reason):
            self._run.warn(req.reason)
        inbox.cancel = CancelRequest(flatten=flatten, reason=req.reason)

    @workflow.signal(name=TradeMessages.CLOSE)
    def close(self, req: CloseRequest) -> None:
        inbox = self._run.inbox
        if req.notify_workflow_id and req.notify_workflow_id not in inbox.notify:
            inbox.notify.append(req.notify_workflow_id)
        if req.partial:
            # Queued, never added up: each runs on what the trade owns when its turn comes
            # (docs/design.md#exits). A whole exit already pending closes everything anyway.
            if inbox.close is None and not self._run.state.status.is_final:
                inbox.partials.append(req)
                inbox.exchange_changed = True  # ends the tracking wait, one time, to run it
            return
        if inbox.close is None:
            inbox.close = req
            if inbox.partials:  # superseded: the whole exit goes now, not after their retries
                inbox.partials.clear()
                self._run.memory.exit_retry_at = None
                inbox.exchange_changed = True  # ends a wait for a partial exit's next try

    @workflow.signal(name=TradeMessages.EXCHANGE_CHANGED)
    def exchange_changed(self, ev: ExchangeChanged) -> None:
        self._run.inbox.exchange_changed = True

    @workflow.signal(name=TradeMessages.PREDECESSOR_CLOSED)
    def predecessor_closed(self, ev: PredecessorClosed) -> None:
        run = self._run
        if ev.workflow_id not in run.inp.predecessors:
            return  # not a trade this reverse waits for
        run.inbox.predecessors_ended[ev.workflow_id] = ev.status

    @workflow.signal(name=TradeMessages.TRADING_STATE)
    def trading_state(self, notice: TradingStateNotice) -> None:
        # Stored and shown only: it issues no command (the current details are no command), so a
        # history replays the same with or without these signals and no patch is needed. What
        # the state forbids is enforced elsewhere (intake, the claim of an opening order, the
        # `cancel` stops the watcher sends).
        run = self._run
        s = run.state
        if s.status.is_final:
            return
        active = notice.state is TradingState.ACTIVE
        s.trading_state = notice.state
        s.trading_state_scope = None if active else notice.scope
        s.trading_state_reason = None if active or not notice.reason else notice.reason
        run.show()

    @workflow.update(name=TradeMessages.SET_PROTECTION)
    async def set_protection(self, upd: ProtectionUpdate) -> ProtectionView:
        run = self._run
        tp, sl = protection.validate_update(run, upd)
        before = run.protection.model_copy()
        run.memory.protection = Protection(tp=tp, sl=sl, override=True, disabled=False)
        try:
            await protection.ensure(run, run.venue.position_qty, raise_refusal=True)
        except ApplicationError:
            run.memory.protection = before
            raise
        run.set()
        await run.record()
        return run.state.protection

    @set_protection.validator
    def _validate_protection(self, upd: ProtectionUpdate) -> None:
        protection.validate_update(self._run, upd)

    @workflow.update(name=TradeMessages.SET_EXITS)
    async def set_exits(self, upd: ExitsUpdate) -> ExitsAnswer:
        """Move the trade's exits (docs/design.md#exits): the plan, field by field, and the
        stop; then the orders are brought in line, all of it undone if the exchange refuses."""
        run = self._run
        try:  # the trade may have changed since the validator accepted the update
            wanted = check(run, upd)
        except ExitsRefused as exc:
            raise ApplicationError(str(exc), type=type(exc).__name__, non_retryable=True) from None
        plan_before, before = run.memory.exits.plan, run.protection.model_copy()
        run.memory.exits.plan = wanted.plan
        if wanted.moves_tpsl:
            run.memory.protection = Protection(tp=wanted.tp, sl=wanted.sl, override=True,
                                               disabled=False)
        try:
            await protection.ensure(run, run.venue.position_qty, raise_refusal=True)
        except ApplicationError:
            run.memory.exits.plan, run.memory.protection = plan_before, before
            run.set()
            raise
        if wanted.plan is not None and wanted.plan.trail is not None and (
                plan_before is None or plan_before.trail is None):
            # A trail added now starts at once: the tracking loop waits on the strategy's own
            # interval while the trade has no trail, so it is woken to take the trail's cadence.
            run.inbox.exchange_changed = True
        run.set()
        await run.record()
        return answer(run)

    @set_exits.validator
    def _validate_exits(self, upd: ExitsUpdate) -> None:
        check(self._run, upd)

    @workflow.query(name=TradeMessages.STATE)
    def state(self) -> TradeState:
        return self._run.state

    @workflow.query(name=TradeMessages.EXITS)
    def exits(self) -> ExitsAnswer:
        return answer(self._run)


def _foreign(err: BaseException) -> bool:
    """A refusal of the start itself (activities/ownership.py); behind a patch, as it changes
    what follows a failure (never seen by a history recorded before the check existed)."""
    return failure_type(err) == Failure.FOREIGN_START and workflow.patched(REFUSES_FOREIGN)


async def _check_start(run: TradeRun, *, window: timedelta | None) -> TradeResult | None:
    """The explicit check, for the runs that act before their venue read; a TradeResult when
    this run may not act for its trade."""
    inp = run.inp
    try:
        await run.calls.check_trade_start(
            StartCheck(trade_id=inp.trade_id, symbol=inp.symbol, side=inp.side), window=window)
    except ACTIVITY_FAILURES as err:
        if not _foreign(err):
            raise
        return _refused(run, failure_message(err))
    return None


def _refused(run: TradeRun, message: str) -> TradeResult:
    """A run that may not act for its trade ends REFUSED with nothing sent, and writes no row:
    there is none, or it is another workflow's (its own stays as it is)."""
    workflow.logger.warning("refused: %s", message)
    run.state.error = message
    run.set(TradeStatus.REFUSED, "done")
    s = run.state
    return TradeResult(trade_id=run.inp.trade_id, status=TradeStatus.REFUSED,
                       filled_qty=s.filled_qty, closed_qty=s.closed_qty,
                       realized_pnl=s.realized_pnl, fees=s.fees, error=message)


async def finish(run: TradeRun, status: TradeStatus, error: str | None = None) -> TradeResult:
    await run.cancel_working()
    await exits.cancel_ladder(run)  # and a level whose placement's answer was lost
    if run.ledger.protection is not None:
        await run.unprotect()
    run.state.error = error
    run.set(status, "done")
    await run.record()
    for workflow_id in run.inbox.notify:
        try:
            await workflow.get_external_workflow_handle(workflow_id).signal(
                TradeMessages.PREDECESSOR_CLOSED,
                PredecessorClosed(workflow_id=run.workflow_id, status=status),
            )
        except Exception as exc:  # noqa: BLE001 - the waiting trade may have given up already
            workflow.logger.info("could not tell %s that this trade ended: %s", workflow_id, exc)
    s = run.state
    return TradeResult(trade_id=run.inp.trade_id, status=status, filled_qty=s.filled_qty,
                       closed_qty=s.closed_qty, realized_pnl=s.realized_pnl, fees=s.fees,
                       error=error)


async def _close_predecessors(run: TradeRun, workflow_ids: tuple[str, ...]) -> None:
    """A reverse: close every trade it replaces (each its own quantity) and wait for them all.
    The new side opens only when each is known to own nothing any more
    (docs/design.md#reverses); otherwise the reverse ends REFUSED rather than open beside one.
    Every one is told to close first, so a refusal still leaves none of them open for good.

    One predecessor (every reverse before several were passed) gives the commands the earlier
    single-predecessor code gave, so its histories replay: the signal, then the outcome read
    or one wait. More predecessors come only in inputs written since, so they need no patch."""
    run.set(phase=f"closing {', '.join(workflow_ids)} first")
    checked = workflow.patched(REVERSE_CHECKS)
    running: list[str] = []
    for workflow_id in workflow_ids:
        try:
            await workflow.get_external_workflow_handle(workflow_id).signal(
                TradeMessages.CLOSE,
                CloseRequest(reason="reverse", notify_workflow_id=run.workflow_id),
            )
            running.append(workflow_id)
        except Exception as exc:  # noqa: BLE001 - not running: its own record says how it ended
            workflow.logger.info("reverse: %s is not running (%s)", workflow_id, exc)
    if checked:
        for workflow_id in workflow_ids:
            if workflow_id not in running:
                await _predecessor_ended(run, workflow_id)
    await _wait_for_predecessors(run, running, checked=checked)


async def _wait_for_predecessors(run: TradeRun, workflow_ids: list[str], *, checked: bool) -> None:
    """Until every one of `workflow_ids` said it ended: REFUSED at once when one ended
    without closing (`checked`), or when they have not all ended within REVERSE_WAIT_S."""
    ended = run.inbox.predecessors_ended
    deadline = workflow.now() + timedelta(seconds=REVERSE_WAIT_S)
    while True:
        for workflow_id in workflow_ids:
            status = ended.get(workflow_id)
            if checked and status is not None and not status.is_final:
                raise TradeEnded(
                    TradeStatus.REFUSED, f"the trade being reversed ({workflow_id}) ended "
                    f"{status.value}, not closed; not opening the new side",
                )
        pending = [w for w in workflow_ids if w not in ended]
        if not pending:
            return
        run.set(phase=f"waiting for {', '.join(pending)} to close first")
        left = deadline - workflow.now()
        try:
            if left <= timedelta(0):
                raise TimeoutError
            await workflow.wait_condition(lambda pending=pending: any(w in ended for w in pending),
                                          timeout=left)
        except TimeoutError as exc:
            raise TradeEnded(
                TradeStatus.REFUSED, f"{_being_reversed(pending)} did not close within "
                f"{REVERSE_WAIT_S} s; not opening the new side",
            ) from exc


def _being_reversed(workflow_ids: list[str]) -> str:
    if len(workflow_ids) == 1:
        return f"the trade being reversed ({workflow_ids[0]})"
    return f"the trades being reversed ({', '.join(workflow_ids)})"


async def _predecessor_ended(run: TradeRun, workflow_id: str) -> None:
    """The predecessor could not be signalled: go on only if its row says it ended owning
    nothing (a TP/SL closed it just before, say); a trade that stopped while it still owned
    quantity (terminated, or ended by an earlier bug) refuses the reverse."""
    outcome = await run.calls.read_trade_outcome(TradeOutcomeQuery(workflow_id=workflow_id))
    if outcome.owns_nothing:
        return
    said = (f"is {outcome.status.value} with {show(outcome.open_qty)} open"
            if outcome.found and outcome.status else "has no trade record")
    raise TradeEnded(
        TradeStatus.REFUSED, f"the trade being reversed ({workflow_id}) is not running and "
        f"{said}; not opening the new side",
    )
