"""Two workers, one account: the request budget holds across processes (issue 24, item 7).

A stack under BitUnix's own per-account limits (the paper exchange's and the client's budgets
unscaled, bench/limits.py) with the fast path on and a second `tradewire worker` beside the one
`tradewire up` starts, polling the same task queue against the same database and Temporal. The
second worker keeps the default TRADEWIRE_EXCHANGE_BUDGET_SHARE (1), `up` gives its worker 0.7
and the fast path 0.3: budgets held per process would allow the account 2× BitUnix's limits.
The load is the candle close's 200 open alerts within 1 s over 20 symbols
(bench/candle_close.py), whose trades the three processes share: place_order alone is asked
for far beyond its 10/s.

Reported from the paper exchange's request log (bench/paper_admin.py), every request received
from the first alert until the last order: per endpoint, the most requests in any 1 s window
beside the endpoint's limit, and the requests refused for rate (10005/10006); target 0 refused
and no endpoint over its limit. Also: orders lost and doubled among the alerts answered 202
(none: the budget only delays), and the CPU seconds each process spent (each took its part).
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any

from bench import burst, candle_close
from bench.alerts import PLACE_ORDER, Ack, AlertPoster, add_strategy, open_body
from bench.limits import BenchLimits
from bench.memory import stack_processes
from bench.paper_admin import PaperAdmin
from bench.report import Outcome, Row
from bench.stack import Process, Stack, StackError, full_stack, spawn
from bench.stackdb import orders_by_workflow, refusal_reasons
from exchange.budget import rate_for

API = "/api/v1/futures/"
WINDOW_NS = 1_000_000_000  # BitUnix counts requests per second
WORKER_START_S = 60.0
# At 10 place_order/s for the account, 200 trades' orders take 20 s and more, and an attempt
# cancelled while it waited for its slot is re-sent only after the 30 s in which the exchange
# might still show it (activities/orders.py): wait this long for every accepted alert's order
# (the burst's drain, 30 s after the last answer, would count a late order lost).
DRAIN_TIMEOUT_S = 150.0
# ... unless nothing moved for burst.STALL_S: no place_order reached the exchange (accepted or
# refused) and no waiting trade changed its status or added an order row.
STALL_S = burst.STALL_S
ALERT_TIMEOUT_S = 30.0
RATE_CODES = candle_close.RATE_CODES
# What exchange/shared_budget.py logs when the database did not answer a lease in time.
FALLBACK_LOG = "the shared request budget did not answer"


def busiest_windows(log: list[dict[str, Any]]) -> dict[str, list[int]]:
    """Per endpoint path, the receive stamps of the most requests received in any WINDOW_NS
    (refused ones too: each counts against the limit)."""
    by_path: dict[str, list[int]] = defaultdict(list)
    for e in log:
        by_path[e["path"]].append(int(e["t_ns"]))
    most: dict[str, list[int]] = {}
    for path, stamps in by_path.items():
        stamps.sort()
        best, first = (0, 0), 0
        for last, t in enumerate(stamps):
            while t - stamps[first] >= WINDOW_NS:
                first += 1
            if last - first + 1 > best[1] - best[0]:
                best = (first, last + 1)
        most[path] = stamps[best[0]:best[1]]
    return most


def limit_of(path: str) -> int:
    return int(rate_for(path, share=Decimal(1), scale=Decimal(1)))


def cpu_s(pid: int) -> float | None:  # float-ok: seconds
    """User + system CPU seconds of a live process."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def second_worker(stack: Stack, log_dir: Path) -> Process:
    """`tradewire worker` against the stack's database and Temporal, with the default budget
    share; up once it polls (it logs that at INFO, so it runs at INFO)."""
    if stack.database_url is None:
        raise StackError("`tradewire up` printed no database URL: no second worker")
    env = stack.env | {
        "TRADEWIRE_DATABASE_URL": stack.database_url,
        "TRADEWIRE_METRICS_PORT": "0",  # the first worker holds the default metrics port
        "TRADEWIRE_LOG_LEVEL": "INFO",
    }
    proc = spawn("worker-2", [sys.executable, "-m", "cli", "worker"], env, log_dir)
    deadline = asyncio.get_running_loop().time() + WORKER_START_S
    while "worker polling task queue" not in proc.tail(400):
        if proc.exited() is not None:
            raise StackError(f"the second worker exited with {proc.exited()}; its log "
                             f"({proc.log_path}):\n{proc.tail()}")
        if asyncio.get_running_loop().time() > deadline:
            await proc.stop()
            raise StackError(f"the second worker did not poll within {WORKER_START_S:.0f} s; "
                             f"log: {proc.log_path}\n{proc.tail()}")
        await asyncio.sleep(0.2)
    return proc


ENDED_WITHOUT = ("REFUSED", "FAILED", "CANCELLED")  # a trade that chose not to place


