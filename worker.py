"""`tradewire worker`: Settings → logging → Temporal client (pydantic converter) → dependencies
→ the worker that runs `TradeWorkflow`, its activities and the account watcher.

`build_worker(..., fast_path=True)` is the small worker the webhook process hosts for the eager
fast path: `TradeWorkflow` plus the local activities that run before and for the first
placement, no remote activity tasks, few slots and a small cache.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleUpdate,
    ScheduleUpdateInput,
)
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.service import RPCError
from temporalio.worker import (
    ActivityInboundInterceptor,
    ExecuteActivityInput,
    Interceptor,
    PollerBehaviorSimpleMaximum,
    Worker,
)
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

import logs
import metrics
from activities.adoption import AdoptionActivities
from activities.contract_tracking import WatcherInput
from activities.fast_chase import FastChaseActivities
from activities.orders import OrderActivities
from activities.pairs import PairActivities, SyncPairsInput
from activities.protection import ProtectionActivities
from activities.resume import ResumeActivities
from activities.tracking import TrackingActivities
from activities.trades import TradeActivities
from activities.venue import VenueActivities
from activities.venue_reads import VenueReader
from activities.watcher import FillWindow, WatcherActivities
from db.budget_ledger import BudgetLedger
from db.session import make_engine, make_sessionmaker
from exchange.client import BitunixClient
from exchange.errors import ExchangeError
from settings import Settings, fast_path_queue
from wiring import exchange_client, notify_sender, shared_budget
from workflows.converter import connect
from workflows.pairs_sync import PairsSyncWorkflow, pairs_schedule_id
from workflows.trade import TradeWorkflow
from workflows.watcher import AccountWatcherWorkflow, watcher_workflow_id

log = logging.getLogger("worker")
# An eager start is handed to this process only when a workflow-task slot is free beyond the
# ones its pollers hold while they wait: with 4 slots and the default 5 pollers, Temporal never
# started a trade eagerly (measured: 0 of 20). Two pollers keep slots free for eager starts.
FAST_PATH_SLOTS = 8
FAST_PATH_POLLERS = 2
FAST_PATH_LOCAL_ACTIVITIES = 4
# A trade's later workflow tasks follow it to whichever worker has it cached. With 50 cached,
# the webhook process ran every task of every recent trade (201 of 201 in a 20-alert trace):
# tracking work competing with the next alert's ack. A small cache hands older trades to the
# main worker; two pollers is the SDK's minimum for a worker with a cache.
FAST_PATH_CACHE = 8
FAST_PATH_IDENTITY_SUFFIX = "fast-path"
HEARTBEAT_THROTTLE = timedelta(seconds=1)
STARTUP_TRIES = 5
STARTUP_ROUND_S = 60
# The sandbox re-imports a workflow's modules for every run unless they pass through; ours
# hold only immutable constants, so they pass through and a new trade starts without
# re-executing them (the sandbox's checks on calls such as datetime.now still apply).
WORKFLOW_RUNNER = SandboxedWorkflowRunner(
    restrictions=SandboxRestrictions.default.with_passthrough_modules("workflows")
)


@dataclass
class Deps:
    """What activities need; built once per process, passed in (never global)."""

    exchange: BitunixClient
    sessionmaker: async_sessionmaker[AsyncSession]
    temporal: Client
    # Shared with the webhook's intake in the fast path, which warms it (webhook/fast_path.py).
    venue_reader: VenueReader | None = None


class ActivityLogContext(Interceptor):
    """Each activity's log records carry its workflow id, and the trade id of its input when
    the input names one (`trade_id`): logs.py's JSON lines (docs/design.md#metrics-and-logs)."""

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _LogContextInbound(next)


class _LogContextInbound(ActivityInboundInterceptor):
    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        trade_ids = (getattr(arg, "trade_id", None) for arg in input.args)
        trade_id = next((t for t in trade_ids if isinstance(t, int)), None)
        workflow_id = activity.info().workflow_id
        if workflow_id and trade_id is not None:
            logs.remember_trade(workflow_id, trade_id)
        with logs.context(workflow_id=workflow_id, trade_id=trade_id):
            return await self.next.execute_activity(input)


