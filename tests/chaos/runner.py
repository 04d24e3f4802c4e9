"""Executes one generated run (tests/chaos/scenario.py) against the long-lived stack, waits for
quiet, checks the books (tests/chaos/checks.py), then ends the run's trades so the next run
starts clean. The tally adds the runs up."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
from sqlalchemy import select, update
from temporalio.service import RPCError

from activities.incidents import WorkingOrder, orphan_orders, quantity_mismatches
from activities.records import Records
from activities.watcher import FillWindow, WatcherActivities
from db.models import Incident, Strategy, Trade
from db.models import Order as OrderRowModel
from exchange.errors import ExchangeError
from tests.chaos.checks import (
    FINAL_STATUSES,
    ExchangeOrder,
    OrderRow,
    TradeRow,
    doubled_orders,
    stuck_trades,
    unnamed,
)
from tests.chaos.scenario import (
    Alert,
    AlertStep,
    Fault,
    FaultStep,
    Move,
    PriceStep,
    Redeliver,
    Run,
    When,
)
from tests.chaos.stack import ChaosStack
from trading.ids import PREFIX as TRADEWIRE_PREFIX
from trading.types import OPEN_TRADE_STATUSES, IncidentStatus, PositionMode
from workflows.messages import CancelRequest, TradeMessages

QUIET_S = 120.0  # a trade not final or TRACKING this long after the last fault ended is stuck
CLEANUP_S = 90.0  # a trade not final this long after it was told to cancel and flatten is stuck
SETTLING_READS = 4  # a difference must survive this many reads 1 s apart (fills in flight)
LASTING_S = 20.0  # ... and then this long to count (longer than a killed webhook's trades wait)
POLL_S = 0.5
MODE_SETTLE_S = 2.0
DELIVERY_TIMEOUT_S = 10.0
# Start prices (paper/data/tickers.json): each run starts its symbol there.
START_PRICES = {
    "BTCUSDT": Decimal("95000"), "ETHUSDT": Decimal("3412.55"), "SOLUSDT": Decimal("187.245"),
    "DOGEUSDT": Decimal("0.18234"), "XRPUSDT": Decimal("2.3121"), "SUIUSDT": Decimal("3.6012"),
}
STRATEGY = {
    "size_usdt": Decimal(100),
    "chase_interval_s": Decimal(1),
    "max_chases": 3,
    "tracking_interval_s": 2,
    "max_alert_age_s": 60,
    "rate_limit_per_min": 10_000,
}
# The paper exchange's lag faults (paper/faults.py) of each kind of VISIBILITY_LAG.
LAGS = {
    "orders": ("visibility_delay_ms",),
    "positions": ("position_lag_ms",),
    "tpsl": ("tpsl_history_delay_ms", "tpsl_fill_delay_ms"),
}
INTENT_FIELDS = {
    Alert.OPEN_LONG: ("buy", "long", "flat"),
    Alert.OPEN_SHORT: ("sell", "short", "flat"),
    Alert.CLOSE_LONG: ("sell", "flat", "long"),
    Alert.CLOSE_SHORT: ("buy", "flat", "short"),
    Alert.REVERSE_TO_LONG: ("buy", "long", "short"),
    Alert.REVERSE_TO_SHORT: ("sell", "short", "long"),
}


@dataclass
class Outcome:
    seed: int
    symbol: str
    faults: Counter[str] = field(default_factory=Counter)
    deliveries: Counter[str] = field(default_factory=Counter)
    statuses: Counter[str] = field(default_factory=Counter)
    answers: Counter[str] = field(default_factory=Counter)  # the exchange's non-zero codes
    bit: Counter[str] = field(default_factory=Counter)  # answers a counted fault took
    # Raised by the running watcher during the run (settle 10 s), each "kind symbol side: how
    # long it lasted": transient differences, reported, not failures.
    incidents: list[str] = field(default_factory=list)
    differences: dict[str, str] = field(default_factory=dict)  # at quiet, fingerprint → detail
    transient: dict[str, str] = field(default_factory=dict)  # at quiet, gone within LASTING_S
    unnamed: dict[str, str] = field(default_factory=dict)  # ... that no open incident names
    leftovers: dict[str, str] = field(default_factory=dict)  # after every trade ended
    doubled: list[str] = field(default_factory=list)
    stuck: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    wall_s: float = 0.0  # float-ok: a duration, not money

    @property
    def ok(self) -> bool:
        return not (self.unnamed or self.leftovers or self.doubled or self.stuck)

    def as_json(self) -> dict[str, Any]:
        return {
            "seed": self.seed, "symbol": self.symbol, "ok": self.ok,
            "faults": dict(self.faults), "deliveries": dict(self.deliveries),
            "statuses": dict(self.statuses), "answers": dict(self.answers), "bit": dict(self.bit),
            "incidents": self.incidents,
            "differences": self.differences, "transient": self.transient,
            "unnamed": self.unnamed, "leftovers": self.leftovers, "doubled": self.doubled,
            "stuck": self.stuck, "notes": self.notes, "wall_s": round(self.wall_s, 1),
        }


@dataclass
class Tally:
    runs: int = 0
    failed_seeds: list[int] = field(default_factory=list)
    faults: Counter[str] = field(default_factory=Counter)
    deliveries: Counter[str] = field(default_factory=Counter)
    statuses: Counter[str] = field(default_factory=Counter)
    answers: Counter[str] = field(default_factory=Counter)
    bit: Counter[str] = field(default_factory=Counter)
    incidents: Counter[str] = field(default_factory=Counter)
    differences: int = 0
    transient: int = 0
    unnamed: int = 0
    leftovers: int = 0
    doubled: int = 0
    stuck: int = 0
    wall_s: float = 0.0  # float-ok: a duration, not money

    def add(self, o: Outcome) -> None:
        self.runs += 1
        self.faults.update(o.faults)
        self.deliveries.update(o.deliveries)
        self.statuses.update(o.statuses)
        self.answers.update(o.answers)
        self.bit.update(o.bit)
        self.incidents.update(i.split(" ")[0] for i in o.incidents)
        self.differences += len(o.differences)
        self.transient += len(o.transient)
        self.unnamed += len(o.unnamed)
        self.leftovers += len(o.leftovers)
        self.doubled += len(o.doubled)
        self.stuck += len(o.stuck)
        self.wall_s += o.wall_s
        if not o.ok:
            self.failed_seeds.append(o.seed)

    def lines(self) -> list[str]:
        return [
            f"runs {self.runs} in {self.wall_s:.0f} s; failed seeds {self.failed_seeds}",
            "faults injected: " + ", ".join(f"{k} {v}" for k, v in sorted(self.faults.items())),
            "answers they took (placements dropped, requests faulted): "
            + ", ".join(f"{k} {v}" for k, v in sorted(self.bit.items())),
            "deliveries: " + ", ".join(f"{k} {v}" for k, v in sorted(self.deliveries.items())),
            "trades: " + ", ".join(f"{k} {v}" for k, v in sorted(self.statuses.items())),
            "exchange answers other than 0 (code or HTTP status): "
            + ", ".join(f"{k} {v}" for k, v in sorted(self.answers.items())),
            "incidents the running watcher raised and resolved during runs: "
            + ", ".join(f"{k} {v}" for k, v in sorted(self.incidents.items())),
            f"invariant differences at quiet {self.differences} (named by no incident: "
            f"{self.unnamed}; and {self.transient} more gone by themselves within "
            f"{LASTING_S:.0f} s); left after every trade ended {self.leftovers}; "
            f"doubled orders {self.doubled}; stuck trades {self.stuck}",
        ]


class Runner:
    def __init__(self, stack: ChaosStack) -> None:
        self.stack = stack
        self.records = Records(stack.sessionmaker)
        self._undo: list[asyncio.Task[None]] = []
        self._bit: Counter[str] = Counter()  # this run's placements dropped, requests faulted

    # --- one run ------------------------------------------------------------------------------

    async def run(self, run: Run) -> Outcome:
        """Play the run, wait for quiet, judge it, end its trades (and judge that too)."""
        began = time.monotonic()
        began_ms = time.time_ns() // 1_000_000 - 1000
        out = Outcome(run.seed, run.symbol)
        await self.stack.restore()
        since_ns = time.time_ns()
        await self._position_mode(PositionMode.HEDGE if run.hedge else PositionMode.ONE_WAY)
        strategy = await self._play(run, out)
        await self._faults_over()
        out.bit, self._bit = self._bit, Counter()
        await self.stack.restore()
        if any(f.fault is Fault.SYMBOL_STOP for f in run.faults):
            await self.stack.resync_pairs()
        trades = await self._quiet(run.symbol, strategy)
        out.statuses.update(t.status for t in trades)
        out.stuck = stuck_trades(trades)
        out.differences, out.transient = await self._lasting(await self._differences())
        if out.differences:
            out.unnamed = await self._unnamed(out.differences)
        out.doubled = await self._doubled(strategy, began_ms)
        out.incidents = await self._incidents_since(began_ms)
        out.answers = Counter(str(r["code"]) for r in await self.stack.paper.admin.requests(
            since_ns) if str(r["code"]) != "0")
        ended = await self._end_all()
        out.stuck += stuck_trades(ended, FINAL_STATUSES)
        out.leftovers = await self._differences()
        if out.stuck or out.leftovers:
            out.notes.append(await self._evidence(strategy))
            await self._force_clean()
        out.wall_s = time.monotonic() - began
        return out

    async def _play(self, run: Run, out: Outcome) -> str:
        """Send the run's steps, for a new strategy of its own; returns the strategy's name.
        Faults land (and are undone) in the background while the steps go on."""
        name, secret = await self.stack.add_strategy(**STRATEGY)
        price = await self.stack.paper.admin.set_price(run.symbol, START_PRICES[run.symbol])
        bodies: list[dict[str, Any]] = []
        last_time: datetime | None = None
        async with httpx.AsyncClient(timeout=DELIVERY_TIMEOUT_S) as http:
            for step in run.steps:
                await asyncio.sleep(float(step.gap_s))  # float-ok: a duration, not money
                if isinstance(step, AlertStep):
                    last_time = _alert_time(step.when, last_time)
                    bodies.append(_body(step, name, secret, run.symbol, price, last_time))
                    out.deliveries[await self._deliver(http, bodies[-1])] += 1
                elif isinstance(step, Redeliver):
                    times = 2 if step.concurrent else 1
                    answers = await asyncio.gather(*(self._deliver(http, bodies[step.index])
                                                     for _ in range(times)))
                    out.deliveries.update(f"again {a}" for a in answers)
                elif isinstance(step, PriceStep):
                    price = await self._move(run.symbol, step, price)
                else:
                    out.faults[step.fault.value] += 1
                    self._later(float(step.offset_s),  # float-ok: a duration, not money
                                lambda f=step: self._fault(f, run.symbol))
        return name

    async def _deliver(self, http: httpx.AsyncClient, body: dict[str, Any]) -> str:
        """One delivery as TradingView makes it: no retry; what came back, in a word."""
        try:
            response = await http.post(self.stack.webhook.url + "/webhook/tradingview",
                                       content=json.dumps(body))
        except httpx.HTTPError as exc:
            return f"no answer ({type(exc).__name__})"
        return str(response.status_code)

    async def _move(self, symbol: str, step: PriceStep, price: Decimal) -> Decimal:
        if step.move is Move.PRICE:
            return await self.stack.paper.admin.move(symbol, step.bps)
        return await self._cross_entries(symbol) or price

    async def _cross_entries(self, symbol: str) -> Decimal | None:
        """Set the price onto the resting entry orders nearest to it, once: with partial fills
        on, each of them fills half (the next cross fills the rest)."""
        entries = [o for o in await self._working(symbol) if not o.reduce_only]
        if not entries:
            return None
        buys = [o.price for o in entries if o.side.value == "BUY" and o.price is not None]
        sells = [o.price for o in entries if o.side.value == "SELL" and o.price is not None]
        target = max(buys) if buys else min(sells) if sells else None
        if target is None:
            return None
        return await self.stack.paper.admin.set_price(symbol, target)

    async def _working(self, symbol: str | None = None) -> list[Any]:
        """The working Tradewire orders (every page), read as the watcher reads them."""
        out: list[Any] = []
        skip = 0
        while True:
            page = await _retrying(lambda s=skip: self.stack.exchange.pending_orders(
                symbol, skip=s, limit=100))
            out += [o for o in page if (o.client_id or "").startswith(TRADEWIRE_PREFIX)]
            if len(page) < 100:
                return out
            skip += 100

    # --- faults ---------------------------------------------------------------------------------

    async def _fault(self, step: FaultStep, symbol: str) -> None:
        stack, admin = self.stack, self.stack.paper.admin
        hold = float(step.hold_s)  # float-ok: a duration, not money
        if step.fault is Fault.KILL_WORKER:
            if stack.worker_alive():
                await asyncio.to_thread(stack.kill_worker)
            self._later(hold, stack.start_worker)
        elif step.fault is Fault.KILL_WEBHOOK:
            if stack.webhook_alive():
                await asyncio.to_thread(stack.kill_webhook)
            self._later(hold, stack.start_webhook)
        elif step.fault is Fault.RESTART_TEMPORAL:
            await asyncio.to_thread(stack.stop_temporal)
            self._later(hold, stack.start_temporal)
        elif step.fault in (Fault.DROP_ANSWER, Fault.FIVEXX_AFTER_ACCEPT):
            mode = "hang" if step.fault is Fault.DROP_ANSWER else "http_504"
            await admin.faults(drop_response={"target": step.target, "count": step.count,
                                              "mode": mode})

            async def undo_drop() -> None:
                left = (await admin.faults())["drop_count"]
                self._bit[step.fault.value] += step.count - left
                await admin.faults(drop_response={"target": step.target, "count": 0,
                                                  "mode": mode})
            self._later(hold, undo_drop)
        elif step.fault is Fault.TRANSPORT_5XX:
            kind = "http_5xx" if step.count % 2 else "network_error"
            await admin.faults(**{kind: step.count})

            async def undo_transport() -> None:
                self._bit[step.fault.value] += step.count - (await admin.faults())[kind]
                await admin.faults(**{kind: 0})
            self._later(hold, undo_transport)
        elif step.fault is Fault.VISIBILITY_LAG:
            fields = LAGS[step.lagging]
            await admin.faults(**dict.fromkeys(fields, step.lag_ms))
            self._later(hold, lambda: admin.faults(**dict.fromkeys(fields, 0)))
        elif step.fault is Fault.SYMBOL_STOP:
            await admin.symbol_status(symbol, "STOP")
            self._later(hold, lambda: admin.symbol_status(symbol, "OPEN"))

    def _later(self, delay_s: float, action: Any) -> None:  # float-ok: a duration, not money
        """`action` after `delay_s`, while the run goes on (a fault landing, or its undoing)."""
        async def after() -> None:
            await asyncio.sleep(delay_s)
            await action()
        self._undo.append(asyncio.create_task(after()))

    async def _faults_over(self) -> None:
        """Every fault landed and undone (a fault's undoing is scheduled when it lands)."""
        while self._undo:
            task = self._undo.pop(0)
            with contextlib.suppress(Exception):  # restore() after this starts what did not
                await task

    async def _position_mode(self, mode: PositionMode) -> None:
        """The run's position mode, set while the account is flat. Readers of the account keep
        it for about a second (activities/venue_reads.py): the run starts after that."""
        state = await self.stack.paper.admin.state()
        if state["positionMode"] == mode.value:
            return
        await _retrying(lambda: self.stack.exchange.change_position_mode(mode))
        await asyncio.sleep(MODE_SETTLE_S)

    # --- after the run --------------------------------------------------------------------------

    async def _trades(self, strategy: str | None = None) -> list[TradeRow]:
        query = select(Trade.id, Trade.workflow_id, Trade.status, Trade.target_qty,
                       Trade.filled_qty, Trade.closed_qty)
        if strategy is not None:
            query = query.join(Strategy, Strategy.id == Trade.strategy_id).where(
                Strategy.name == strategy)
        else:
            query = query.where(Trade.status.in_(OPEN_TRADE_STATUSES))
        async with self.stack.sessionmaker() as session:
            rows = (await session.execute(query.order_by(Trade.id))).all()
        return [TradeRow(*row) for row in rows]

    async def _quiet(self, symbol: str, strategy: str) -> list[TradeRow]:
        """Wait until every trade of the run is final or TRACKING with no working entry order
        (a resting entry is crossed, twice for its two partial fills); the trades then."""
        deadline = time.monotonic() + QUIET_S
        while True:
            trades = await self._trades(strategy)
            resting = [o for o in await self._working(symbol) if not o.reduce_only]
            if not resting and not stuck_trades(trades):
                return trades
            if time.monotonic() > deadline:
                return trades
            if resting:
                await self._cross_entries(symbol)
            await asyncio.sleep(POLL_S)

    async def _read_differences(self) -> dict[str, str]:
        positions = await _retrying(self.stack.exchange.pending_positions)
        held = {(p.symbol, p.side): p.qty for p in positions if p.qty > 0}
        working = [w for o in await self._working() if (w := WorkingOrder.of(o)) is not None]
        owned = await self.records.owned_quantities()
        trades = await self.records.order_trades(w.client_id for w in working)
        found = [*quantity_mismatches(held, owned), *orphan_orders(working, trades)]
        return {m.fingerprint: m.detail for m in found}

    async def _differences(self) -> dict[str, str]:
        """The invariant's differences that last SETTLING_READS reads (fills in flight move)."""
        found = await self._read_differences()
        for _ in range(SETTLING_READS - 1):
            if not found:
                return found
            await asyncio.sleep(1)
            again = await self._read_differences()
            found = {fp: d for fp, d in again.items() if found.get(fp) == d}
        return found

    async def _lasting(self, found: dict[str, str]) -> tuple[dict[str, str], dict[str, str]]:
        """Split the differences found at quiet into those still there after LASTING_S and
        those that went by themselves (a trade still catching up, e.g. on the main worker
        after the webhook that ran it was killed), each with how long it lasted."""
        began = time.monotonic()
        lasting = dict(found)
        gone: dict[str, str] = {}
        while lasting and time.monotonic() - began < LASTING_S:
            await asyncio.sleep(1)
            now = await self._read_differences()
            for fp in [fp for fp in lasting if fp not in now]:
                gone[fp] = f"{lasting.pop(fp)} (gone by itself {time.monotonic() - began:.0f} s later)"
        return lasting, gone

    async def _incidents_since(self, since_ms: int) -> list[str]:
        since = datetime.fromtimestamp(since_ms / 1000, tz=UTC)
        async with self.stack.sessionmaker() as session:
            rows = (await session.execute(
                select(Incident.kind, Incident.symbol, Incident.side, Incident.first_seen,
                       Incident.last_seen).where(Incident.first_seen >= since)
                .order_by(Incident.id))).all()
        return [f"{k} {sym} {side or ''}: {(last - first).total_seconds():.1f} s"
                for k, sym, side, first, last in rows]

    async def _unnamed(self, differences: dict[str, str]) -> dict[str, str]:
        """Run one watcher round without the settle window (what `tradewire reconcile` does)
        and the differences that no open incident names after it."""
        watcher = WatcherActivities(self.stack.exchange, self.stack.sessionmaker,
                                    self.stack.client, settle_s=Decimal(0))
        await _retrying(lambda: watcher.round(None, FillWindow()))
        async with self.stack.sessionmaker() as session:
            open_fps = (await session.scalars(select(Incident.fingerprint).where(
                Incident.status == IncidentStatus.OPEN.value))).all()
        return unnamed(differences, open_fps)

    async def _doubled(self, strategy: str, since_ms: int) -> list[str]:
        """The exchange's orders since the run began (the paper exchange keeps every order)
        against the `order` rows and this run's trades."""
        trades = await self._trades(strategy)
        async with self.stack.sessionmaker() as session:
            rows = [OrderRow(c, t, leg) for c, t, leg in (await session.execute(
                select(OrderRowModel.client_order_id, OrderRowModel.trade_id, OrderRowModel.leg)
            )).all() if c]
        state = await self.stack.paper.admin.state()
        orders = [ExchangeOrder.of(o) for o in state["orders"]
                  if o["source"] == "api" and int(o["ctime"]) >= since_ms]
        return doubled_orders(orders, rows, trades)

    async def _end_all(self) -> list[TradeRow]:
        """Cancel and flatten every open trade; the trades that were open, as they ended."""
        opened = await self._trades()
        for t in opened:
            with contextlib.suppress(RPCError):
                await self.stack.client.get_workflow_handle(t.workflow_id).signal(
                    TradeMessages.CANCEL, CancelRequest(flatten=True))
        deadline = time.monotonic() + CLEANUP_S
        ids = {t.trade_id for t in opened}
        while True:
            now = [t for t in await self._trades() if t.trade_id in ids]
            if not now or time.monotonic() > deadline:
                break
            await asyncio.sleep(POLL_S)
        async with self.stack.sessionmaker() as session:
            rows = (await session.execute(
                select(Trade.id, Trade.workflow_id, Trade.status, Trade.target_qty,
                       Trade.filled_qty, Trade.closed_qty).where(Trade.id.in_(ids))
            )).all() if ids else []
        return [TradeRow(*r) for r in rows]

    async def _evidence(self, strategy: str) -> str:
        trades = await self._trades(strategy)
        positions = await _retrying(self.stack.exchange.pending_positions)
        working = await self._working()
        wids = [t.workflow_id for t in trades]
        log_lines = []
        for path in self.stack.worker_logs[-3:] + [self.stack.webhook.log_path]:
            if path is None or not path.exists():
                continue
            for line in path.read_text(errors="replace").splitlines():
                if any(w in line for w in wids) or "incident" in line or "UNOWNED" in line:
                    log_lines.append(f"[{path.name}] {line}")
        return "\n".join([
            "trades: " + "; ".join(f"#{t.trade_id} {t.workflow_id} {t.status} target "
                                   f"{t.target_qty} filled {t.filled_qty} closed {t.closed_qty}"
                                   for t in trades),
            "positions: " + "; ".join(f"{p.symbol} {p.side.value} {p.qty}" for p in positions),
            "working: " + "; ".join(f"{o.order_id} {o.client_id} {o.side.value} "
                                    f"{o.remaining_qty}" for o in working),
            *log_lines[-40:],
        ])

    async def _force_clean(self) -> None:
        """After a failed run only: leave the account flat and no trade open, so the runs after
        it are judged on their own (their failure is recorded first)."""
        for t in await self._trades():
            with contextlib.suppress(RPCError):
                await self.stack.client.get_workflow_handle(t.workflow_id).terminate(
                    "chaos: forced clean-up after a failed run")
        async with self.stack.sessionmaker() as session, session.begin():
            await session.execute(update(Trade).where(Trade.status.in_(OPEN_TRADE_STATUSES))
                                  .values(status="CANCELLED", error="chaos: forced clean-up"))
        for o in await self._working():
            with contextlib.suppress(ExchangeError):
                await self.stack.exchange.cancel_orders(o.symbol, order_ids=[o.order_id])
        for p in await _retrying(self.stack.exchange.pending_positions):
            await self.stack.paper.admin.liquidate(p.symbol, p.side.value)


def _alert_time(when: When, previous: datetime | None) -> datetime:
    now = datetime.now(UTC).replace(microsecond=0)
    if previous is None or when is When.NOW:
        return now
    return previous if when is When.SAME_AS_PREVIOUS else previous - timedelta(seconds=1)


def _body(step: AlertStep, strategy: str, secret: str, symbol: str, price: Decimal,
          at: datetime) -> dict[str, Any]:
    action, position, previous = INTENT_FIELDS[step.alert]
    body: dict[str, Any] = {
        "secret": secret, "strategy": strategy, "ticker": f"BITUNIX:{symbol}.P",
        "action": action, "market_position": position, "prev_market_position": previous,
        "alert_id": step.alert_id, "time": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    if position != "flat":
        body |= {"size_usdt": str(step.size_usdt), "order_type": step.order_type}
        if step.order_type == "limit":
            sign = -1 if position == "long" else 1
            body["price"] = str(price * (1 + sign * step.limit_offset_bps / 10_000))
        elif step.order_type == "chase":
            body["price"] = str(price)
        if step.tp_pct is not None:
            body["tp_pct"] = str(step.tp_pct)
        if step.sl_pct is not None:
            body["sl_pct"] = str(step.sl_pct)
    return body


async def _retrying(call: Any, attempts: int = 20) -> Any:
    """The runner's own exchange reads ride out the faults it injected."""
    for n in range(attempts):
        try:
            return await call()
        except ExchangeError:
            if n == attempts - 1:
                raise
            await asyncio.sleep(0.5)