async def _unplaced(stack: Stack, workflow_ids: list[str], log: list[dict[str, Any]]
                    ) -> tuple[list[str], list[str], tuple[Any, ...]]:
    """(waiting, ended, progress) of the trades with no order the exchange accepted: still
    going, or ended without one (refused by its own rules, such as the alert's maximum age);
    `progress` changes whenever one of them moved (a status, an order row, a place_order)."""
    rows = await orders_by_workflow(stack, workflow_ids)
    accepted = {e["client_id"] for e in log if e["code"] == 0}
    waiting, ended = [], []
    for w in workflow_ids:
        row = rows.get(w, {})
        if not accepted.intersection(row.get("client_ids", [])):
            (ended if row.get("status") in ENDED_WITHOUT else waiting).append(w)
    progress = (len(log), len(ended), tuple(
        (w, rows.get(w, {}).get("status"), len(rows.get(w, {}).get("client_ids", [])))
        for w in waiting))
    return waiting, ended, progress


async def _alerts(stack: Stack, limits: BenchLimits
                  ) -> tuple[list[Ack], list[dict[str, Any]], int, list[str], list[str], bool]:
    """The candle close's alerts (bench/candle_close.py); the exchange's place_orders once
    every alert answered 202 has its order there or its trade ended without one (or nothing
    moved for STALL_S, or DRAIN_TIMEOUT_S passed); the trades ended without an order; the
    strategies' names; and whether the wait ended on a stall."""
    run = uuid.uuid4().hex[:6]
    symbols = [s for s, _, _ in await candle_close._symbols(stack.exchange_url)]
    strategies = [await asyncio.to_thread(add_strategy, stack, f"bench-two-{run}-{k}",
                                          rate_limit_per_min=limits.webhook_rate_limit_per_min,
                                          size="1")
                  for k in range(candle_close.STRATEGIES)]
    bodies = []
    for k in range(candle_close.ALERTS):
        body = open_body(strategies[k % candle_close.STRATEGIES],
                         symbols[(k // candle_close.STRATEGIES) % candle_close.SYMBOLS],
                         f"two-{run}-{k}")
        body["size_usdt"] = str(candle_close.ALERT_USDT)
        bodies.append(body)
    admin = PaperAdmin(stack.exchange_url)
    # Not TradingView's 3 s (the candle close measures the answers): here every alert should
    # become a trade, however loaded the machine, so that the load on the budget is there.
    poster = AlertPoster(stack.webhook_url, connections=candle_close.ALERTS,
                         timeout_s=ALERT_TIMEOUT_S)
    since = time.time_ns()
    try:
        acks = await candle_close._fire(poster, bodies)
        workflow_ids = [str(a.body["workflow_id"]) for a in acks
                        if a.status == 202 and "workflow_id" in a.body]
        deadline = time.monotonic() + DRAIN_TIMEOUT_S
        stillness = burst.Stillness()
        stalled = False
        while True:
            log = [e for e in await admin.requests(since_ns=since) if e["path"] == PLACE_ORDER]
            waiting, ended, progress = await _unplaced(stack, workflow_ids, log)
            now = time.monotonic()
            stalled = bool(waiting) and stillness.still_for(progress, now) >= STALL_S
            if not waiting or stalled or now > deadline:
                break
            await asyncio.sleep(2.0)
    finally:
        await poster.aclose()
        await admin.aclose()
    return acks, log, since, ended, [s.name for s in strategies], stalled


async def measure(limits: BenchLimits, work_dir: Path) -> Outcome:
    real = replace(limits, paper_rate_limit_scale=Decimal(1), exchange_budget_scale=Decimal(1))
    run_dir = work_dir / "two-workers"
    async with full_stack(real, run_dir, fast_path=True,
                          extra_env=candle_close.pairs_env(run_dir)) as stack:
        first_pid = stack_processes(stack).get("worker")
        second = await second_worker(stack, run_dir)
        try:
            pids = {"webhook (fast path, share 0.3)": stack_processes(stack).get("webhook"),
                    "worker 1 (tradewire up, share 0.7)": first_pid,
                    "worker 2 (tradewire worker, share 1)": second.pid}
            cpu_before = {k: cpu_s(p) if p else None for k, p in pids.items()}
            acks, orders, since, ended, names, stalled = await _alerts(stack, real)
            reasons = await refusal_reasons(stack, names)
            ok = [a for a in acks if a.status == 202 and "workflow_id" in a.body]
            t = await burst.tally(stack, acks, ok, orders)
            admin = PaperAdmin(stack.exchange_url)
            try:
                everything = await admin.requests(since_ns=since)
            finally:
                await admin.aclose()
            cpu = {k: round(after - cpu_before[k], 2) if (after := cpu_s(p) if p else None)
                   is not None and cpu_before[k] is not None else None
                   for k, p in pids.items()}
        finally:
            await second.stop()
        fallbacks = sum(p.read_text(errors="replace").count(FALLBACK_LOG)
                        for p in run_dir.glob("*.log"))
    out = outcome(everything, t, len(ok), cpu, acks_sent=min(a.sent_ns for a in acks),
                  ended=len(ended), reasons=reasons)
    out.details["fallbacks"] = fallbacks
    out.details["drain_ended_on_a_stall"] = stalled
    out.notes.append(f"the orders were waited for until every alert answered 202 had its order "
                     f"or its trade had ended without one, at most {DRAIN_TIMEOUT_S:.0f} s, or "
                     f"until nothing moved for {STALL_S:.0f} s (no place_order, no waiting "
                     "trade's status or order rows changed): a trade still waiting then is "
                     "stuck and counted lost" + (" (this run: ended on a stall)" if stalled
                                                 else ""))
    out.rows.append(Row("times a process fell back to its own share (database too slow)",
                        str(fallbacks)))
    return out


def outcome(everything: list[dict[str, Any]], t: burst.Tally, accepted: int,
            cpu: dict[str, float | None], *, acks_sent: int,  # float-ok: seconds
            ended: int, reasons: dict[str, int]) -> Outcome:
    refused = sum(1 for e in everything if e["code"] in RATE_CODES)
    refused_by_path: dict[str, int] = defaultdict(int)
    for e in everything:
        if e["code"] in RATE_CODES:
            refused_by_path[e["path"].removeprefix(API)] += 1
    most = busiest_windows(everything)
    # Where the requests went: what keeps the orders from going out at the limit when the
    # reads of the same endpoints' budgets are many.
    counts = Counter(e["path"] for e in everything)
    per_path: dict[str, dict[str, Any]] = {
        path.removeprefix(API): {"max_per_1s": len(stamps), "limit_per_s": limit_of(path),
                                 "requests": counts[path]}
        for path, stamps in sorted(most.items())}
    for path, stamps in most.items():
        if len(stamps) > limit_of(path):  # how the busiest window's requests were spaced
            per_path[path.removeprefix(API)]["busiest_window_ms"] = [
                round((s - stamps[0]) / 1e6, 1) for s in stamps]
    over = {p: v for p, v in per_path.items() if v["max_per_1s"] > v["limit_per_s"]}
    # A trade that ended without an order by its own rules is not lost (the budget only
    # delayed it, past the alert's maximum age for example): counted and explained apart.
    lost, doubled = max(t.lost - ended, 0), t.doubled_workflows + t.doubled_orders
    place = per_path.get("trade/place_order", {"max_per_1s": 0, "limit_per_s": 10})
    last_s = (t.last_order_ns - acks_sent) / 1e9 if t.last_order_ns else None
    rows = [
        Row("requests refused for rate (10005/10006)", str(refused), "0",
            "met" if refused == 0 else "MISSED"),
        Row("place_order: most requests in any 1 s window / limit",
            f"{place['max_per_1s']} / {place['limit_per_s']}", "≤ limit",
            "met" if place["max_per_1s"] <= place["limit_per_s"] else "MISSED"),
        Row("endpoints over their limit in some 1 s window", str(len(over)), "0",
            "met" if not over else "MISSED"),
        Row("orders lost / doubled (of the alerts answered 202)",
            f"{lost} / {doubled} (of {accepted})", "0 / 0",
            "met" if lost == doubled == 0 else "MISSED"),
        Row("trades ended without an order by their own rules (reasons in the details)",
            str(ended)),
        Row("place_orders accepted by the exchange (every alert's, answered 202 or not)",
            str(sum(1 for e in everything
                    if e["path"] == PLACE_ORDER and e["code"] == 0))),
        Row("last order after the first alert",
            f"{last_s:.1f} s" if last_s is not None else "–"),
        Row("CPU of the processes that sign during the run (s)",
            ", ".join(f"{k}: {v}" for k, v in cpu.items())),
    ]
    return Outcome(
        name="two_workers",
        title="7. Two workers, one account's request budget (BitUnix's real limits)",
        rows=rows,
        details={"refused_for_rate": refused, "refused_by_endpoint": dict(refused_by_path),
                 "endpoints": per_path, "over_limit": over, "accepted": accepted,
                 "lost": lost, "doubled": doubled, "requests": len(everything),
                 "ended_without_order": ended, "refusal_reasons": reasons,
                 "last_order_s": round(last_s, 3) if last_s is not None else None,
                 "worker_cpu_s": cpu},
        notes=["a second `tradewire worker` (default share 1) beside `tradewire up`'s worker "
               "(0.7) and fast-path webhook (0.3): per-process budgets would allow 2× the "
               "account's limits; the paper exchange's and the client's limits unscaled; the "
               "candle close's 200 open alerts within 1 s over 20 symbols; windows counted on "
               "the exchange's receive stamps, refused requests included; lost and doubled "
               "counted over the alerts answered 202 (bench/burst.py tally)"],
    )