def watcher_activities(deps: Deps, settings: Settings) -> WatcherActivities:
    """The account watcher's activities as the settings configure them (its incident policy,
    the account's daily loss limits and the state their breach latches)."""
    return WatcherActivities(deps.exchange, deps.sessionmaker, deps.temporal,
                             settle_s=settings.incident_settle_s,
                             policy=settings.incident_policy,
                             account_limits=settings.risk_limits,
                             latch_state=settings.risk_latch_state,
                             day_timezone=settings.risk_day_timezone,
                             latch_flatten=settings.risk_latch_flatten)


def _activities(deps: Deps, settings: Settings) -> dict[str, Callable[..., Any]]:
    # One reader for the process: the entries' reads and the late re-sends' price checks share.
    reader = deps.venue_reader or VenueReader(deps.exchange)
    orders = OrderActivities(
        deps.exchange, deps.sessionmaker,
        visibility_window=timedelta(seconds=float(settings.order_visibility_s)),  # float-ok: time
        account_limits=settings.risk_limits, reader=reader,
    )
    venue = VenueActivities(deps.exchange, deps.sessionmaker, reader,
                            account_limits=settings.risk_limits,
                            taker_fee_rate=settings.taker_fee_rate)
    protection = ProtectionActivities(deps.exchange, deps.sessionmaker,
                                      visibility_window=orders.visibility_window)
    tracking = TrackingActivities(deps.exchange, deps.sessionmaker, orders)
    trades = TradeActivities(deps.sessionmaker)
    pairs = PairActivities(deps.exchange, deps.sessionmaker)
    watcher = watcher_activities(deps, settings)
    fast_chase = FastChaseActivities(deps.exchange, orders)
    adoption = AdoptionActivities(deps.exchange, deps.sessionmaker)
    resume = ResumeActivities(deps.exchange, deps.sessionmaker)
    return {
        "get_rules": pairs.get_rules,
        "sync_pairs": pairs.sync_pairs,
        "read_venue": venue.read_venue,
        "configure_symbol": venue.configure_symbol,
        "read_book": venue.read_book,
        "place_order": orders.place_order,
        "sync_order": orders.sync_order,
        "cancel_order": orders.cancel_order,
        "settle_orders": orders.settle_orders,
        "place_protection": protection.place_protection,
        "cancel_protection": protection.cancel_protection,
        "settle_protection_claims": protection.settle_protection_claims,
        "refresh_trade": tracking.refresh_trade,
        "record_external_close": tracking.record_external_close,
        "read_trail_price": tracking.read_trail_price,
        "record_trade": trades.record_trade,
        "read_trade_outcome": trades.read_trade_outcome,
        "check_trade_start": trades.check_trade_start,
        "watch_account": watcher.watch_account,
        "chase_fast": fast_chase.chase_fast,
        "collect_orders": fast_chase.collect_orders,
        "adopt_quantity": adoption.adopt_quantity,
        "read_books": resume.read_books,
    }


# Every workflow on the task queue: any worker polling it must know each of them.
WORKFLOWS = [TradeWorkflow, AccountWatcherWorkflow, PairsSyncWorkflow]
# The fast path's queue gets this fraction (1/n) of the worker process's activity slots.
FAST_QUEUE_SLOT_SHARE = 5
# What TradeWorkflow runs as local activities: before and for its first placement, as its
# tracking begins (workflows/tracking.py `track`), and an exit's calls (workflows/run.py
# `exit_local`), which run here for a trade this process has cached.
FAST_PATH_ACTIVITIES = ("get_rules", "read_venue", "configure_symbol", "place_order",
                        "refresh_trade", "record_trade", "cancel_protection")


