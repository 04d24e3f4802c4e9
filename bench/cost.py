"""Cost per trade (issue 24): the CPU time every process of the stack spends on one market
trade, from its alert to TRACKING, over a series of trades sent one at a time.

On a stack of its own (`tradewire up`, limits raised): a few warm-up trades, then `trades`
open alerts spread over the bundled symbols, each sent once the previous trade is TRACKING.
The trades are left open during the window (the account watcher tracks them, as it would in
live use; its idle cost is measured before and reported beside) and closed in bulk after it.

CPU time is utime + stime from /proc/<pid>/stat, read at the window's start and end, for each
process and everything below it: its live descendants, and (through cutime + cstime) the ones
that exited and were waited for. PostgreSQL is its postmaster (found from postmaster.pid) and
every backend: a backend that exits during the window is counted in the postmaster's cutime.
The bench's own status-polling connection is a backend too: its CPU is subtracted (by its
pid, pg_backend_pid()). `tradewire up` itself counts only its own time (its children are the
other processes).

Also: the workflow tasks and history events of a few of the trades (Temporal's history of
each trade's workflow, read once the window has ended) and the exchange requests per trade
(the paper exchange's request log over the window).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import text

from bench import profile
from bench.alerts import AlertPoster, BenchFailure, accepted, add_strategy, close_body, open_body
from bench.burst import SIZES
from bench.limits import BenchLimits
from bench.memory import _children, _cmdline, snapshot, stack_processes
from bench.paper_admin import PaperAdmin
from bench.report import Outcome, Row
from bench.stack import Stack, full_stack
from bench.stackdb import database_url, trade_statuses
from db.session import make_engine

DEFAULT_N = 200
QUICK_N = 30
WARMUP = 5
IDLE_S = 5.0  # the stack's background CPU before the series, per second
CALIBRATION_LOOP = 2_000_000
STATS_FLUSH_S = 1.5  # PostgreSQL's activity counters reach pg_stat_database within ~1 s
SETTLE_TIMEOUT_S = 10.0
POLL_S = 0.01
HISTORIES = 3  # trades whose Temporal history is read
TARGET_MS = 40.0
UNSETTLED = ("PENDING", "ENTERING")
CLOSE_WAIT_S = 60.0
TICKS_PER_S = os.sysconf("SC_CLK_TCK")


def stat_ticks(stat_line: str) -> tuple[int, int, int]:
    """(ppid, own ticks utime+stime, waited-for children's ticks cutime+cstime) from a
    /proc/<pid>/stat line (the command name in parentheses may hold spaces)."""
    fields = stat_line.rsplit(")", 1)[1].split()
    # fields[0] is the state (field 3 of proc(5)); utime is field 14, so fields[11].
    ppid = int(fields[1])
    return ppid, int(fields[11]) + int(fields[12]), int(fields[13]) + int(fields[14])


def _all_stats() -> dict[int, tuple[int, int, int]]:
    out = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            out[int(entry.name)] = stat_ticks((entry / "stat").read_text())
        except (OSError, IndexError, ValueError):
            continue  # exited while we looked
    return out


def tree_ticks(stats: dict[int, tuple[int, int, int]], root: int) -> int:
    """Ticks of `root` and every process below it, the exited (waited-for) ones included."""
    children: dict[int, list[int]] = {}
    for pid, (ppid, _, _) in stats.items():
        children.setdefault(ppid, []).append(pid)
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        if pid not in stats:
            continue
        _, own, waited = stats[pid]
        total += own + waited
        todo += children.get(pid, [])
    return total


def own_ticks(stats: dict[int, tuple[int, int, int]], pid: int) -> int:
    return stats[pid][1] if pid in stats else 0


def every_child(stack: Stack) -> dict[str, int]:
    """role → pid of every child of `up`: the roles bench/memory.py names, the others by
    their command (the dashboard: "ui")."""
    assert stack.up is not None
    named = stack_processes(stack)
    known = set(named.values())
    for pid in _children(stack.up.pid):
        if pid not in known:
            argv = _cmdline(pid)
            role = argv[3] if len(argv) >= 4 and argv[1:3] == ["-m", "cli"] else (
                Path(argv[0]).name if argv and argv[0] else str(pid))
            named[role] = pid
    return named


@dataclass(frozen=True)
class Roots:
    """The processes to count: role → pid, whole trees; and `up`, its own time only."""

    trees: dict[str, int]
    up: int | None
    poll_backend: int | None  # the bench's own PostgreSQL backend, subtracted


def cpu_ticks(roots: Roots) -> dict[str, int]:
    stats = _all_stats()
    out = {role: tree_ticks(stats, pid) for role, pid in roots.trees.items()}
    if "postgres" in out and roots.poll_backend is not None:
        out["postgres"] -= tree_ticks(stats, roots.poll_backend)
    if roots.up is not None:
        out["tradewire up"] = own_ticks(stats, roots.up)
    return out


def per_trade_ms(before: dict[str, int], after: dict[str, int], trades: int
                 ) -> dict[str, float]:
    """role → CPU ms per trade over the window (ticks → ms), and "total"."""
    out = {role: round((after[role] - before.get(role, 0)) * 1000 / TICKS_PER_S / trades, 2)
           for role in after}
    out["total"] = round(sum(out.values()), 2)
    return out


def background_ms_per_trade(idle_ms_per_s: dict[str, float], window_s: float,  # float-ok: s
                            trades: int) -> float:  # float-ok: milliseconds
    """What the stack would have spent anyway over the window, per trade: its idle CPU rate
    (every process, measured before the series) × the window's length. The series' wall time
    varies with the machine's load; this part of the total varies with it."""
    return round(sum(idle_ms_per_s.values()) * window_s / trades, 2)


def calibration_ms(rounds: int = 3) -> float:  # float-ok: milliseconds
    """CPU ms of a fixed pure-Python loop (the fastest of `rounds`): how fast this machine runs
    Python right now. On a shared machine the same stack costs more CPU when it is loaded
    (caches, frequency); two runs' figures compare fairly only beside their calibrations."""
    best = None
    for _ in range(rounds):
        t0 = time.thread_time_ns()
        total = 0
        for i in range(CALIBRATION_LOOP):
            total += i
        spent = (time.thread_time_ns() - t0) / 1e6
        best = spent if best is None else min(best, spent)
    assert best is not None
    return round(best, 2)


def postmaster_pid(state_dir: Path) -> int | None:
    """The embedded PostgreSQL's postmaster, from the first line of postmaster.pid."""
    for found in sorted(state_dir.rglob("postmaster.pid")):
        with contextlib.suppress(OSError, ValueError, IndexError):
            return int(found.read_text().splitlines()[0])
    return None


def history_counts(event_types: list[str]) -> dict[str, int]:
    """Workflow tasks (WorkflowTaskCompleted), activities scheduled, timers and all events."""
    kinds = Counter(event_types)
    return {
        "events": len(event_types),
        "workflow_tasks": kinds["WORKFLOW_TASK_COMPLETED"],
        "activities": kinds["ACTIVITY_TASK_SCHEDULED"],
        "local_activity_markers": kinds["MARKER_RECORDED"],
        "timers": kinds["TIMER_STARTED"],
    }


async def _histories(stack: Stack, workflow_ids: list[str]) -> dict[str, Any]:
    from temporalio.api.enums.v1 import EventType

    from worker import FAST_PATH_IDENTITY_SUFFIX
    from workflows.converter import connect

    client = await connect(stack.temporal_target,
                           stack.env.get("TRADEWIRE_TEMPORAL_NAMESPACE", "default"))
    out: dict[str, Any] = {}
    for workflow_id in workflow_ids:
        history = await client.get_workflow_handle(workflow_id).fetch_history()
        types = [EventType.Name(e.event_type).removeprefix("EVENT_TYPE_")
                 for e in history.events]
        activities = [e.activity_task_scheduled_event_attributes.activity_type.name
                      for e in history.events
                      if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED]
        # Which worker ran each workflow task: the webhook's (eager start, "-fast-path") or
        # the main worker; a task on a worker without the run cached replays the history.
        ran_by = Counter(
            "webhook" if e.workflow_task_started_event_attributes.identity.endswith(
                FAST_PATH_IDENTITY_SUFFIX) else "worker"
            for e in history.events
            if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED)
        out[workflow_id] = history_counts(types) | {"tasks_by_worker": dict(ran_by),
                                                    "activity_types": activities,
                                                    "sequence": types}
    return out


class StatusPoll:
    """One trade's status over one connection held for the whole series (its backend's CPU is
    the bench's, subtracted from PostgreSQL's)."""

    def __init__(self, stack: Stack) -> None:
        self._engine = make_engine(database_url(stack), pool_size=1)
        self._conn: Any = None
        self.backend_pid: int | None = None
        self.polls = 0  # each a transaction of the bench's own, subtracted from the count

    async def __aenter__(self) -> StatusPoll:
        self._conn = await self._engine.connect()
        self.backend_pid = int((await self._conn.execute(
            text("SELECT pg_backend_pid()"))).scalar_one())
        await self._conn.rollback()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._conn.close()
        await self._engine.dispose()

    async def transactions(self) -> int:
        """Transactions the database has counted (committed and rolled back), less the
        bench's own polls. PostgreSQL flushes a backend's counts within a second or so."""
        count = int((await self._conn.execute(text(
            "SELECT xact_commit + xact_rollback FROM pg_stat_database "
            "WHERE datname = current_database()"))).scalar_one())
        await self._conn.rollback()
        self.polls += 1
        return count - self.polls

    async def until_settled(self, trade_id: int) -> str:
        deadline = time.monotonic() + SETTLE_TIMEOUT_S
        while True:
            status = (await self._conn.execute(
                text("SELECT status FROM trade WHERE id = :id"), {"id": trade_id}
            )).scalar_one_or_none()
            await self._conn.rollback()  # a fresh snapshot for the next poll
            self.polls += 1
            if status is not None and status not in UNSETTLED:
                return str(status)
            if time.monotonic() > deadline:
                return str(status)
            await asyncio.sleep(POLL_S)


@contextlib.asynccontextmanager
async def _maybe_profiled(stack: Stack, out_dir: Path | None) -> AsyncIterator[dict[str, Path]]:
    if out_dir is None:
        yield {}
        return
    pids = {role: pid for role, pid in stack_processes(stack).items()
            if role in ("webhook", "worker", "paper exchange")}
    async with profile.sampling(pids, out_dir) as files:
        yield files


async def measure(limits: BenchLimits, work_dir: Path, *, trades: int = DEFAULT_N,
                  profile_dir: Path | None = None) -> Outcome:
    async with full_stack(limits, work_dir / "cost", fast_path=True) as stack:
        return await on_stack(stack, limits, trades=trades, profile_dir=profile_dir)


async def on_stack(stack: Stack, limits: BenchLimits, *, trades: int,
                   profile_dir: Path | None = None) -> Outcome:
    if stack.up is None or stack.state_dir is None:
        raise BenchFailure("the cost measurement needs a stack of its own (pids to read)")
    pg = postmaster_pid(stack.state_dir)
    if pg is None:
        raise BenchFailure(f"no postmaster.pid under {stack.state_dir}")
    trees = {**every_child(stack), "postgres": pg}
    run = uuid.uuid4().hex[:6]
    strategy = await asyncio.to_thread(
        add_strategy, stack, f"bench-cost-{run}",
        rate_limit_per_min=limits.webhook_rate_limit_per_min, size="1")
    symbols = list(SIZES)
    poster = AlertPoster(stack.webhook_url, connections=1)
    admin = PaperAdmin(stack.exchange_url)
    workflow_ids: list[str] = []
    statuses: Counter[str] = Counter()

    async def one(k: int) -> str:
        symbol = symbols[k % len(symbols)]
        body = open_body(strategy, symbol, f"cost-{run}-{k}") | {"size": SIZES[symbol]}
        ack = await poster.post(body)
        workflow_id = accepted(ack, f"open alert {k}")
        statuses[await poll.until_settled(int(ack.body["trade_id"]))] += 1
        return workflow_id

    try:
        async with StatusPoll(stack) as poll:
            roots = Roots(trees, stack.up.pid, poll.backend_pid)
            for k in range(WARMUP):
                await one(-1 - k)
            statuses.clear()
            idle0, t_idle = cpu_ticks(roots), time.monotonic()
            await asyncio.sleep(IDLE_S)
            idle1, idle_s = cpu_ticks(roots), time.monotonic() - t_idle
            xacts0 = await poll.transactions()
            rss_before = snapshot(stack)
            calibrated = [calibration_ms()]
            async with _maybe_profiled(stack, profile_dir) as files:
                since = time.time_ns()
                before, t0 = cpu_ticks(roots), time.monotonic()
                for k in range(trades):
                    workflow_ids.append(await one(k))
                after, window_s = cpu_ticks(roots), time.monotonic() - t0
                until = time.time_ns()
            rss_after = snapshot(stack)
            calibrated.append(calibration_ms())
            await asyncio.sleep(STATS_FLUSH_S)
            xacts = await poll.transactions() - xacts0
        log = [e for e in await admin.requests(since_ns=since) if e["t_ns"] < until]
        histories = await _histories(stack, workflow_ids[:HISTORIES])
        for symbol in symbols:
            await poster.post(close_body(strategy, symbol, f"cost-{run}-close-{symbol}"))
        closed = await _wait_closed(stack, strategy.name, WARMUP + trades)
    finally:
        await poster.aclose()
        await admin.aclose()
    per_trade = per_trade_ms(before, after, trades)
    idle_ms_per_s = {role: round((idle1[role] - idle0.get(role, 0)) * 1000 / TICKS_PER_S
                                 / idle_s, 2) for role in idle1}
    background = background_ms_per_trade(idle_ms_per_s, window_s, trades)
    requests = Counter(e["path"].removeprefix("/api/v1/futures/") for e in log)
    memory = {"rss_mib_before": rss_before, "rss_mib_after": rss_after,
              "kib_per_open_trade": {role: round((rss_after[role] - rss_before[role]) * 1024
                                                 / trades, 1)
                                     for role in rss_after if role in rss_before}}
    return outcome(per_trade, idle_ms_per_s, window_s=window_s, trades=trades,
                   db_transactions=round(xacts / trades, 2), memory=memory,
                   background_ms=background, calibration=calibrated,
                   statuses=dict(statuses), histories=histories,
                   requests={p: round(n / trades, 2) for p, n in requests.most_common()},
                   closed=closed, profiles={role: profile.summarize(path)
                                            for role, path in files.items()})


async def _wait_closed(stack: Stack, name: str, count: int) -> dict[str, int]:
    deadline = time.monotonic() + CLOSE_WAIT_S
    while True:
        statuses = await trade_statuses(stack, [name])
        if statuses.get("CLOSED", 0) >= count or time.monotonic() > deadline:
            return statuses
        await asyncio.sleep(0.5)


def outcome(per_trade: dict[str, float], idle_ms_per_s: dict[str, float], *,
            window_s: float, trades: int, statuses: dict[str, int],  # float-ok: seconds
            histories: dict[str, Any], requests: dict[str, float],
            closed: dict[str, int], profiles: dict[str, Any],
            db_transactions: float | None = None,  # float-ok: a count per trade
            memory: dict[str, Any] | None = None,
            background_ms: float | None = None,  # float-ok: milliseconds
            calibration: list[float] | None = None) -> Outcome:  # float-ok: milliseconds
    total = per_trade["total"]
    processes = {role: ms for role, ms in per_trade.items() if role != "total"}
    first = next(iter(histories.values()), {})
    rows = [
        Row(f"CPU per trade, all processes ({trades} sequential market trades, alert → TRACKING)",
            f"{total:.1f} ms", f"≤ {TARGET_MS:g} ms", "met" if total <= TARGET_MS else "MISSED"),
        Row("of which the idle background (its rate before the series × the window's time)",
            f"{background_ms:.1f} ms" if background_ms is not None else "–"),
        Row("CPU per trade by process", ", ".join(
            f"{role} {ms:.1f}" for role, ms in sorted(processes.items(), key=lambda x: -x[1]))),
        Row("workflow tasks / history events per trade (its workflow, once TRACKING)",
            f"{first.get('workflow_tasks', '–')} / {first.get('events', '–')}"),
        Row("exchange requests per trade", f"{sum(requests.values()):.2f}"),
        Row("PostgreSQL transactions per trade", f"{db_transactions}"),
    ]
    if memory and "worker" in memory.get("kib_per_open_trade", {}):
        rows.append(Row("worker RSS per open trade (over the window)",
                        f"{memory['kib_per_open_trade']['worker']:+.1f} KiB"))
    not_tracking = {s: n for s, n in statuses.items() if s != "TRACKING"}
    notes = [
        f"{trades} open alerts (market, the minimum-ish sizes of bench/burst.py over "
        f"{', '.join(SIZES)}), one at a time: the next once the previous trade was TRACKING; "
        f"after {WARMUP} warm-up trades; trades left open during the window (tracked by the "
        "account watcher) and closed in bulk after it",
        "CPU = utime + stime (/proc/<pid>/stat) of each process and its descendants, exited "
        "ones included through cutime/cstime; PostgreSQL = the postmaster's tree (every "
        "backend) minus the bench's own polling backend; `tradewire up` = its own time only",
        f"idle background before the series (ms of CPU per second, over {IDLE_S:g} s): "
        + ", ".join(f"{r} {v:g}" for r, v in idle_ms_per_s.items()),
        "PostgreSQL transactions: pg_stat_database's commits and rollbacks over the window "
        f"(read {STATS_FLUSH_S:g} s after it, so counters are flushed), less the bench's polls",
        f"calibration: CPU ms of a fixed Python loop ({CALIBRATION_LOOP:,} additions) in the "
        "bench process before and after the window; a loaded machine makes every figure "
        "higher by about the same factor",
        "memory: RSS (MiB) of each process before and after the window; the difference per "
        "trade is the cost of one more open (tracked) trade",
    ]
    if not_tracking:
        notes.append(f"trades not TRACKING within {SETTLE_TIMEOUT_S:g} s: {not_tracking}")
    return Outcome(
        name="cost",
        title="2b. Cost per trade (CPU of every process, alert → TRACKING)",
        rows=rows,
        details={
            "trades": trades, "window_s": round(window_s, 2),
            "cpu_ms_per_trade": total, "per_process_ms": processes,
            "idle_background_ms_per_trade": background_ms,
            "cpu_ms_per_trade_less_background": (round(total - background_ms, 2)
                                                 if background_ms is not None else None),
            "idle_cpu_ms_per_s": idle_ms_per_s, "statuses": statuses,
            "workflow_history": histories, "exchange_requests_per_trade": requests,
            "db_transactions_per_trade": db_transactions, "memory": memory or {},
            "calibration_ms_before_after": calibration or [],
            "after_closing": closed, "profile": profiles,
        },
        notes=notes,
    )
