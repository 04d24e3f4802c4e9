"""The account watcher: one poll loop per account, whatever the number of open trades.

Each round reads the account's pending positions, open orders and the fills since the last
round (a fixed number of requests: one each, one more per hundred orders or fills), compares
them with the previous round and signals `exchange_changed` only to the trades a change
concerns: the owner of an order that changed, or that filled where the owner has not recorded
the fill itself (a market entry's own fill, which its placement recorded, is no news to it);
every trade on a position that moved
in a way its trades' own fills do not explain (TP/SL fired, liquidation, manual close, gone).
The first round signals every open trade (changes may have happened while nobody watched).
Every round also checks, from the same reads, that the exchange holds what the open trades own
(activities/incidents.py; docs/design.md#the-ownership-invariant), checks today's PnL against
the daily loss limits (activities/daily_loss.py), sends `cancel` to every trade a trading
state must stop and `trading_state` to every trade whose applicable state changed
(docs/design.md#risk). It runs as one long heartbeating activity; when its
worker dies, Temporal starts it again elsewhere.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from activities.contract_tracking import (
    CancelStop,
    Done,
    ExchangeChanged,
    StateNotice,
    WatcherInput,
)
from activities.daily_loss import DailyLossLatch, marks_of
from activities.incidents import OwnershipAudit, WorkingOrder
from activities.records import FillOwner, OpenTrade, Records
from activities.risk import RiskBook
from activities.tracking import CLOCK_MARGIN_MS
from exchange.client import BitunixClient
from exchange.errors import ExchangeError
from exchange.models import Fill
from trading.risk import RiskLimits
from trading.types import IncidentAction, IncidentPolicy, PositionSide, TradeStatus, TradingState

log = logging.getLogger("activities.watcher")
PAGE = 100
MAX_FILL_PAGES = 10  # more fills than that in one round: signal everyone rather than read on
SIGNALS_AT_ONCE = 16
DEFAULT_SETTLE_S = Decimal(10)  # TRADEWIRE_INCIDENT_SETTLE_S
RUN_FOR_S = 50 * 60  # then the workflow continues as new (its history stays small)
CLOCK_LOG_S = 3600  # how often the clock's distance from the exchange's is logged
LIVENESS_S = 30  # how often the open trades are held against Temporal's running workflows
RUNNING_TRADES = f"WorkflowType = '{ExchangeChanged.WORKFLOW}' AND ExecutionStatus = 'Running'"
# Each round reads fills from CLOCK_MARGIN_MS before the last one (exchange and worker clocks
# differ; fills already seen are recognised by id).
Key = tuple[str, PositionSide]


@dataclass(frozen=True)
class AccountView:
    orders: dict[str, tuple[str, Decimal]]  # order id → (status, filled qty)
    positions: dict[Key, tuple[str, Decimal]]  # → (position id, qty)
    ours: tuple[WorkingOrder, ...] = ()  # working orders with a Tradewire client id
    marks: dict[Key, Decimal] = field(default_factory=dict)  # the mark each position implies


@dataclass(frozen=True)
class SeenFill:
    """A fill of the account, with the trade whose order made it (None: no Tradewire order
    explains it: a TP/SL, a liquidation, a manual close, another program's order)."""

    fill_id: str
    ctime_ms: int
    symbol: str
    qty: Decimal
    owner: FillOwner | None
    # Its trade recorded it already (a `fill` row): the trade's own call saw it, and tells the
    # trade; a signal about it would only make the trade read it again.
    recorded: bool = False

    @property
    def key(self) -> Key:
        assert self.owner is not None
        return (self.symbol, self.owner.side)

    @property
    def signed_qty(self) -> Decimal:
        assert self.owner is not None
        return self.qty if self.owner.opens else -self.qty


@dataclass(frozen=True)
class Verdict:
    owners: set[str] = field(default_factory=set)  # open trades whose own fills moved things
    positions: set[Key] = field(default_factory=set)  # moved otherwise: every trade on them
    symbols: set[str] = field(default_factory=set)  # fills nobody's orders explain
    # Positions their trades' own fills moved → those trades (open or not).
    explained: dict[Key, set[str]] = field(default_factory=dict)
    carry: tuple[SeenFill, ...] = ()  # fills newer than the positions read: next round's


def longest_prefix(fills: Sequence[SeenFill], delta: Decimal) -> int | None:
    """The most fills (oldest first) whose signed quantities add up to `delta`; None: none do."""
    best = 0 if delta == 0 else None
    total = Decimal(0)
    for k, f in enumerate(fills, start=1):
        total += f.signed_qty
        if total == delta:
            best = k
    return best


def explain(
    before: dict[Key, tuple[str, Decimal]],
    now: dict[Key, tuple[str, Decimal]],
    fills: Sequence[SeenFill],
    carried: Sequence[SeenFill] = (),
) -> Verdict:
    """Which trades the changes between two position reads concern.

    `fills` are those first seen this round (read after the positions, so some may be newer
    than the read: those are carried to the next round, once); `carried`, last round's. A
    position whose move the oldest of its trades' fills add up to exactly concerns only those
    trades; any other move (a different position id, a fill without a known order, a carried
    fill still not shown) concerns every trade on it."""
    # A fill its trade recorded is no news to it, unless other trades' fills moved the same
    # position in the round (below): then each must hear of the others (its TP/SL's level).
    owners = {f.owner.workflow_id for f in fills
              if f.owner is not None and f.owner.open and not f.recorded}
    open_owners = {f.owner.workflow_id for f in (*carried, *fills)
                   if f.owner is not None and f.owner.open}
    symbols = {f.symbol for f in fills if f.owner is None}
    positions: set[Key] = set()
    explained: dict[Key, set[str]] = {}
    known: dict[Key, list[SeenFill]] = {}
    for f in (*carried, *fills):
        if f.owner is not None:
            known.setdefault(f.key, []).append(f)
    old = {f.fill_id for f in carried}
    carry: list[SeenFill] = []
    moved = {k for k in before.keys() | now.keys() if before.get(k) != now.get(k)}
    for key in sorted(moved | known.keys()):
        b, n = before.get(key), now.get(key)
        mine = sorted(known.get(key, []), key=lambda f: (f.ctime_ms, f.fill_id))
        if b is not None and n is not None and b[0] != n[0]:
            positions.add(key)
            continue
        delta = (n[1] if n else Decimal(0)) - (b[1] if b else Decimal(0))
        k = longest_prefix(mine, delta)
        if k is None or any(f.fill_id in old for f in mine[k:]):
            positions.add(key)
            continue
        carry.extend(mine[k:])
        if k:
            explained[key] = {f.owner.workflow_id for f in mine[:k] if f.owner is not None}
            if len(explained[key]) > 1:
                owners |= explained[key] & open_owners
    return Verdict(owners, positions, symbols, explained, tuple(carry))


def concerned(verdict: Verdict, open_trades: Iterable[OpenTrade]) -> set[str]:
    """The owners; every open trade on a position or symbol that moved unexplained; and on a
    position the owners' fills moved, the one other trade holding it, if only one does: it may
    hold a position-level TP/SL that must become order-level now that another trade joined
    (or may become position-level now that the others left)."""
    trades = list(open_trades)
    out = set(verdict.owners)
    out |= {t.workflow_id for t in trades
            if (t.symbol, t.side) in verdict.positions or t.symbol in verdict.symbols}
    for key, owners in verdict.explained.items():
        others = [t.workflow_id for t in trades
                  if t.holds and (t.symbol, t.side) == key and t.workflow_id not in owners]
        if len(others) == 1:
            out.add(others[0])
    return out


def changes(before: AccountView, now: AccountView) -> tuple[set[str], set[tuple[str, PositionSide]]]:
    """Order ids and (symbol, side) positions that differ between two rounds."""
    orders = {oid for oid in before.orders.keys() | now.orders.keys()
              if before.orders.get(oid) != now.orders.get(oid)}
    positions = {key for key in before.positions.keys() | now.positions.keys()
                 if before.positions.get(key) != now.positions.get(key)}
    return orders, positions


def orphans(view: AccountView, open_trades: Iterable[OpenTrade]) -> set[str]:
    """Trades that hold quantity by their own record while the exchange shows no position on
    their side: a position can open and close between two rounds, leaving no difference."""
    return {
        t.workflow_id for t in open_trades
        if t.holds and (t.symbol, t.side) not in view.positions
    }


@dataclass
class FillWindow:
    """The fills already accounted for, so that overlapping reads count each fill once."""

    since_ms: int = 0  # the next read starts here
    seen: dict[str, int] = field(default_factory=dict)  # fill id → ctime (ms)
    carried: tuple[SeenFill, ...] = ()

    def new(self, fills: Iterable[Fill], read_at_ms: int) -> list[Fill]:
        fresh = [f for f in fills if f.trade_id not in self.seen]
        self.seen.update({f.trade_id: f.ctime_ms or read_at_ms for f in fresh})
        self.since_ms = read_at_ms - CLOCK_MARGIN_MS
        self.seen = {k: t for k, t in self.seen.items() if t >= self.since_ms - CLOCK_MARGIN_MS}
        return fresh


class WatcherActivities:
    def __init__(
        self,
        client: BitunixClient,
        sessionmaker: async_sessionmaker[AsyncSession],
        temporal: Client,
        *,
        settle_s: Decimal = DEFAULT_SETTLE_S,
        policy: IncidentPolicy = IncidentPolicy.REPORT,
        liveness_s: float = LIVENESS_S,  # float-ok: seconds
        account_limits: RiskLimits = RiskLimits(),  # noqa: B008 - frozen, no state
        latch_state: TradingState = TradingState.HALTED,
        day_timezone: str = "UTC",
        latch_flatten: bool = False,
    ) -> None:
        self._client = client
        self._policy = policy
        self._liveness_s = liveness_s
        self._records = Records(sessionmaker)
        self._temporal = temporal
        # Kept by the instance, so a restarted watcher activity on this worker keeps the
        # mismatches it was letting settle.
        self.audit = OwnershipAudit(self._records, sessionmaker, settle_s)
        # Open trades a signal found no running workflow for (untracked: see round()).
        self._not_running: set[str] = set()
        self._liveness_at = time.monotonic()
        self._clock_logged_at: float | None = None  # float-ok: time
        self.latch = DailyLossLatch(sessionmaker, client, account_limits=account_limits,
                                    latch_state=latch_state, timezone=day_timezone,
                                    flatten=latch_flatten)
        self._risk = RiskBook(sessionmaker)
        # workflow id → the stop last delivered to it (flatten, reason): sent again only when
        # the stop changes, or after a restart of the watcher (its first round).
        self._stops_sent: dict[str, tuple[bool, str]] = {}
        # workflow id → the trading state last shown to it (`trading_state`): sent again only
        # when it changes, after a restart (the first round) or once its workflow was gone.
        self._notices_sent: dict[str, StateNotice] = {}

    @property
    def not_running(self) -> set[str]:
        """Open trades (past PENDING) a signal found no running workflow for."""
        return set(self._not_running)

    async def _view(self) -> AccountView:
        positions = await self._client.pending_positions()
        orders: dict[str, tuple[str, Decimal]] = {}
        ours: dict[str, WorkingOrder] = {}
        skip = 0
        while True:
            page = await self._client.pending_orders(skip=skip, limit=PAGE)
            orders.update({o.order_id: (o.status.value, o.filled_qty) for o in page})
            ours.update({o.order_id: w for o in page if (w := WorkingOrder.of(o)) is not None})
            if len(page) < PAGE:
                break
            skip += PAGE
        held = [p for p in positions if p.qty > 0]
        return AccountView(
            orders=orders,
            positions={(p.symbol, p.side): (p.position_id, p.qty) for p in held},
            ours=tuple(ours.values()),
            marks=marks_of({(p.symbol, p.side): (p.qty, p.avg_open_price, p.unrealized_pnl)
                            for p in held}),
        )

    async def _fills(self, since_ms: int) -> tuple[list[Fill], bool]:
        """The account's fills since `since_ms` (newest first), and whether that is all."""
        out: list[Fill] = []
        for page_no in range(MAX_FILL_PAGES):
            page = await self._client.history_trades(
                start_time_ms=since_ms, skip=page_no * PAGE, limit=PAGE
            )
            out.extend(page)
            if len(page) < PAGE:
                return out, True
        return out, False

    async def _seen(self, fills: Sequence[Fill]) -> list[SeenFill]:
        owners = await self._records.fill_owners(f.client_id for f in fills if f.client_id)
        recorded = await self._records.recorded_fills(
            f.trade_id for f in fills if f.client_id in owners)
        return [
            SeenFill(f.trade_id, f.ctime_ms or 0, f.symbol, f.qty,
                     owners.get(f.client_id) if f.client_id else None,
                     recorded=f.trade_id in recorded)
            for f in fills
        ]

    async def _signal(self, workflow_ids: Iterable[str], reason: str) -> set[str]:
        """Signal `exchange_changed` to each trade; returns the workflow ids Temporal has no
        running workflow for."""
        not_running, _ = await self._send(
            {wid: (ExchangeChanged.SIGNAL, ExchangeChanged(reason=reason))
             for wid in workflow_ids})
        return not_running

    async def _send(self, messages: dict[str, tuple[str, object]]) -> tuple[set[str], set[str]]:
        """Signal each trade its (name, payload), SIGNALS_AT_ONCE at a time, heartbeating as
        it goes: a first round over hundreds of trades must not outlast the heartbeat timeout,
        or the watcher would be restarted and start over with a first round (seen under load:
        a storm of checks). Returns the workflow ids Temporal has no running workflow for, and
        those the signal reached."""
        gate = asyncio.Semaphore(SIGNALS_AT_ONCE)
        not_running: set[str] = set()
        reached: set[str] = set()

        async def one(wid: str) -> None:
            name, payload = messages[wid]
            async with gate:
                try:
                    await self._temporal.get_workflow_handle(wid).signal(name, payload)
                    reached.add(wid)
                except RPCError as exc:  # finished meanwhile, or never started
                    if exc.status is RPCStatusCode.NOT_FOUND:
                        not_running.add(wid)
                    log.debug("could not signal %s to %s: %s", name, wid, exc)
                if activity.in_activity():
                    activity.heartbeat()

        await asyncio.gather(*(one(wid) for wid in sorted(messages)))
        return not_running, reached

    async def round(self, before: AccountView | None, window: FillWindow) -> AccountView:
        """One round: read, compare with `before`, signal; returns what it read."""
        now = await self._view()
        read_at = time.time_ns() // 1_000_000
        fills, complete = await self._fills(window.since_ms or read_at - CLOCK_MARGIN_MS)
        fresh = window.new(fills, read_at)
        open_trades = await self._records.open_trades()
        if before is None or not complete:
            window.carried = ()
            wanted = {t.workflow_id for t in open_trades}
            reason = "watcher started" if before is None else "too many fills to tell apart"
        else:
            verdict = explain(before.positions, now.positions, await self._seen(fresh),
                              window.carried)
            window.carried = verdict.carry
            orders, _ = changes(before, now)
            wanted = orphans(now, open_trades) | concerned(verdict, open_trades)
            if orders:
                wanted |= set((await self._records.owners_of_orders(orders)).values())
            reason = "orders or position changed"
        # Trades found without a workflow are signalled every round until they are resumed
        # (a signal that reaches the new run clears them); every LIVENESS_S, the trades
        # Temporal does not list as running are signalled too, so a workflow that ended on a
        # quiet position is found without waiting for the position to move.
        news = set(wanted)
        wanted |= {t.workflow_id for t in open_trades if t.workflow_id in self._not_running}
        if before is not None and time.monotonic() - self._liveness_at >= self._liveness_s:
            news |= await self._not_listed(open_trades)
            wanted |= news
        if wanted:
            # The repeats alone (trades still without a workflow, said when first found) are
            # DEBUG: at INFO they were a line every round for as long as the incident lasts.
            if news:
                log.info("account watcher: %s; signalling %d trade(s)", reason, len(wanted))
            else:
                log.debug("account watcher: signalling %d trade(s) still without a running "
                          "workflow", len(wanted))
            gone = await self._signal(wanted, reason)
            # A trade past its first claim has a workflow; a PENDING one may still be starting,
            # so its NOT_FOUND proves nothing. A trade a signal reached is running.
            starting = {t.workflow_id for t in open_trades
                        if t.status == TradeStatus.PENDING.value}
            self._not_running = (self._not_running - wanted) | (gone - starting)
        # The first round signals every open trade, so a watcher that starts, as the worker
        # does, finds each trade whose workflow is gone; the set is kept while they stay open.
        untracked = [t for t in open_trades if t.workflow_id in self._not_running]
        self._not_running &= {t.workflow_id for t in open_trades}
        await self._check_ownership(now, untracked)
        await self._check_risk(now, first=before is None)
        self._check_clock()
        return now

    def _check_clock(self) -> None:
        """Log how far our clock is from the exchange's, as this round's answers dated it: at
        the first round (the worker's start) and hourly after. The refusal of new entries
        needs no round: every answer updates the client's ClockWatch (exchange/clock.py)."""
        now = time.monotonic()
        if self._clock_logged_at is None or now - self._clock_logged_at >= CLOCK_LOG_S:
            self._clock_logged_at = now
            self._client.clock.log_check()

    async def _check_risk(self, view: AccountView, *, first: bool) -> None:
        """The daily loss latch on this round's reads, then the trading states' stops. A
        failure is logged and the round goes on, as the audit's."""
        try:
            await self.latch.check(view.marks)
        except Exception:  # noqa: BLE001 - the latch must never stop the watcher's signals
            log.exception("account watcher: the daily loss check failed this round")
        try:
            await self._deliver_stops(first=first)
        except Exception:  # noqa: BLE001 - nor must the stops' delivery
            log.exception("account watcher: delivering the trading states' stops failed")
        try:
            await self._deliver_notices(first=first)
        except Exception:  # noqa: BLE001 - nor must what the trades show of the states
            log.exception("account watcher: telling the trades their trading states failed")

    async def _deliver_stops(self, *, first: bool) -> None:
        """The backstop of the kill switch and the latch (docs/design.md#risk): `cancel` to
        every trade a non-ACTIVE state must stop (RiskBook.to_stop), so a state change reaches
        each running trade within one round even when the signals sent with it were lost.
        A stop already delivered to a trade is not sent again while it stays the same; the
        first round (a restarted watcher) sends every one again."""
        if first:
            self._stops_sent.clear()
        stops = {s.workflow_id: (s.flatten, s.reason) for s in await self._risk.to_stop()}
        self._stops_sent = {w: s for w, s in self._stops_sent.items() if stops.get(w) == s}
        todo = {w: s for w, s in stops.items() if self._stops_sent.get(w) != s}
        if not todo:
            return
        log.warning("account watcher: a trading state stops %d trade(s): %s", len(todo),
                    "; ".join(sorted({reason for _, reason in todo.values()})))
        _, reached = await self._send(
            {w: (CancelStop.SIGNAL, CancelStop(flatten=f, reason=r)) for w, (f, r) in todo.items()})
        self._stops_sent.update({w: todo[w] for w in reached})

    async def _deliver_notices(self, *, first: bool) -> None:
        """Signal `trading_state` to each live trade whose applicable state (RiskBook.notices)
        is not the one it was last told, so its details show the state that affects it and
        lose it on a resume (docs/design.md#risk). The first round tells every live trade (a
        resume may have happened while no watcher ran); a trade found without a workflow is
        told again once it runs (a resumed run starts from ACTIVE)."""
        notices = {n.workflow_id: StateNotice(state=n.state, scope=n.scope, reason=n.reason)
                   for n in await self._risk.notices()}
        if first:
            self._notices_sent.clear()
            if not await self._risk.ever_changed():
                # No state was ever set: every trade shows ACTIVE already (what it starts
                # with), so a watcher that starts sends nothing.
                self._notices_sent = {w: n for w, n in notices.items()
                                      if n.state is TradingState.ACTIVE}
        self._notices_sent = {w: n for w, n in self._notices_sent.items()
                              if notices.get(w) == n and w not in self._not_running}
        todo = {w: n for w, n in notices.items() if self._notices_sent.get(w) != n}
        if not todo:
            return
        log.info("account watcher: telling %d trade(s) their trading state", len(todo))
        _, reached = await self._send({w: (StateNotice.SIGNAL, n) for w, n in todo.items()})
        self._notices_sent.update({w: todo[w] for w in reached})

    async def _not_listed(self, open_trades: Sequence[OpenTrade]) -> set[str]:
        """Open trades past PENDING that Temporal's visibility does not list as running (it
        may lag: the signals that follow decide)."""
        self._liveness_at = time.monotonic()
        candidates = {t.workflow_id for t in open_trades if t.status != TradeStatus.PENDING.value}
        if not candidates:
            return set()
        running: set[str] = set()
        try:
            async for wf in self._temporal.list_workflows(RUNNING_TRADES, page_size=1000):
                running.add(wf.id)
        except RPCError as exc:
            log.warning("account watcher: cannot list running workflows (%s)", exc)
            return set()
        return candidates - running

    async def _check_ownership(self, view: AccountView, untracked: list[OpenTrade]) -> None:
        """The ownership audit of this round's reads (no request of its own). A failure is
        logged and the round goes on: tracking the trades must not depend on it."""
        try:
            await self.audit.check({k: qty for k, (_, qty) in view.positions.items()}, view.ours,
                                   untracked)
            if self._policy is not IncidentPolicy.REPORT:
                await self._cancel_orphans(view)
        except Exception:  # noqa: BLE001 - the audit must never stop the watcher's signals
            log.exception("account watcher: the ownership audit failed this round")

    async def _cancel_orphans(self, view: AccountView) -> None:
        """Under `protect` or `flatten`: cancel each orphan order that is certainly ours (our
        `order` table has its client id; its trade has ended). A working order no live trade
        owns can only open quantity nobody tracks or close quantity another trade owns.
        One whose client id no row knows may be another installation's on the same account:
        it is reported only (docs/design.md#incident-policies)."""
        working = {w.order_id: w for w in view.ours}
        rows = [r for r in await self.audit.book.open_orphans()
                if r.order_id in working and r.client_order_id]
        known = await self._records.order_trades(r.client_order_id for r in rows
                                                 if r.client_order_id)
        for row in rows:
            owner = known.get(row.client_order_id or "")
            if owner is None:
                continue
            try:
                out = await self._client.cancel_orders(row.symbol, order_ids=[row.order_id or ""])
            except ExchangeError as exc:
                log.warning("incident #%d: cancelling orphan order %s failed (%s); trying again "
                            "next round", row.id, row.order_id, exc)
                continue
            if out.failed:
                log.warning("incident #%d: the exchange did not cancel orphan order %s: %s",
                            row.id, row.order_id, out.failed)
                continue
            note = (f"cancelled order {row.order_id} (policy {self._policy.value}): its trade "
                    f"#{owner[0]} has ended ({owner[1]})")
            log.warning("incident #%d: %s", row.id, note)
            await self.audit.book.add_action(row.id, IncidentAction.CANCEL, note)

    @activity.defn(name="watch_account")
    async def watch_account(self, inp: WatcherInput) -> Done:
        interval = float(inp.interval_s)  # float-ok: time or rate, not money
        ends = time.monotonic() + RUN_FOR_S
        before: AccountView | None = None
        window = FillWindow()
        while time.monotonic() < ends:
            activity.heartbeat()
            try:
                before = await self.round(before, window)
            except ExchangeError as exc:
                log.warning("account watcher: %s", exc)
            await asyncio.sleep(interval)
        return Done()
