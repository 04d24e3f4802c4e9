"""The randomized fault test's scenarios: a pure, seeded generator (issue 19, deliverable 5).

A run is a short list of steps on one symbol, in one-way or hedge mode, for one strategy of
its own: alerts (open long or short by market, limit or chase; close; reverse; a duplicate
delivery of an earlier alert, sent again alone or twice at once; an exit delivered before its
open, the open carrying the same or an older `time`), price moves (one that crosses the resting
entries once: with the paper exchange's partial fills on, that fills half of each), and faults,
each held for a second or three (an exchange fault set just before an alert that places an
order; a process fault landing up to 0.8 s after its turn, while the next alert is in flight):
SIGKILL of the worker or of the webhook (it hosts the fast-path worker), a Temporal
dev-server restart, a placement executed whose answer is dropped (the client times out) or
replaced by a 5xx, transport faults before processing, lag (of new orders, of position reads, of
the TP/SL history and fills), the symbol going to STOP. Nothing here does I/O: `generate(seed)` is the whole run, and the same seed always
gives the same run (tests/chaos/test_scenario.py), so a failing seed is a reproducible report.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum

# OPEN symbols of the bundled paper pairs (paper/data/pairs.json) with a USDT margin coin.
SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT", "DOGEUSDT", "XRPUSDT", "SUIUSDT")
SIZES_USDT = (Decimal(60), Decimal(100), Decimal(150))
MAX_ALERTS = 5
MAX_FAULTS = 2


class Alert(StrEnum):
    OPEN_LONG = "open_long"
    OPEN_SHORT = "open_short"
    CLOSE_LONG = "close_long"
    CLOSE_SHORT = "close_short"
    REVERSE_TO_LONG = "reverse_to_long"
    REVERSE_TO_SHORT = "reverse_to_short"


OPENS = (Alert.OPEN_LONG, Alert.OPEN_SHORT)
EXITS = (Alert.CLOSE_LONG, Alert.CLOSE_SHORT)
REVERSES = (Alert.REVERSE_TO_LONG, Alert.REVERSE_TO_SHORT)


class Fault(StrEnum):
    KILL_WORKER = "kill_worker"  # SIGKILL, a new worker after `hold_s`
    KILL_WEBHOOK = "kill_webhook"  # SIGKILL (with its fast-path worker), back after `hold_s`
    RESTART_TEMPORAL = "restart_temporal"  # the dev server stopped, started after `hold_s`
    DROP_ANSWER = "drop_answer"  # a placement executed, its answer withheld (client times out)
    FIVEXX_AFTER_ACCEPT = "5xx_after_accept"  # a placement executed, answered HTTP 504
    TRANSPORT_5XX = "transport_5xx"  # the next private requests answer 503 / 10001 unprocessed
    VISIBILITY_LAG = "visibility_lag"  # new orders, or position changes, or TP/SL history lag
    SYMBOL_STOP = "symbol_stop"  # the symbol refuses every order (20012) for `hold_s`


PROCESS_FAULTS = (Fault.KILL_WORKER, Fault.KILL_WEBHOOK, Fault.RESTART_TEMPORAL)


class Move(StrEnum):
    PRICE = "price"  # the price moves by `bps`
    CROSS_ENTRIES = "cross_entries"  # the price crosses the resting entries once (half fills)


class When(StrEnum):
    """The `time` ({{timenow}}) an alert carries."""

    NOW = "now"
    SAME_AS_PREVIOUS = "same_as_previous"  # the second of the alert sent just before
    BEFORE_PREVIOUS = "before_previous"  # one second before it


@dataclass(frozen=True)
class AlertStep:
    alert: Alert
    alert_id: str
    order_type: str = "market"  # market | limit | chase (opens and reverses)
    size_usdt: Decimal = SIZES_USDT[1]
    limit_offset_bps: Decimal = Decimal(0)  # a limit's price: this far on the passive side
    tp_pct: Decimal | None = None
    sl_pct: Decimal | None = None
    when: When = When.NOW
    gap_s: Decimal = Decimal(0)  # wait this long before sending


@dataclass(frozen=True)
class Redeliver:
    """TradingView delivering an earlier alert (its `index` in the run's alerts) again."""

    index: int
    concurrent: bool = False  # two deliveries at once rather than one
    gap_s: Decimal = Decimal(0)


@dataclass(frozen=True)
class PriceStep:
    move: Move
    bps: Decimal = Decimal(0)
    gap_s: Decimal = Decimal(0)


@dataclass(frozen=True)
class FaultStep:
    fault: Fault
    hold_s: Decimal  # how long the fault lasts before it is undone (the run goes on meanwhile)
    target: str = "order"  # DROP_ANSWER / FIVEXX_AFTER_ACCEPT: "order" or "tpsl"
    count: int = 1  # placements dropped, or requests answered 5xx
    lag_ms: int = 0  # VISIBILITY_LAG
    lagging: str = "orders"  # VISIBILITY_LAG: "orders", "positions" or "tpsl" (history, fills)
    gap_s: Decimal = Decimal(0)
    # A process fault lands this long after its turn, while the steps after it go on.
    offset_s: Decimal = Decimal(0)


Step = AlertStep | Redeliver | PriceStep | FaultStep


@dataclass(frozen=True)
class Run:
    seed: int
    symbol: str
    steps: tuple[Step, ...]
    hedge: bool = False  # the account in hedge mode (a long and a short side by side)
    alerts: tuple[AlertStep, ...] = field(default=())  # the alert steps, in sending order

    @property
    def faults(self) -> tuple[FaultStep, ...]:
        return tuple(s for s in self.steps if isinstance(s, FaultStep))

    def describe(self) -> str:
        """One line per step, for a failure report (the seed regenerates it)."""
        lines = [f"seed {self.seed}: {self.symbol} {'HEDGE' if self.hedge else 'ONE_WAY'}"]
        for n, s in enumerate(self.steps):
            lines.append(f"  {n:2d} +{s.gap_s}s {_describe(s)}")
        return "\n".join(lines)


def _describe(s: Step) -> str:
    if isinstance(s, AlertStep):
        if s.alert in EXITS:
            return f"alert {s.alert_id} {s.alert} time={s.when}"
        tpsl = "".join(f" {k}={v}" for k, v in (("tp_pct", s.tp_pct), ("sl_pct", s.sl_pct)) if v)
        return (f"alert {s.alert_id} {s.alert} {s.order_type} {s.size_usdt} USDT{tpsl} "
                f"time={s.when}")
    if isinstance(s, Redeliver):
        return f"redeliver alert #{s.index}{' twice at once' if s.concurrent else ''}"
    if isinstance(s, PriceStep):
        return f"price {s.move}" + (f" {s.bps} bps" if s.move is Move.PRICE else "")
    detail = {
        Fault.DROP_ANSWER: f" {s.target} x{s.count}",
        Fault.FIVEXX_AFTER_ACCEPT: f" {s.target} x{s.count}",
        Fault.TRANSPORT_5XX: f" x{s.count}",
        Fault.VISIBILITY_LAG: f" {s.lagging} {s.lag_ms} ms",
    }.get(s.fault, "")
    return f"fault {s.fault}{detail} for {s.hold_s} s, {s.offset_s} s later"


def _gap(rng: random.Random, most_ms: int = 600) -> Decimal:
    return Decimal(rng.randrange(0, most_ms + 1, 50)) / 1000


def _hold(rng: random.Random) -> Decimal:
    return Decimal(rng.randrange(1000, 3001, 250)) / 1000


def _fault(rng: random.Random, kind: Fault) -> FaultStep:
    hold = _hold(rng)
    gap = _gap(rng)
    if kind in (Fault.DROP_ANSWER, Fault.FIVEXX_AFTER_ACCEPT):
        return FaultStep(kind, hold, target=rng.choice(("order", "order", "tpsl")),
                         count=rng.randint(1, 2), gap_s=gap)
    if kind is Fault.TRANSPORT_5XX:
        return FaultStep(kind, hold, count=rng.randint(1, 4), gap_s=gap)
    if kind is Fault.VISIBILITY_LAG:
        return FaultStep(kind, hold, lag_ms=rng.randrange(500, 3001, 250), gap_s=gap,
                         lagging=rng.choice(("orders", "positions", "tpsl")))
    if kind is Fault.SYMBOL_STOP:
        return FaultStep(kind, hold, gap_s=gap)
    # A process dies (or Temporal stops) a little after its turn, while the next alert is in
    # flight: its ack, its first placement in the webhook's fast path.
    return FaultStep(kind, hold, gap_s=gap, offset_s=_gap(rng, 800))


def _open(rng: random.Random, alert: Alert, alert_id: str, when: When = When.NOW) -> AlertStep:
    order_type = rng.choice(("market", "market", "limit", "chase"))
    tp = rng.choice((None, None, Decimal("0.3"), Decimal("2")))
    sl = rng.choice((None, Decimal("0.3"), Decimal("3")))
    return AlertStep(
        alert, alert_id, order_type=order_type, size_usdt=rng.choice(SIZES_USDT),
        limit_offset_bps=Decimal(rng.randrange(0, 21, 5)), tp_pct=tp, sl_pct=sl, when=when,
        gap_s=_gap(rng),
    )


def _alerts(rng: random.Random) -> list[AlertStep | Redeliver]:
    """The run's deliveries: it starts with an open (or an exit delivered before its open)."""
    out: list[AlertStep | Redeliver] = []
    sent: list[AlertStep] = []

    def add(step: AlertStep) -> None:
        out.append(step)
        sent.append(step)

    def next_id() -> str:
        return f"a{len(sent)}"

    if rng.random() < 0.25:  # out of order: the exit first, then its open of the same bar
        side = rng.choice(OPENS)
        add(AlertStep(EXITS[OPENS.index(side)], next_id(), gap_s=_gap(rng)))
        add(_open(rng, side, next_id(), rng.choice((When.SAME_AS_PREVIOUS, When.BEFORE_PREVIOUS))))
    else:
        add(_open(rng, rng.choice(OPENS), next_id()))
    for _ in range(rng.randint(1, MAX_ALERTS - 1)):
        roll = rng.random()
        if roll < 0.2:
            out.append(Redeliver(rng.randrange(len(sent)), concurrent=rng.random() < 0.4,
                                 gap_s=_gap(rng)))
        elif roll < 0.5:
            add(_open(rng, rng.choice(OPENS), next_id()))
        elif roll < 0.8:
            add(AlertStep(rng.choice(EXITS), next_id(), gap_s=_gap(rng)))
        else:
            add(_open(rng, rng.choice(REVERSES), next_id()))
    return out


def generate(seed: int) -> Run:
    """The run of `seed`: alerts in order, price moves and one or two faults among them."""
    rng = random.Random(seed)
    symbol = rng.choice(SYMBOLS)
    hedge = rng.random() < 0.3
    steps: list[Step] = list(_alerts(rng))
    for _ in range(rng.randint(1, 3)):
        move = rng.choice((Move.PRICE, Move.CROSS_ENTRIES))
        bps = Decimal(rng.choice((-40, -20, -10, 10, 20, 40))) if move is Move.PRICE else Decimal(0)
        steps.insert(rng.randint(1, len(steps)), PriceStep(move, bps, _gap(rng)))
    kinds = rng.sample(list(Fault), rng.randint(1, MAX_FAULTS))
    for kind in kinds:
        if kind in PROCESS_FAULTS:
            at = rng.randint(0, len(steps))
        else:  # an exchange fault is set just before an alert that places an order
            at = rng.choice([n for n, s in enumerate(steps)
                             if isinstance(s, AlertStep) and s.alert not in EXITS])
        steps.insert(at, _fault(rng, kind))
    alerts = tuple(s for s in steps if isinstance(s, AlertStep))
    return Run(seed, symbol, tuple(steps), hedge, alerts)
