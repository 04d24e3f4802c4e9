"""One exit alert closing many open trades (issue 24, deliverable 4): a strategy with TRADES
open trades on one symbol gets ONE exit alert, and every trade must close its own quantity,
all within TARGET_S.

On a stack of its own (limits raised, bench/limits.py), ROUNDS times: open TRADES trades of one
strategy on SYMBOL (market, SIZE each) and wait until all are TRACKING; send the exit alert
and measure from its send to
- the last close order the paper exchange received (its request log, its own clock), and
- the last trade CLOSED in the database (polled);
then check from the trade and order rows that each trade closed exactly what it had opened,
with its own exit orders, and that the exchange holds no position on the symbol.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import text

from bench.alerts import (
    PLACE_ORDER,
    AlertPoster,
    BenchFailure,
    BenchStrategy,
    add_strategy,
    close_body,
    leg_of,
    open_body,
)
from bench.limits import BenchLimits
from bench.memory import _children, stack_processes
from bench.paper_admin import PaperAdmin
from bench.report import Outcome, Row
from bench.stack import Stack, full_stack
from bench.stackdb import database_url, fetch
from bench.stats import summary, verdict
from db.session import make_engine
from trading.ids import LEG_EXIT

TRADES = 50
QUICK_TRADES = 10
ROUNDS = 3
QUICK_ROUNDS = 1
SYMBOL = "BTCUSDT"
SIZE = "0.001"
TARGET_S = 2.0  # every trade CLOSED within this of the exit alert's send
OPEN_CONCURRENCY = 10
OPEN_WAIT_S = 60.0
CLOSE_WAIT_S = 60.0
POLL_S = 0.02
ANSWER_TIMEOUT_S = 30.0
SETTLED = {"TRACKING", "CLOSED", "CANCELLED", "FAILED", "REFUSED"}  # past the entry
NOT_OPENED = {"CANCELLED", "FAILED", "REFUSED"}


@dataclass(frozen=True)
class TradeBook:
    """One trade's quantities as its rows record them."""

    trade_id: int
    status: str
    filled_qty: Decimal  # the trade row's
    closed_qty: Decimal  # the trade row's
    entry_filled: Decimal  # the sum of its entry orders' fills
    exit_filled: Decimal  # the sum of its exit orders' fills


def misbooked(books: list[TradeBook]) -> list[str]:
    """Why a trade did not close exactly its own quantity (empty: every one did): it is not
    CLOSED, its row's closed quantity differs from its filled quantity, or its own exit orders
    filled more or less than its entry orders."""
    wrong = []
    for b in books:
        if b.status != "CLOSED":
            wrong.append(f"trade #{b.trade_id}: {b.status}")
        elif b.filled_qty <= 0 or b.closed_qty != b.filled_qty:
            wrong.append(f"trade #{b.trade_id}: filled {b.filled_qty}, closed {b.closed_qty}")
        elif b.exit_filled != b.entry_filled or b.entry_filled != b.filled_qty:
            wrong.append(f"trade #{b.trade_id}: entry orders filled {b.entry_filled}, "
                         f"exit orders {b.exit_filled}, the row {b.filled_qty}")
    return wrong


def _cpu_s(pid: int) -> float:  # float-ok: seconds
    """User + system CPU seconds of one process so far (0 once it is gone)."""
    try:
        fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _tree(pid: int) -> list[int]:
    out = [pid]
    for child in _children(pid):
        out += _tree(child)
    return out


def cpu_snapshot(stack: Stack) -> dict[str, float]:
    """CPU seconds so far by role: webhook, worker, Temporal, paper exchange, and PostgreSQL
    (with `tradewire up` itself: the rest of its process tree)."""
    if stack.up is None:
        return {}
    roles = {role: sum(_cpu_s(p) for p in _tree(pid))
             for role, pid in stack_processes(stack).items()}
    everything = sum(_cpu_s(p) for p in _tree(stack.up.pid))
    roles["postgresql and up"] = max(0.0, everything - sum(roles.values()))
    return roles


