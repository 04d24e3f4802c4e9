"""Burst: 100 alerts/s for 10 s → ack latencies, and a check that every alert became exactly
one workflow and one order (none lost, none doubled).

Alerts go out on a fixed schedule (alert k at k/rate s), each on its own task, over several
strategies and symbols. Afterwards: Temporal is asked for every workflow the acks named, the
database for each workflow's trade and order rows, and the paper exchange's request log for
the orders it accepted, by client id.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from typing import Any

from bench.alerts import (
    PLACE_ORDER,
    Ack,
    AlertPoster,
    BenchStrategy,
    add_strategy,
    open_body,
)
from bench.limits import BenchLimits
from bench.paper_admin import PaperAdmin
from bench.report import Outcome, Row, ms
from bench.stack import Stack
from bench.stackdb import (
    orders_by_workflow,
    refusal_reasons,
    trade_of_client_ids,
    workflows_exist,
)
from bench.stats import summary

RATE_PER_S = 100
# 10 s are 1,000 alerts: several times what two cores take in at ~150–250 ms of CPU a trade, so
# the overload (answers queueing, orders late) shows as it did over 30 s, in a third of the
# time; issue 24's burst that must be met is the candle close (bench/candle_close.py).
DURATION_S = 10
QUICK_DURATION_S = 5
STRATEGIES = 5
# Market orders of a few minimums each; the symbols spread the per-(strategy, symbol) lock.
SIZES = {"BTCUSDT": "0.001", "ETHUSDT": "0.01", "SOLUSDT": "0.1", "XRPUSDT": "10"}
DRAIN_TIMEOUT_S = 30.0  # after the last answer; later orders count as lost
ANSWER_TIMEOUT_S = 30.0  # an alert not answered by then counts as not accepted (status 0)
SEND_SLACK_S = 15.0  # the schedule may slip this much before the rest is not sent
QUIET_S = 5.0
# A drain that waits for orders which may never come (a lost alert) ends once nothing moved for
# this long: no place_order reached the exchange, accepted or refused. That is longer than any
# quiet spell a live trade has (the first placement's 10 s timeout, then the 30 s in which the
# exchange might still show the attempt, then the re-send), so what has not come by then is
# lost, and waiting out the rest of the drain's timeout would only say so later.
STALL_S = 45.0


async def _answer(poster: AlertPoster, body: dict[str, Any]) -> Ack:
    """The POST, or status 0 when no answer came within ANSWER_TIMEOUT_S (pool wait included)."""
    sent_ns = time.time_ns()
    t0 = time.perf_counter_ns()
    try:
        return await asyncio.wait_for(poster.post(body), ANSWER_TIMEOUT_S)
    except TimeoutError:
        waited = (time.perf_counter_ns() - t0) / 1e6
        return Ack(0, {"transport_error": "no answer in time"}, sent_ns, waited)


async def _send(poster: AlertPoster, bodies: list[dict[str, Any]], rate: int) -> list[Ack]:
    """Each alert on its own task at its scheduled time; once the schedule has slipped by
    SEND_SLACK_S (the machine cannot keep the rate), the rest is not sent."""
    start = time.perf_counter() + 0.1
    tasks = []
    for k, body in enumerate(bodies):
        due = start + k / rate
        now = time.perf_counter()
        if now - due > SEND_SLACK_S:
            break
        if due > now:
            await asyncio.sleep(due - now)
        tasks.append(asyncio.create_task(_answer(poster, body)))
    return list(await asyncio.gather(*tasks))


@dataclass
class Stillness:
    """How long what is observed has not changed (a drain's stall check)."""

    last: Any = None
    since: float = 0.0  # float-ok: monotonic seconds

    def still_for(self, observed: Any, now: float) -> float:  # float-ok: seconds
        if self.last is None or observed != self.last:
            self.last, self.since = observed, now
        return now - self.since


async def _drain(admin: PaperAdmin, since_ns: int, expected: int, *,
                 timeout_s: float = DRAIN_TIMEOUT_S,  # float-ok: seconds
                 stall_s: float | None = None) -> list[dict[str, Any]]:  # float-ok: seconds
    """The exchange's place_orders since `since_ns`, once at least `expected` were accepted and
    none came for QUIET_S (orders from alerts answered 503 may come too), or none came for
    `stall_s` (when given), or the timeout passed (the check then reports what is missing as
    lost)."""
    deadline = time.monotonic() + timeout_s
    stillness = Stillness()
    while True:
        log = [e for e in await admin.requests(since_ns=since_ns) if e["path"] == PLACE_ORDER]
        placed = sum(1 for e in log if e["code"] == 0)
        now = time.monotonic()
        quiet = stillness.still_for((placed, len(log)), now)
        if ((placed >= expected and quiet >= QUIET_S) or now > deadline
                or (stall_s is not None and quiet >= stall_s)):
            return log
        await asyncio.sleep(0.5)


async def measure(stack: Stack, limits: BenchLimits, *, duration_s: int = DURATION_S,
                  rate: int = RATE_PER_S) -> Outcome:
    run = uuid.uuid4().hex[:6]
    strategies = [
        await asyncio.to_thread(add_strategy, stack, f"bench-burst-{run}-{k}",
                                rate_limit_per_min=limits.webhook_rate_limit_per_min,
                                size=SIZES["BTCUSDT"])
        for k in range(STRATEGIES)
    ]
    total = rate * duration_s
    symbols = list(SIZES)
    bodies = []
    for k in range(total):
        strategy: BenchStrategy = strategies[k % STRATEGIES]
        symbol = symbols[(k // STRATEGIES) % len(symbols)]
        body = open_body(strategy, symbol, f"burst-{run}-{k}")
        body["size"] = SIZES[symbol]
        bodies.append(body)
    admin = PaperAdmin(stack.exchange_url)
    poster = AlertPoster(stack.webhook_url, connections=256, timeout_s=ANSWER_TIMEOUT_S)
    since = time.time_ns()
    try:
        acks = await _send(poster, bodies, rate)
        sent_s = (acks[-1].sent_ns - acks[0].sent_ns) / 1e9 if len(acks) > 1 else 0.0
        ok = [a for a in acks if a.status == 202 and "workflow_id" in a.body]
        log = await _drain(admin, since, len(ok))
    finally:
        await poster.aclose()
        await admin.aclose()
    outcome = await _check(stack, acks, ok, log, sent_s, total, rate, duration_s)
    outcome.details["refused_or_failed"] = await refusal_reasons(stack, [s.name for s in strategies])
    return outcome


async def _strays_by_answer(stack: Stack, acks: list[Ack], stray_ids: list[str]
                            ) -> dict[str, int]:
    """Orders of alerts that were not answered 202, by what the alert was answered: a 503
    names its trade (the sender was told it failed); no answer (status 0) names none."""
    if not stray_ids:
        return {}
    told = {int(a.body["trade_id"]): str(a.status) for a in acks
            if a.status != 202 and isinstance(a.body.get("trade_id"), int)}
    by_trade = await trade_of_client_ids(stack, stray_ids)
    out: Counter[str] = Counter()
    for client_id in stray_ids:
        trade = by_trade.get(client_id)
        out[f"answered {told[trade]}" if trade in told else "no answer / unknown"] += 1
    return dict(out)


@dataclass
class Tally:
    """What became of the alerts answered 202: each must name a workflow Temporal knows, with
    exactly one trade row, whose orders the exchange accepted exactly once; and no accepted
    order may come from elsewhere."""

    lost_workflows: int
    doubled_workflows: int
    lost_orders: int
    doubled_orders: int
    bad_trade_rows: int
    strays: int
    strays_by_answer: dict[str, int]
    to_order_ms: list[float]  # each accepted alert's send → its first order's receipt
    last_order_ns: int | None  # the exchange's receipt of the last of those first orders

    @property
    def lost(self) -> int:
        return self.lost_workflows + self.lost_orders

    @property
    def doubled(self) -> int:
        return self.doubled_workflows + self.doubled_orders + self.strays


async def tally(stack: Stack, acks: list[Ack], ok: list[Ack], log: list[dict[str, Any]]
                ) -> Tally:
    workflow_ids = [str(a.body["workflow_id"]) for a in ok]
    exists = await workflows_exist(stack, workflow_ids)
    rows_by_wf = await orders_by_workflow(stack, workflow_ids)
    accepted_by_client = Counter(e["client_id"] for e in log if e["code"] == 0)
    first_order_ns: dict[str, int] = {}
    for e in log:
        if e["code"] == 0 and e["client_id"] not in first_order_ns:
            first_order_ns[e["client_id"]] = e["t_ns"]
    lost_workflows = sum(1 for w in workflow_ids if not exists.get(w))
    doubled_workflows = len(workflow_ids) - len(set(workflow_ids))
    lost_orders = doubled_orders = bad_trade_rows = 0
    ours: set[str] = set()
    to_order_ms = []
    last_order_ns = None
    for ack, wf in zip(ok, workflow_ids, strict=True):
        info = rows_by_wf.get(wf, {"trades": 0, "client_ids": []})
        bad_trade_rows += info["trades"] != 1
        ours.update(info["client_ids"])
        placed = sum(accepted_by_client[c] for c in info["client_ids"])
        lost_orders += placed == 0
        doubled_orders += placed > 1
        times = [first_order_ns[c] for c in info["client_ids"] if c in first_order_ns]
        if times:
            to_order_ms.append((min(times) - ack.sent_ns) / 1e6)
            last_order_ns = max(last_order_ns or 0, min(times))
    stray_ids = [c for c in accepted_by_client if c not in ours]
    strays = sum(accepted_by_client[c] for c in stray_ids)
    return Tally(lost_workflows, doubled_workflows, lost_orders, doubled_orders, bad_trade_rows,
                 strays, await _strays_by_answer(stack, acks, stray_ids), to_order_ms,
                 last_order_ns)


async def _check(stack: Stack, acks: list[Ack], ok: list[Ack], log: list[dict[str, Any]],
                 sent_s: float, total: int, rate: int, duration_s: int) -> Outcome:  # float-ok: seconds
    t = await tally(stack, acks, ok, log)
    lost_workflows, doubled_workflows = t.lost_workflows, t.doubled_workflows
    lost_orders, doubled_orders, bad_trade_rows = t.lost_orders, t.doubled_orders, t.bad_trade_rows
    strays, strays_by_answer, to_order_ms = t.strays, t.strays_by_answer, t.to_order_ms
    statuses = Counter(str(a.status) for a in acks)
    ack = summary(a.ack_ms for a in acks)
    lat = summary(to_order_ms)
    clean = (len(ok) == total == len(acks) and lost_workflows == doubled_workflows == 0
             and lost_orders == doubled_orders == bad_trade_rows == strays == 0)
    return Outcome(
        name="burst",
        title=f"4b. Burst: {rate} alerts/s for {duration_s} s",
        rows=[
            Row("ack p50 / p99", f"{ms(ack['p50'])} / {ms(ack['p99'])}"),
            Row("alerts accepted / sent / scheduled",
                f"{len(ok)} / {len(acks)} / {total}; sent over {sent_s:.1f} s"),
            Row(f"workflows lost / doubled; orders lost (none within {DRAIN_TIMEOUT_S:.0f} s) "
                "/ doubled / from alerts answered as failed",
                f"{lost_workflows} / {doubled_workflows}; {lost_orders} / {doubled_orders} / "
                f"{strays}", "0 / 0; 0 / 0 / 0", "met" if clean else "MISSED"),
            Row("alert → order under the burst p50 / p99", f"{ms(lat['p50'])} / {ms(lat['p99'])}"
                if lat.get("n") else "–"),
        ],
        details={
            "alerts_scheduled": total, "alerts_sent": len(acks), "rate_per_s": rate,
            "sent_over_s": round(sent_s, 2),
            "strategies": STRATEGIES, "symbols": list(SIZES),
            "ack_status_counts": dict(statuses), "ack_ms": ack,
            "alert_to_order_ms": lat,
            "workflows_lost": lost_workflows, "workflows_doubled": doubled_workflows,
            "trade_rows_not_exactly_one": bad_trade_rows,
            "orders_lost": lost_orders, "orders_doubled": doubled_orders,
            "orders_not_from_an_accepted_alert": strays,
            "of_which_by_the_alert's_answer": strays_by_answer,
        },
        notes=[
            f"{total} open alerts scheduled at {rate}/s over {STRATEGIES} strategies × "
            f"{len(SIZES)} symbols, each POST on its own task (up to 256 connections); an "
            f"alert not answered within {ANSWER_TIMEOUT_S:.0f} s counts as status 0; once the "
            f"schedule slipped by {SEND_SLACK_S:.0f} s the rest was not sent",
            "alerts answered other than 202 are counted by status (0 = no answer at all) and "
            "make the check fail; lost/doubled: every 202 names a workflow that Temporal "
            "describes; exactly one "
            "trade row per workflow; its order rows' client ids accepted (code 0) exactly once "
            "in the paper exchange's request log; and no accepted order outside these (an "
            "order from an alert answered 503 breaks the check: its sender was told it failed)",
        ],
    )
