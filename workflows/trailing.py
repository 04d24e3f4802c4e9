"""The trailing stop, from the workflow's side (docs/design.md#exits, the trailing bullet).

While a trailing trade is TRACKING, it reads the price it trails (mark or last) every
TRAIL_CHECK_S from a ticker read shared by every trade on the symbol (activities/tracking.py
`read_trail_price`, reads up to TRAIL_READ_MAX_AGE_MS old), so N trailing trades cost one
ticker read per interval for the account, not N. Each price goes through the pure functions of
trading/exits.py (activation, best price, the stop wanted, never looser); the stop is handed to
the ordinary TP/SL path (workflows/protection.py `targets()` takes the tighter of the trade's
own SL and `Exits.trail_stop`) only when it tightens the current stop by at least a step, and
no more often than every TRAIL_MOVE_MIN_S: moves are coalesced, the latest wanted stop wins.
If a price read is at or through the stop wanted while the exchange's stop is still behind it
(not moved yet, or being moved), the trade closes its own quantity itself (`inbox.flatten`;
the tracking loop closes it through workflows/closing.py).

Everything the trail knows is in the trade's memory (`Exits`), durable across a worker
restart and continue-as-new. What the trail changes in the commands a running trade issues is
behind `workflow.patched(TRAILING)`, asked only by a trade whose plan has a trail: trades
without one issue exactly the commands they did before.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.contract_tracking import PriceQuery
    from trading.errors import TradingError, show
    from trading.exits import (
        Trailing,
        TrailPoint,
        stop_crossed,
        tighter,
        trail_advance,
        trail_min_step,
        trail_worth_moving,
    )
    from trading.types import StopType
    from workflows import protection
    from workflows.run import TradeRun
    from workflows.state import ExitsView, TrailView

TRAILING = "exits-trailing"
# How often a trailing trade reads its price (a durable timer: Temporal's fire no sooner than
# about a second, and each check is an activity: 12 a minute per trade, one ticker read a
# minute per symbol and TRAIL_READ_MAX_AGE_MS, however many trades trail it).
TRAIL_CHECK_S = 5
# A read this old will do: the checks of every trade on the symbol share one ticker read.
TRAIL_READ_MAX_AGE_MS = 2_000
# The exchange's stop is moved no more often than this (each move is one TP/SL modify): moves
# are at least TRAIL_MOVE_MIN_S / TRAIL_CHECK_S check instants apart, so at most
# 60 / TRAIL_MOVE_MIN_S + 1 in any minute per trade. A multiple of TRAIL_CHECK_S.
TRAIL_MOVE_MIN_S = 10
MOVE_EVERY_CHECKS = TRAIL_MOVE_MIN_S // TRAIL_CHECK_S
MIN_WAIT_S = 1  # never a timer shorter than Temporal's resolution
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def trail_of(run: TradeRun) -> Trailing | None:
    """The trade's trail, when it has one and runs the code that follows it (a trade that
    began before it replays without)."""
    plan = run.memory.exits.plan
    if plan is None or plan.trail is None:
        return None
    return plan.trail if workflow.patched(TRAILING) else None


def price_type(run: TradeRun, trail: Trailing) -> StopType:
    return trail.price_type or run.strategy.stop_type


def slot(at: datetime) -> int:
    """The number of the TRAIL_CHECK_S interval (counted from the Unix epoch) `at` is in."""
    return (at - EPOCH) // timedelta(seconds=TRAIL_CHECK_S)


def next_check(after: datetime) -> datetime:
    """The first instant of the TRAIL_CHECK_S grid after `after`: every trailing trade checks
    at the same instants, so their price reads fall within TRAIL_READ_MAX_AGE_MS of each other
    and share one ticker read. (At most one check per interval: moves counted in intervals
    are rate-limited however late a timer fires.)"""
    return EPOCH + (slot(after) + 1) * timedelta(seconds=TRAIL_CHECK_S)


class Cadence:
    """When this run last followed the exchange (the strategy's tracking interval) and last
    checked its trail (on the TRAIL_CHECK_S grid). Not durable on purpose: a new run (a restart
    replays it; continue-as-new starts afresh) only checks sooner."""

    def __init__(self) -> None:
        self.followed_at = workflow.now()
        self.checked_at: datetime | None = None

    def wait_s(self, follow_every: int) -> float:  # float-ok: time, not money
        now = workflow.now()
        due = min(self.followed_at + timedelta(seconds=follow_every),
                  now if self.checked_at is None else next_check(self.checked_at))
        return max(float(MIN_WAIT_S), (due - now).total_seconds())  # float-ok: time

    def follow_due(self, follow_every: int) -> bool:
        return workflow.now() >= self.followed_at + timedelta(seconds=follow_every)

    def check_due(self) -> bool:
        at = self.checked_at
        return at is None or workflow.now() >= next_check(at)

    def followed(self) -> None:
        self.followed_at = workflow.now()


async def check(run: TradeRun, trail: Trailing, cadence: Cadence) -> None:
    """Read the price, advance the trail, and close or move the stop as it says."""
    cadence.checked_at = workflow.now()
    led, ex, side = run.ledger, run.memory.exits, run.inp.side
    if run.rules is None or led.open_qty == 0 or run.inbox.interrupted():
        return
    read = await run.calls.read_trail_price(PriceQuery(
        symbol=run.inp.symbol, stop_type=price_type(run, trail), max_age_ms=TRAIL_READ_MAX_AGE_MS,
    ))
    if read.price is None:
        return
    price = read.price
    try:
        point = trail_advance(run.rules, trail, side, led.avg_entry_price,
                              TrailPoint(active=ex.trail_active, best=ex.trail_best,
                                         wanted=ex.trail_wanted), price)
    except TradingError as exc:  # a stop that rounds to zero on the tick: never fail the task
        run.warn(f"trailing stop not computed ({exc.message})")
        return
    ex.trail_active, ex.trail_best, ex.trail_wanted = point.active, point.best, point.wanted
    show_trail(run)
    if point.wanted is None or point.best is None:
        return  # not active yet: the trade keeps whatever protection it has
    placed = led.protection.sl if led.protection is not None else None
    if stop_crossed(side, price, point.wanted):
        same_price = price_type(run, trail) is run.strategy.stop_type
        if placed is not None and same_price and stop_crossed(side, price, placed):
            # The exchange's stop is crossed too: it fired (or is firing). Look now rather
            # than at the next tracking interval.
            run.inbox.exchange_changed = True
            return
        # The exchange's stop is behind (not moved yet, or being moved), or watches another
        # price than the trail (it may not fire now): the trade closes its own quantity itself.
        run.inbox.flatten = f"trailing stop {show(point.wanted)} crossed at {show(price)}"
        run.warn(run.inbox.flatten)
        return
    current = tighter(side, run.protection.sl, ex.trail_stop)
    step = trail_min_step(run.rules, trail, point.best)
    if not trail_worth_moving(side, current, point.wanted, step):
        return
    moved = ex.trail_moved_at
    if moved is not None and slot(workflow.now()) - slot(moved) < MOVE_EVERY_CHECKS:
        return  # coalesced: a later check sends the stop wanted then
    ex.trail_stop, ex.trail_moved_at = point.wanted, workflow.now()
    await _move(run, point.wanted)
    show_trail(run)


async def _move(run: TradeRun, stop: Decimal) -> None:
    """The TP/SL carries the new stop. A refusal here means the price passed it meanwhile:
    the trade closes, whatever `on_protection_refused` says (an unprotected trailing trade
    would have lost the very stop it was following)."""
    disabled = run.protection.disabled
    await protection.ensure(run, run.venue.position_qty)
    if run.protection.disabled and not disabled:
        run.protection.disabled = False
        run.inbox.flatten = f"trailing stop {show(stop)} refused by the exchange"
    if run.inbox.flatten is not None:
        run.warn(run.inbox.flatten)


def show_trail(run: TradeRun) -> None:
    """The trail in the `state` query (and so the API, the CLI and the Temporal UI)."""
    plan, ex = run.memory.exits.plan, run.memory.exits
    if plan is None or plan.trail is None:
        return
    view = run.state.exits or ExitsView()
    run.state.exits = view.model_copy(update={
        "trail": TrailView(pct=plan.trail.pct, active=ex.trail_active, best_price=ex.trail_best,
                           stop=ex.trail_wanted),
        "stop": tighter(run.inp.side, run.protection.sl, ex.trail_stop),
    })
    run.show()