def build_worker(
    client: Client,
    settings: Settings,
    deps: Deps,
    *,
    task_queue: str | None = None,
    fast_path: bool = False,
    max_activities: int | None = None,
) -> Worker:
    """The full worker, or (`fast_path`) the webhook's small one: TradeWorkflow and its local
    activities only, `no_remote_activities`, FAST_PATH_SLOTS slots, a small workflow cache."""
    queue = task_queue or settings.task_queue
    every = _activities(deps, settings)
    if fast_path:
        return Worker(
            client,
            # Its own queue: only the trades this process starts eagerly come here, never the
            # rest of a burst (the main worker polls it too, for their activities and for
            # their later tasks once this process's small cache lets them go).
            task_queue=fast_path_queue(queue),
            workflows=[TradeWorkflow],
            workflow_runner=WORKFLOW_RUNNER,
            activities=[every[name] for name in FAST_PATH_ACTIVITIES],
            no_remote_activities=True,
            max_concurrent_workflow_tasks=FAST_PATH_SLOTS,
            workflow_task_poller_behavior=PollerBehaviorSimpleMaximum(FAST_PATH_POLLERS),
            max_concurrent_local_activities=FAST_PATH_LOCAL_ACTIVITIES,
            max_cached_workflows=FAST_PATH_CACHE,
            # Named apart in the history and the UI: which trades the webhook started eagerly.
            identity=f"{client.identity}-{FAST_PATH_IDENTITY_SUFFIX}",
            interceptors=[ActivityLogContext()],
        )
    return Worker(
        client,
        task_queue=queue,
        workflows=WORKFLOWS,
        workflow_runner=WORKFLOW_RUNNER,
        activities=list(every.values()),
        max_concurrent_activities=max_activities or settings.worker_max_concurrent_activities,
        # Heartbeats carry cancellations: a cancelled sub-second chase stops within a second.
        max_heartbeat_throttle_interval=HEARTBEAT_THROTTLE,
        interceptors=[ActivityLogContext()],
    )


@contextlib.asynccontextmanager
async def main_workers(client: Client, settings: Settings, deps: Deps, *,
                       task_queue: str | None = None) -> AsyncIterator[None]:
    """What `tradewire worker` runs: the full worker on the task queue, and one on the fast
    path's queue beside it, for the trades a webhook started eagerly (their activities, and
    their workflow tasks once the webhook's small cache lets them go:
    docs/design.md#the-fast-path)."""
    queue = task_queue or settings.task_queue
    main, fast = activity_slots(settings.worker_max_concurrent_activities)
    async with (build_worker(client, settings, deps, task_queue=queue, max_activities=main),
                build_worker(client, settings, deps, task_queue=fast_path_queue(queue),
                             max_activities=fast)):
        yield


