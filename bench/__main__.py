"""`python -m bench` (what `make bench` runs): every measurement, then
bench/results/<date>.md and .json.

    python -m bench                          everything (a few minutes)
    python -m bench --quick                  small samples, for a smoke run
    python -m bench --only precision_fuzz    one measurement (repeat --only for more)
    python -m bench --only flood             valid-alert acks under a 300 req/s anonymous flood
    python -m bench --only cost [--profile]  CPU per trade of every process (a stack of its own)
    python -m bench --all                    also the runs beyond issue 24's deliverables: the
                                             comparison stacks (fast path off, anonymous limit
                                             off, the candle close under BitUnix's real limits
                                             with one worker) and the 100 alerts/s burst (4b)
    python -m bench --use-running http://127.0.0.1:8000 [--exchange-url URL]
                                             measure a stack someone started (no restarts:
                                             the fast-path-off run is skipped)
    python -m bench --only precision_fuzz --pairs-file trading_pairs.json [--tickers-file …]

The bench starts its own stacks (`tradewire up`, `tradewire exchange`) on free ports in a
temporary state dir, with the limits of bench/limits.py raised, and stops them at the end.
Each step's wall-clock time goes into the report (`wall_s`), so where the time went is visible.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import shutil
import sys
import tempfile
import time
import traceback
import uuid
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

from bench import (
    ack,
    burst,
    candle_close,
    close_many,
    cost,
    flood,
    floor,
    memory,
    precision_fuzz,
    profile,
    report,
    signal_to_order,
    two_workers,
)
from bench.alerts import BenchFailure, add_strategy
from bench.limits import BenchLimits
from bench.machine import machine, versions
from bench.report import Outcome
from bench.stack import ExchangeEndpoint, Stack, StackError, full_stack, running_stack
from devstack.components import defines_function, module_exists

STACK_MEASUREMENTS = ("floor", "signal_to_order", "ack", "flood", "memory", "burst",
                      "candle_close", "cost", "close_many", "two_workers")
OWN_STACKS = {"candle_close", "cost", "close_many", "two_workers"}  # each on stacks of its own
MEASUREMENTS = (*STACK_MEASUREMENTS, "precision_fuzz")
# `make bench` (no --only) runs these; --all adds the burst and the comparison stacks, which
# measure no deliverable of issue 24 and would take it past its 15 minutes (`--only burst` runs
# the burst alone).
BEYOND_DEFAULT = ("burst",)
DEFAULT = tuple(m for m in MEASUREMENTS if m not in BEYOND_DEFAULT)
BEYOND_NOTE = ("not run without --all (`python -m bench --all`, ~6 more minutes): the burst "
               "of 100 alerts/s (4b, beyond this machine's capacity; issue 24's burst is the "
               "candle close, 4d), and the stacks that compare a setting: fast path off (3), "
               "anonymous limit off (4c), the candle close under BitUnix's real limits with one "
               "worker (4d; measurement 7 runs the same load under the same limits with two)")
ORDER = ("floor", "signal_to_order", "ack", "cost", "flood", "candle_close", "close_many",
         "burst", "memory", "precision_fuzz", "profile", "two_workers")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    p.add_argument("--only", action="append", choices=MEASUREMENTS, metavar="NAME",
                   help=f"run only this measurement (repeatable): {', '.join(MEASUREMENTS)}")
    p.add_argument("--quick", action="store_true", help="small samples (a smoke run)")
    p.add_argument("--all", action="store_true",
                   help="also the runs beyond issue 24's deliverables (~6 more minutes): the "
                        "stacks that compare a setting (fast path off, anonymous limit off, the "
                        "candle close under real limits with one worker) and the 100 alerts/s "
                        "burst (4b)")
    p.add_argument("--use-running", metavar="WEBHOOK_URL",
                   help="measure a running stack (its settings from TRADEWIRE_* in the env)")
    p.add_argument("--exchange-url", help="with --use-running: the paper exchange's URL")
    p.add_argument("--pairs-file", type=Path, action="append",
                   help="precision fuzz on this BitUnix trading_pairs file (repeatable; "
                        "default: the bundled pairs and bench/data/bitunix_pairs_real.json)")
    p.add_argument("--tickers-file", type=Path, help="tickers for --pairs-file (optional)")
    p.add_argument("--fuzz-n", type=int, help=f"alerts per fuzz run "
                                              f"(default {precision_fuzz.DEFAULT_N})")
    p.add_argument("--seed", type=int, default=1, help="the fuzz's seed")
    p.add_argument("--out", type=Path, default=report.RESULTS_DIR, help="results folder")
    p.add_argument("--keep", action="store_true", help="keep the temporary state dirs and logs")
    p.add_argument("--profile", action="store_true",
                   help="sample the webhook and worker with py-spy during signal-to-order "
                        "(needs `pip install py-spy`)")
    return p.parse_args(argv)


def say(text: str) -> None:
    print(f"[bench {datetime.now():%H:%M:%S}] {text}", file=sys.stderr, flush=True)


def stack_missing() -> str | None:
    if not module_exists("webhook.routes"):
        return "the webhook (webhook/routes.py) is not built yet"
    if not defines_function("worker", "main"):
        return "the worker (worker.main) is not built yet"
    return None


async def guarded(title: str, name: str, step: Callable[[], Awaitable[Outcome]]) -> Outcome:
    """Run one measurement; a failure becomes a skipped outcome that says why."""
    say(f"{title} …")
    try:
        outcome = await step()
    except (BenchFailure, StackError) as exc:
        say(f"{title}: FAILED: {exc}")
        return Outcome(name=name, title=title, skipped=f"failed: {exc}")
    except Exception as exc:  # noqa: BLE001 - the report must still be written
        traceback.print_exc()
        return Outcome(name=name, title=title, skipped=f"failed: {type(exc).__name__}: {exc}")
    for row in outcome.rows:
        say(f"  {row.metric}: {row.value} {row.verdict}".rstrip())
    return outcome


class Bench:
    def __init__(self, args: argparse.Namespace, work: Path) -> None:
        self.args = args
        self.work = work
        self.quick = args.quick
        self.limits = BenchLimits()
        self.wanted = set(args.only or (MEASUREMENTS if args.all else DEFAULT))
        self.outcomes: dict[str, Outcome] = {}
        self.notes: list[str] = []
        self.floor_send: dict[str, float] | None = None
        self.fast_series: signal_to_order.Series | None = None
        self.steps: dict[str, float] = {}  # step → wall-clock seconds, in the order run
        self.wall: dict[str, float] = {}  # measurement → wall-clock seconds, all its steps

    def n(self, full: int, quick: int) -> int:
        return quick if self.quick else full

    @contextlib.contextmanager
    def timed(self, step: str, charge: str | None = None) -> Iterator[None]:
        """Time a step; `charge`: the measurement whose wall time it adds to."""
        t0 = time.monotonic()
        try:
            yield
        finally:
            took = time.monotonic() - t0
            self.steps[step] = self.steps.get(step, 0.0) + took
            if charge is not None:
                self.wall[charge] = self.wall.get(charge, 0.0) + took

    async def measured(self, title: str, name: str, step: Callable[[], Awaitable[Outcome]]
                       ) -> Outcome:
        with self.timed(title, name):
            return await guarded(title, name, step)

    async def run(self) -> None:
        # The fuzz needs only a paper exchange of its own: it runs while the first stack
        # starts (nothing is measured on a stack until the fuzz is done).
        fuzz = (asyncio.create_task(self.measured("6. Precision fuzz", "precision_fuzz",
                                                  self.fuzz))
                if "precision_fuzz" in self.wanted else None)
        try:
            await self.stacks(fuzz)
        finally:
            if fuzz is not None:
                self.outcomes["precision_fuzz"] = await fuzz

    async def stacks(self, fuzz: asyncio.Task[Outcome] | None) -> None:
        if not self.wanted & set(STACK_MEASUREMENTS):
            return
        missing = stack_missing()
        if missing:
            for name in self.wanted & set(STACK_MEASUREMENTS):
                self.outcomes[name] = Outcome(name=name, title=name, skipped=missing)
            return
        if self.args.use_running:
            if fuzz is not None:
                await asyncio.wait([fuzz])
            self.notes.append("fast path off (measurement 3) needs a restart: not run against "
                              "a running stack")
            stack = running_stack(self.args.use_running, self.args.exchange_url)
            self.notes += stack.notes
            await self.on_stack(stack, idle={})
            return
        if not self.wanted & set(STACK_MEASUREMENTS) - OWN_STACKS:
            if fuzz is not None:
                await asyncio.wait([fuzz])
            await self.own_stacks()
            return
        say("starting the stack (fast path on) …")
        t0 = time.monotonic()
        async with full_stack(self.limits, self.work / "fast", fast_path=True) as stack:
            self.steps["stack (fast path on): start"] = time.monotonic() - t0
            if fuzz is not None and not fuzz.done():
                with self.timed("stack (fast path on): waiting for the fuzz to end"):
                    await asyncio.wait([fuzz])
            with self.timed("stack (fast path on): settle before the idle RSS"):
                await asyncio.sleep(memory.SETTLE_S)
            idle = memory.snapshot(stack)
            say(f"  up; idle RSS {idle}")
            await self.on_stack(stack, idle)
            t0 = time.monotonic()
        self.steps["stack (fast path on): stop"] = time.monotonic() - t0
        if self.args.all:
            await self.compare()
        else:
            self.notes.append(BEYOND_NOTE)
        await self.own_stacks()

    async def compare(self) -> None:
        """The runs that show what a setting buys, each on a stack started with it."""
        fast = self.outcomes.get("signal_to_order")
        if fast is not None and not fast.skipped and self.fast_series is not None:
            say("starting a second stack (fast path off) …")
            try:
                with self.timed("3. Signal-to-order, fast path off (stack of its own)",
                                "signal_to_order"):
                    async with full_stack(self.limits, self.work / "slow",
                                          fast_path=False) as slow:
                        series = await self.series(slow)
                signal_to_order.with_fast_path_off(fast, self.fast_series, series)
            except (BenchFailure, StackError) as exc:
                say(f"fast path off: FAILED: {exc}")
                fast.notes.append(f"fast path off: failed: {exc}")
        flooded = self.outcomes.get("flood")
        if flooded is not None and not flooded.skipped:
            with self.timed("4c. Anonymous flood, limit off (stack of its own)", "flood"):
                await self.flood_limit_off(flooded)

    async def own_stacks(self) -> None:
        if "candle_close" in self.wanted:
            await self.candle_close()
        if "cost" in self.wanted:
            profile_dir = self.work / "profile-cost" if self.args.profile else None
            self.outcomes["cost"] = await self.measured(
                "2b. Cost per trade (stack of its own)", "cost",
                lambda: cost.measure(self.limits, self.work,
                                     trades=self.n(cost.DEFAULT_N, cost.QUICK_N),
                                     profile_dir=profile_dir))
        if "close_many" in self.wanted:
            self.outcomes["close_many"] = await self.measured(
                "4e. One exit alert closing many trades (stack of its own)", "close_many",
                lambda: close_many.measure(
                    self.limits, self.work, progress=say,
                    trades=self.n(close_many.TRADES, close_many.QUICK_TRADES),
                    rounds=self.n(close_many.ROUNDS, close_many.QUICK_ROUNDS)))
        await self.two_workers()

    async def candle_close(self) -> None:
        """On stacks of its own: more symbols than the bundled pairs, and BitUnix's real limits
        on the second."""
        out = await self.measured("4d. Candle close (limits raised, stack of its own)",
                                  "candle_close",
                                  lambda: candle_close.raised(self.limits, self.work))
        self.outcomes["candle_close"] = out
        if out.skipped or self.quick or not self.args.all:
            return
        say("4d. Candle close under BitUnix's real limits …")
        try:
            with self.timed("4d. Candle close under real limits, one worker (stack of its own)",
                            "candle_close"):
                await candle_close.real_limits(self.limits, self.work, out)
            say(f"  {out.rows[-1].metric}: {out.rows[-1].value} {out.rows[-1].verdict}")
        except (BenchFailure, StackError) as exc:
            say(f"real limits: FAILED: {exc}")
            out.notes.append(f"real limits: failed: {exc}")

    async def two_workers(self) -> None:
        """On a stack of its own, under BitUnix's real limits, with a second worker."""
        if "two_workers" in self.wanted:
            self.outcomes["two_workers"] = await self.measured(
                "7. Two workers, one request budget (stack of its own)", "two_workers",
                lambda: two_workers.measure(self.limits, self.work))

    async def flood_limit_off(self, main: Outcome) -> None:
        """The flood series again on a stack whose per-address limit is out of reach."""
        say("starting a third stack (anonymous limit off) …")
        try:
            async with full_stack(self.limits, self.work / "nolimit", fast_path=True,
                                  extra_env=flood.LIMIT_OFF_ENV) as stack:
                idle, flooded, rows = await flood.phases(stack, self.limits,
                                                         duration_s=self.flood_duration())
            flood.with_limit_off(main, idle, flooded, rows)
            for row in main.rows:
                if row.metric.startswith("limit OFF"):
                    say(f"  {row.metric}: {row.value}")
        except (BenchFailure, StackError) as exc:
            say(f"anonymous limit off: FAILED: {exc}")
            main.notes.append(f"limit OFF: failed: {exc}")

    def flood_duration(self) -> int:
        return self.n(flood.DURATION_S, flood.QUICK_DURATION_S)

    async def flood(self, stack: Stack) -> Outcome:
        from settings import Settings

        duration = self.flood_duration()
        idle, flooded, rows = await flood.phases(stack, self.limits, duration_s=duration)
        # Our stacks run with the default; a running one with what its environment says.
        recorded = (Settings().anonymous_recorded_per_min if stack.up is None
                    else Settings.model_fields["anonymous_recorded_per_min"].default)
        return flood.outcome(idle, flooded, rows, recorded_per_min=recorded,
                             duration_s=duration)

    async def fuzz(self) -> Outcome:
        n = self.args.fuzz_n or self.n(precision_fuzz.DEFAULT_N, precision_fuzz.QUICK_N)
        if self.args.pairs_file:
            runs = [(p, self.args.tickers_file, n) for p in self.args.pairs_file]
        else:
            real_n = max(n // 10, 100)
            runs = [(None, None, n), (precision_fuzz.REAL_PAIRS_FILE, None, real_n)]
        return await precision_fuzz.measure(self.limits, self.work / "fuzz", runs=runs,
                                            seed=self.args.seed, progress=say)

    async def series(self, stack: Stack) -> signal_to_order.Series:
        strategy = await asyncio.to_thread(
            add_strategy, stack, f"bench-s2o-{uuid.uuid4().hex[:6]}",
            rate_limit_per_min=self.limits.webhook_rate_limit_per_min,
            size=signal_to_order.SIZE)
        n = self.n(signal_to_order.DEFAULT_N, signal_to_order.QUICK_N)
        return await signal_to_order.run_series(stack, strategy, n)

    async def profiled_series(self, stack: Stack) -> signal_to_order.Series:
        pids = {role: pid for role, pid in memory.stack_processes(stack).items()
                if role in ("webhook", "worker")}
        async with profile.sampling(pids, self.work / "profile") as files:
            series = await self.series(stack)
        self.outcomes["profile"] = Outcome(
            name="profile", title="Profile (py-spy) during signal-to-order, fast path on",
            details={role: profile.summarize(path) for role, path in files.items()},
            notes=[f"py-spy record --rate {profile.RATE_HZ} on the webhook and worker processes "
                   "for the whole series; % of busy samples (idle threads excluded); the "
                   "inclusive list names Tradewire's own functions (time in them and below)"],
        )
        return series

    async def on_stack(self, stack: Stack, idle: dict[str, float]) -> None:
        from settings import PAPER_API_KEY, PAPER_API_SECRET, Settings

        if "floor" in self.wanted or "signal_to_order" in self.wanted:
            key, secret = PAPER_API_KEY, PAPER_API_SECRET
            if stack.up is None:  # a running stack: its own paper key, from the environment
                settings = Settings()
                key, secret = settings.paper_api_key, settings.paper_api_secret.get_secret_value()
            endpoint = ExchangeEndpoint(stack.exchange_url, key, secret)
            n = self.n(floor.DEFAULT_N, floor.QUICK_N)
            out = await self.measured("1. Floor", "floor",
                                      lambda: floor.measure(endpoint, n=n))
            self.outcomes["floor"] = out
            if not out.skipped:
                self.floor_send = out.details["send_to_receive_ms"]
        if self.wanted & {"signal_to_order", "ack"}:
            async def s2o() -> Outcome:
                if self.args.profile and stack.up is not None:
                    self.fast_series = await self.profiled_series(stack)
                else:
                    self.fast_series = await self.series(stack)
                return signal_to_order.outcome(self.fast_series, self.floor_send)

            self.outcomes["signal_to_order"] = await self.measured(
                "2. Signal-to-order (fast path on)", "signal_to_order", s2o)
            if self.fast_series is not None:
                self.outcomes["ack"] = ack.outcome(self.fast_series)
            if "signal_to_order" not in self.wanted:
                self.outcomes.pop("signal_to_order")
        if "flood" in self.wanted:
            self.outcomes["flood"] = await self.measured(
                "4c. Anonymous flood", "flood", lambda: self.flood(stack))
        if "memory" in self.wanted:
            trades = self.n(memory.OPEN_TRADES, memory.QUICK_OPEN_TRADES)
            window = memory.QUICK_RATE_WINDOW_S if self.quick else memory.RATE_WINDOW_S
            every = self.n(memory.TRACKING_INTERVAL_S, memory.QUICK_TRACKING_INTERVAL_S)
            self.outcomes["memory"] = await self.measured(
                "5. Memory and tracking cost", "memory",
                lambda: memory.measure(stack, self.limits, idle, trades=trades, window_s=window,
                                       tracking_interval_s=every))
        if "burst" in self.wanted:
            duration = self.n(burst.DURATION_S, burst.QUICK_DURATION_S)
            self.outcomes["burst"] = await self.measured(
                "4b. Burst", "burst",
                lambda: burst.measure(stack, self.limits, duration_s=duration))

    def settings_used(self) -> dict[str, object]:
        used: dict[str, object] = {f"TRADEWIRE_{k.upper()}": v
                                   for k, v in self.limits.describe().items()
                                   if k != "webhook_rate_limit_per_min"}
        used["strategy rate limit (tradewire strategy add --rate-limit)"] = (
            f"{self.limits.webhook_rate_limit_per_min}/min")
        used["TRADEWIRE_PAPER_TICK_INTERVAL_S"] = "86400 (random walk off: prices move "\
            "only through the admin API)"
        used["TRADEWIRE_FAST_PATH"] = ("true (measurements 1, 2, 4, 5); false (3, with "
                                       "--all)")
        used["TRADEWIRE_ANONYMOUS_*"] = ("defaults (measurement 4c); burst and per-minute "
                                         "raised to 100000000 on 4c's limit-off stack")
        used["quick"] = self.quick
        used["all"] = self.args.all
        return used


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = datetime.now(UTC)
    t0 = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="tradewire-bench-"))
    bench = Bench(args, work)
    try:
        asyncio.run(bench.run())
    finally:
        if args.keep:
            say(f"state dirs and logs kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    outcomes = [bench.outcomes[name] for name in ORDER if name in bench.outcomes]
    for outcome in outcomes:
        if outcome.name in bench.wall:
            outcome.wall_s = round(bench.wall[outcome.name], 1)
    doc = report.document(
        command="make bench" if argv is None and len(sys.argv) == 1
        else "python -m bench " + " ".join(sys.argv[1:] if argv is None else argv),
        quick=args.quick, started=started, duration_s=time.monotonic() - t0,
        machine=machine(), versions=versions(), settings=bench.settings_used(),
        notes=bench.notes, outcomes=outcomes, steps=bench.steps,
    )
    md, js = report.write(doc, outcomes, args.out)
    say(f"wrote {md} and {js} in {doc['duration_s']} s")
    for missed in doc["targets_missed"]:
        say(f"target missed: {missed}")
    failed = [o for o in outcomes if o.skipped and o.skipped.startswith("failed")]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