def cpu_used(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {role: round(after[role] - before.get(role, 0.0), 2) for role in after}


@dataclass
class Round:
    trades: int
    answer_status: int
    answer_closing: int  # trades the exit alert's answer lists
    ack_ms: float  # float-ok: milliseconds
    last_order_s: float | None  # float-ok: seconds; None: no close order seen
    closed_s: float | None  # float-ok: seconds; None: not all CLOSED within CLOSE_WAIT_S
    close_orders: int
    wrong: list[str] = field(default_factory=list)
    position_left: str | None = None  # the exchange's position qty on the symbol, if any
    cpu_s: dict[str, float] = field(default_factory=dict)  # by process, alert → all CLOSED
    not_opened: int = 0  # opens that ended before TRACKING (refused under load): left out


def outcome(rounds: list[Round], trades: int) -> Outcome:
    closed = [r.closed_s for r in rounds if r.closed_s is not None]
    last = [r.last_order_s for r in rounds if r.last_order_s is not None]
    unclosed = len(rounds) - len(closed)
    wrong = [w for r in rounds for w in r.wrong]
    left = [r.position_left for r in rounds if r.position_left is not None]
    cpu = [sum(r.cpu_s.values()) * 1000 / r.trades for r in rounds if r.cpu_s]
    by_role: dict[str, float] = {}
    for r in rounds:
        for role, used in r.cpu_s.items():
            by_role[role] = by_role.get(role, 0.0) + used * 1000 / r.trades / len(rounds)
    closed_ms = summary([s * 1000 for s in closed])
    last_ms = summary([s * 1000 for s in last])
    details: dict[str, Any] = {
        "trades": trades,
        "rounds": len(rounds),
        "closed_s": {k: round(v / 1000, 3) if k != "n" else v for k, v in closed_ms.items()},
        "last_order_s": {k: round(v / 1000, 3) if k != "n" else v for k, v in last_ms.items()},
        "rounds_not_all_closed": unclosed,
        "cpu_ms_per_closed_trade": round(sum(cpu) / len(cpu), 1) if cpu else None,
        "cpu_ms_per_closed_trade_by_process": {k: round(v, 1) for k, v in by_role.items()},
        "misbooked": wrong[:20],
        "positions_left": left,
        "per_round": [r.__dict__ for r in rounds],
    }
    out = Outcome(name="close_many", title=f"4e. One exit alert closing {trades} open trades",
                  details=details)
    if not closed:
        out.rows.append(Row("exit alert → last trade CLOSED", f"none of {len(rounds)} rounds "
                            f"closed all {trades} within {CLOSE_WAIT_S:.0f} s",
                            f"≤ {TARGET_S:g} s", "MISSED"))
    else:
        p50, worst = closed_ms["p50"] / 1000, closed_ms["max"] / 1000
        worst_verdict = verdict(worst, TARGET_S) if not unclosed else "MISSED"
        out.rows.append(Row("exit alert → last trade CLOSED p50 / max "
                            f"({len(rounds)} rounds)", f"{p50:.2f} s / {worst:.2f} s",
                            f"≤ {TARGET_S:g} s", worst_verdict))
    if last:
        out.rows.append(Row("exit alert → last close order at the exchange p50 / max",
                            f"{last_ms['p50'] / 1000:.2f} s / {last_ms['max'] / 1000:.2f} s"))
    if cpu:
        parts = ", ".join(f"{role} {v:.0f}" for role, v in sorted(by_role.items(),
                                                                   key=lambda kv: -kv[1]))
        out.rows.append(Row("CPU per closed trade, all processes (alert → all CLOSED)",
                            f"{sum(cpu) / len(cpu):.0f} ms ({parts})"))
    out.rows.append(Row("trades not closing exactly their own quantity; positions left",
                        f"{len(wrong)}; {len(left)}", "0; 0",
                        "met" if not wrong and not left and not unclosed else "MISSED"))
    not_opened = sum(r.not_opened for r in rounds)
    if not_opened:
        out.notes.append(f"{not_opened} open(s) ended before TRACKING (refused under load): "
                         "those rounds closed the others")
    if unclosed:
        out.notes.append(f"{unclosed} round(s) did not close all {trades} trades within "
                         f"{CLOSE_WAIT_S:.0f} s")
    out.notes.append("CPU: user + system seconds of each process of the stack (and its "
                     "children) from the exit alert's send until all were CLOSED, per trade; "
                     "robust to other load on the machine, unlike the times")
    out.notes.append(f"{trades} market trades of one strategy on {SYMBOL} ({SIZE} each), all "
                     "TRACKING, then one exit alert; times from the alert's send (the exchange's "
                     "request log and the database, both on this machine's clock)")
    return out


async def _books(stack: Stack, strategy: str) -> list[TradeBook]:
    rows = await fetch(stack, (
        "SELECT t.id, t.status, t.filled_qty, t.closed_qty, "
        "coalesce(sum(o.filled_qty) FILTER (WHERE o.leg = 'entry'), 0), "
        "coalesce(sum(o.filled_qty) FILTER (WHERE o.leg = 'exit'), 0) "
        'FROM trade t JOIN strategy s ON s.id = t.strategy_id '
        'LEFT JOIN "order" o ON o.trade_id = t.id '
        "WHERE s.name = :name GROUP BY t.id ORDER BY t.id"
    ), {"name": strategy})
    return [TradeBook(int(i), str(st), Decimal(f), Decimal(c), Decimal(e), Decimal(x))
            for i, st, f, c, e, x in rows]


async def _wait_all(stack: Stack, strategy: str, statuses: set[str], count: int,
                    timeout_s: float) -> tuple[int | None, Counter[str]]:  # float-ok: seconds
    """Poll until `count` trades of the strategy have one of `statuses`: (time.time_ns() when
    it was seen, or None after `timeout_s`; the statuses last seen)."""
    engine = make_engine(database_url(stack), pool_size=1)
    t0 = time.monotonic()
    seen: Counter[str] = Counter()
    try:
        async with engine.connect() as conn:
            while True:
                rows = await conn.execute(text(
                    "SELECT t.status, count(*) FROM trade t JOIN strategy s "
                    "ON s.id = t.strategy_id WHERE s.name = :name GROUP BY t.status"
                ), {"name": strategy})
                seen = Counter({str(s): int(n) for s, n in rows})
                await conn.rollback()  # a fresh snapshot for the next poll
                if sum(n for st, n in seen.items() if st in statuses) >= count:
                    return time.time_ns(), seen
                if time.monotonic() - t0 > timeout_s:
                    return None, seen
                await asyncio.sleep(POLL_S)
    finally:
        await engine.dispose()


async def _position_left(admin: PaperAdmin) -> str | None:
    state = await admin.state()
    held = [p["qty"] for p in state["positions"] if p["symbol"] == SYMBOL
            and Decimal(p["qty"]) != 0]
    return ", ".join(held) if held else None


async def one_round(stack: Stack, limits: BenchLimits, trades: int, k: int) -> Round:
    run = uuid.uuid4().hex[:6]
    name = f"bench-close-{run}"
    strategy: BenchStrategy = await asyncio.to_thread(
        add_strategy, stack, name, rate_limit_per_min=limits.webhook_rate_limit_per_min,
        size=SIZE)
    admin = PaperAdmin(stack.exchange_url)
    poster = AlertPoster(stack.webhook_url, connections=OPEN_CONCURRENCY,
                         timeout_s=ANSWER_TIMEOUT_S)
    try:
        gate = asyncio.Semaphore(OPEN_CONCURRENCY)

        async def open_one(i: int) -> int:
            async with gate:
                return (await poster.post(open_body(strategy, SYMBOL, f"{run}-{i}"))).status

        answers = Counter(await asyncio.gather(*(open_one(i) for i in range(trades))))
        if answers[202] != trades:
            raise BenchFailure(f"round {k}: opens answered {dict(answers)}")
        waited, seen = await _wait_all(stack, name, SETTLED, trades, OPEN_WAIT_S)
        if waited is None or not seen["TRACKING"]:
            raise BenchFailure(f"round {k}: not all {trades} past their entry after "
                               f"{OPEN_WAIT_S:.0f} s: {dict(seen)}")
        # An open the stack refused under load (an alert too old by then, say) is left out:
        # the exit closes the others, and the report says how many.
        tracking = seen["TRACKING"]
        await asyncio.sleep(1.0)  # the entries' last requests settle before the clock starts
        cpu_before = cpu_snapshot(stack)
        sent_ns = time.time_ns()
        ack = await poster.post(close_body(strategy, SYMBOL, f"{run}-exit"))
        closed_ns, seen = await _wait_all(stack, name, {"CLOSED"}, tracking, CLOSE_WAIT_S)
        cpu = cpu_used(cpu_before, cpu_snapshot(stack))
        log = await admin.requests(since_ns=sent_ns)
        closes = [e["t_ns"] for e in log
                  if e["path"] == PLACE_ORDER and leg_of(e["client_id"]) == LEG_EXIT]
        # The database is polled: the closing time is the one seen at most POLL_S late.
        books = await _books(stack, name)
        return Round(
            trades=tracking, not_opened=trades - tracking, answer_status=ack.status,
            answer_closing=len(ack.body.get("closing", [])), ack_ms=round(ack.ack_ms, 1),
            last_order_s=round((max(closes) - sent_ns) / 1e9, 3) if closes else None,
            closed_s=None if closed_ns is None else round((closed_ns - sent_ns) / 1e9, 3),
            close_orders=len(closes), wrong=misbooked([b for b in books if b.entry_filled > 0
                                                       or b.status not in NOT_OPENED]),
            position_left=await _position_left(admin), cpu_s=cpu,
        )
    finally:
        await poster.aclose()
        await admin.aclose()


async def measure(limits: BenchLimits, work: Path, *, trades: int, rounds: int,
                  progress: Any = None) -> Outcome:
    # full_stack picks every port `up` opens, the dashboard's included.
    async with full_stack(limits, work / "close_many", fast_path=True) as stack:
        done = []
        for k in range(rounds):
            done.append(await one_round(stack, limits, trades, k))
            if progress is not None:
                progress(f"  round {k + 1}: {done[-1].closed_s} s to all CLOSED, last close "
                         f"order {done[-1].last_order_s} s")
    return outcome(done, trades)