def activity_slots(total: int) -> tuple[int, int]:
    """The process's activity slots (TRADEWIRE_WORKER_MAX_CONCURRENT_ACTIVITIES) split between
    its worker on the task queue and the one on the fast path's (which only ever has the eager
    trades' work): together the setting (at least 2), each at least one."""
    fast = max(1, total // FAST_QUEUE_SLOT_SHARE)
    return max(1, total - fast), fast


async def start_watcher(client: Client, settings: Settings, *, task_queue: str | None = None) -> str:
    """Start the account watcher unless it runs already; returns its workflow id."""
    queue = task_queue or settings.task_queue
    wid = watcher_workflow_id(queue)
    await client.start_workflow(
        AccountWatcherWorkflow.run,
        WatcherInput(interval_s=settings.watcher_interval_s),
        id=wid,
        task_queue=queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
    )
    return wid


def pairs_schedule(settings: Settings, task_queue: str) -> Schedule:
    """Every `pairs_sync_interval_s`, one PairsSyncWorkflow; a run still going skips the next."""
    return Schedule(
        action=ScheduleActionStartWorkflow(
            PairsSyncWorkflow.run,
            SyncPairsInput(),
            id=pairs_schedule_id(task_queue),  # the Schedule appends the run's time
            task_queue=task_queue,
            execution_timeout=timedelta(minutes=30),
        ),
        spec=ScheduleSpec(
            intervals=[ScheduleIntervalSpec(every=timedelta(seconds=settings.pairs_sync_interval_s))]
        ),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
    )


async def ensure_pairs_schedule(
    client: Client, settings: Settings, *, task_queue: str | None = None
) -> str:
    """Create the pair-sync Schedule, or bring an existing one to this process's settings (a
    changed interval takes effect at the next start); every worker calls it at start, so it
    must be idempotent. Returns the Schedule's id."""
    queue = task_queue or settings.task_queue
    sid = pairs_schedule_id(queue)
    wanted = pairs_schedule(settings, queue)
    try:
        await client.create_schedule(sid, wanted)
        log.info("pair sync scheduled every %d s (Temporal Schedule %s)",
                 settings.pairs_sync_interval_s, sid)
        return sid
    except ScheduleAlreadyRunningError:
        pass

    def update(inp: ScheduleUpdateInput) -> ScheduleUpdate | None:
        current = inp.description.schedule
        same = ([i.every for i in current.spec.intervals] == [i.every for i in wanted.spec.intervals]
                and isinstance(current.action, ScheduleActionStartWorkflow)
                and current.action.task_queue == queue)
        return None if same else ScheduleUpdate(schedule=wanted)

    await client.get_schedule_handle(sid).update(update)
    log.info("pair sync runs every %d s (Temporal Schedule %s)",
             settings.pairs_sync_interval_s, sid)
    return sid


async def startup_round(deps: Deps, settings: Settings, *, tries: int = STARTUP_TRIES) -> bool:
    """Before this process takes a task: one round of the account watcher
    (docs/design.md#startup-reconciliation). Every open trade is signalled, so each re-reads the
    exchange (what a crash left in flight is found by its own trade) and one whose workflow is
    gone is known; the positions and working Tradewire orders are compared with what the open
    trades own (a mismatch that lasts becomes an incident; the policy answers it); orphan orders
    of ours are cancelled under `protect`/`flatten`. Retried `tries` times; False: it could not
    run (logged), and the account watcher does the same as soon as it runs."""
    watcher = watcher_activities(deps, settings)
    for attempt in range(1, tries + 1):
        try:
            await asyncio.wait_for(watcher.round(None, FillWindow()), STARTUP_ROUND_S)
        except (ExchangeError, OSError, TimeoutError, RPCError) as exc:
            log.warning("startup reconciliation: attempt %d of %d failed (%s)", attempt, tries,
                        exc)
            if attempt < tries:
                await asyncio.sleep(min(2 ** attempt, 10))
            continue
        gone, pending = watcher.not_running, watcher.audit.settling.pending
        log.info("startup reconciliation: every open trade signalled; %s; %s",
                 f"{len(gone)} open trade(s) without a running workflow" if gone
                 else "every open trade's workflow runs",
                 f"out of line now (an incident if it lasts): {', '.join(sorted(pending))}"
                 if pending else "the exchange holds what the open trades own")
        return True
    log.error("startup reconciliation could not run; starting anyway (the account watcher "
              "reconciles as soon as the exchange answers)")
    return False


def database_engine(settings: Settings) -> AsyncEngine:
    if not settings.database_url:
        raise SystemExit(
            "tradewire worker: TRADEWIRE_DATABASE_URL is not set (`tradewire up` sets it for "
            "the processes it starts)"
        )
    return make_engine(settings.database_url)


async def serve(settings: Settings) -> None:
    client = await connect(settings.temporal_target, settings.temporal_namespace)
    engine = database_engine(settings)
    # The account's request budget, shared with every other process that signs.
    ledger = BudgetLedger.connect(engine.url.render_as_string(hide_password=False))
    exchange = exchange_client(settings, budget=shared_budget(settings, ledger))
    deps = Deps(exchange=exchange, sessionmaker=make_sessionmaker(engine), temporal=client)
    scraped = await metrics.serve(settings, deps.sessionmaker, offset=1, name="worker")
    # No task is taken before the books have been held against the exchange once.
    await startup_round(deps, settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    # Notifications go out beside the worker, never on a trade's path: a slow or dead receiver
    # delays only other notifications (docs/design.md#notifications).
    sender = asyncio.create_task(notify_sender(settings, deps.sessionmaker).run(
        float(settings.notify_interval_s)))  # float-ok: seconds
    try:
        async with main_workers(client, settings, deps):
            await start_watcher(client, settings)
            try:
                await ensure_pairs_schedule(client, settings)
            except RPCError as exc:
                # Never worth stopping the worker that protects open trades: the pairs stay as
                # stored, and an entry refreshes its own pair's rules when they are stale or
                # rejected. The next start tries again.
                log.error("the pair-sync schedule could not be created or updated (%s); pairs "
                          "are not re-synced on a schedule until the worker starts again", exc)
            log.info("worker polling task queues %r and %r on %s", settings.task_queue,
                     settings.fast_path_task_queue, settings.temporal_target)
            await stop.wait()
            log.info("stopping: finishing the tasks in hand")
    finally:
        sender.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sender  # it holds database connections: done before the engine goes
        if scraped is not None:
            await scraped.close()
        await exchange.aclose()
        await ledger.aclose()
        await engine.dispose()


def main() -> None:
    try:
        settings = Settings()
        logs.configure(settings.log_level, settings.log_format)
        asyncio.run(serve(settings))
    except SystemExit as exc:  # a startup refusal (its message says what to fix)
        logs.exit_process(logs.exit_status(exc))
    logs.exit_process(0)


if __name__ == "__main__":
    main()
