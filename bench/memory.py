"""Memory and tracking cost: idle RSS of every Python process of the stack (webhook, worker,
paper exchange, dashboard, `up` itself; target TARGET_IDLE_MIB each), the webhook's and the
worker's with 500 open tracking trades (the slope per open trade), each process's private part
(USS) beside its RSS, and the exchange requests per second, per endpoint, that tracking them
costs: target, no more than the account watcher's own reads, whatever the trades' timers do.

The rate with open trades is counted over a window that holds every trade's own re-check:
the longest periodic timer a TRACKING trade has is its strategy's tracking interval
(workflows/tracking.py check_every; TPSL_RECHECK_S, SECOND_READ_S and the trailing check are
shorter). The bench strategy's interval is TRACKING_INTERVAL_S (the default, 300 s, would make
the window longer than the whole bench's budget; a shorter interval only makes the re-checks
more frequent), and the window is RECHECK_WINDOWS of them."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.alerts import AlertPoster, BenchFailure, add_strategy, close_body, open_body
from bench.burst import SIZES
from bench.limits import BenchLimits
from bench.paper_admin import PaperAdmin
from bench.report import Outcome, Row
from bench.stack import Stack
from bench.stackdb import refusal_reasons, trade_statuses

OPEN_TRADES = 500
QUICK_OPEN_TRADES = 60
RATE_WINDOW_S = 8.0  # idle: the watcher's reads alone (a round every 2 s)
QUICK_RATE_WINDOW_S = 5.0
# The trades' own re-check (`tradewire strategy add --tracking-interval`), and how many of
# them the window with open trades spans: every trade's timer comes due in it at least once.
TRACKING_INTERVAL_S = 30
QUICK_TRACKING_INTERVAL_S = 10
RECHECK_WINDOWS = 1.5
# BitUnix's limit per endpoint (requests/s); no endpoint may come near it because of tracking.
ENDPOINT_LIMIT_PER_S = 10
SETTLE_S = 3.0
# Bounds that keep `make bench` within its budget on a slow stack; what did not get there in
# time is reported, not waited for.
OPEN_SEND_S = 30.0
OPEN_WAIT_S = 30.0
CLOSE_WAIT_S = 30.0
ANSWER_TIMEOUT_S = 15.0
TARGET_IDLE_MIB = 100.0
SETTLED = {"TRACKING", "CLOSED", "CANCELLED", "FAILED", "REFUSED"}  # not PENDING/ENTERING
ROLES = {"web": "webhook", "worker": "worker", "exchange": "paper exchange"}
# Every Python process of the stack, each held to TARGET_IDLE_MIB: `up` runs the dashboard
# (`cli ui`) too, and is one itself (the supervisor, which holds the embedded PostgreSQL).
DASHBOARD = "dashboard"
UP = "tradewire up"
PYTHON_PROCESSES = ("webhook", "worker", "paper exchange", DASHBOARD, UP)


def private_kib(pid: int) -> int | None:
    """What the process holds alone (USS: private clean + dirty pages). RSS counts the shared
    libraries' pages too (Temporal's Rust bridge, libpython, OpenSSL: 35-40 MiB in each of the
    webhook, worker, dashboard and `up`), which the machine holds once."""
    try:
        rollup = Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]
    except (OSError, IndexError):
        return None
    fields = {line.split(":")[0]: int(line.split()[1]) for line in rollup if line.endswith("kB")}
    return fields.get("Private_Clean", 0) + fields.get("Private_Dirty", 0)


def rss_kib(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def _cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return []


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == pid:
            found.append(int(entry.name))
    return found


def stack_processes(stack: Stack) -> dict[str, int]:
    """role → pid for the children of our `up` process ("webhook", "worker", …)."""
    if stack.up is None:
        return {}
    roles: dict[str, int] = {}
    for pid in _children(stack.up.pid):
        argv = _cmdline(pid)
        if len(argv) >= 4 and argv[1:3] == ["-m", "cli"] and argv[3] in ROLES:
            roles[ROLES[argv[3]]] = pid
        elif argv and Path(argv[0]).name == "temporal":
            roles["temporal dev server"] = pid
    return roles


def _measured(stack: Stack) -> dict[str, int]:
    """role → pid: stack_processes, the dashboard and the `up` process itself."""
    roles = stack_processes(stack)
    if stack.up is not None:
        for pid in _children(stack.up.pid):
            argv = _cmdline(pid)
            if len(argv) >= 4 and argv[1:3] == ["-m", "cli"] and argv[3] == "ui":
                roles[DASHBOARD] = pid
        roles[UP] = stack.up.pid
    return roles


def snapshot(stack: Stack, reading: Callable[[int], int | None] = rss_kib) -> dict[str, float]:
    """role → RSS in MiB (or what `reading` gives, in KiB, converted) of each process `up`
    started and of `up` itself, which holds PostgreSQL's handle."""
    out = {role: reading(pid) for role, pid in _measured(stack).items()}
    return {role: round(kib / 1024, 1) for role, kib in out.items() if kib is not None}


def private_snapshot(stack: Stack) -> dict[str, float]:
    """role → USS in MiB (private_kib)."""
    return snapshot(stack, private_kib)


async def request_rate(admin: PaperAdmin, window_s: float) -> dict[str, Any]:  # float-ok: seconds
    """Requests/s the exchange received over the next `window_s` seconds, by path."""
    start = time.time_ns()
    await asyncio.sleep(window_s)
    log = [e for e in await admin.requests(since_ns=start)
           if e["t_ns"] < start + int(window_s * 1e9)]
    by_path = Counter(e["path"].removeprefix("/api/v1/futures/") for e in log)
    return {
        "per_s": round(len(log) / window_s, 2),
        "by_path_per_s": {p: round(n / window_s, 2) for p, n in by_path.most_common()},
    }


async def _wait_statuses(stack: Stack, name: str, done: set[str], count: int,
                         timeout_s: float) -> dict[str, int]:  # float-ok: seconds
    """The strategy's trades by status, once `count` of them are in `done` or the time is up."""
    deadline = time.monotonic() + timeout_s
    while True:
        statuses = await trade_statuses(stack, [name])
        if sum(n for s, n in statuses.items() if s in done) >= count:
            return statuses
        if time.monotonic() > deadline:
            return statuses
        await asyncio.sleep(0.5)


async def measure(stack: Stack, limits: BenchLimits, idle_at_start: dict[str, float], *,
                  trades: int = OPEN_TRADES, window_s: float = RATE_WINDOW_S,  # float-ok: seconds
                  tracking_interval_s: int = TRACKING_INTERVAL_S) -> Outcome:
    admin = PaperAdmin(stack.exchange_url)
    poster = AlertPoster(stack.webhook_url, connections=20, timeout_s=ANSWER_TIMEOUT_S)
    run = uuid.uuid4().hex[:6]
    name = f"bench-track-{run}"
    strategy = await asyncio.to_thread(
        add_strategy, stack, name, rate_limit_per_min=limits.webhook_rate_limit_per_min,
        size=SIZES["BTCUSDT"], tracking_interval_s=tracking_interval_s)
    loaded_window_s = tracking_interval_s * RECHECK_WINDOWS
    symbols = list(SIZES)
    try:
        idle_warm = snapshot(stack)
        private_warm = private_snapshot(stack)
        rate_idle = await request_rate(admin, window_s)
        gate = asyncio.Semaphore(20)

        t0 = time.monotonic()

        async def open_one(k: int) -> str:
            symbol = symbols[k % len(symbols)]
            body = open_body(strategy, symbol, f"{run}-{k}") | {"size": SIZES[symbol]}
            async with gate:
                if time.monotonic() - t0 > OPEN_SEND_S:
                    return "not sent (time budget)"
                return str((await poster.post(body)).status)

        answers = Counter(await asyncio.gather(*(open_one(k) for k in range(trades))))
        if not answers.get("202"):
            raise BenchFailure(f"no tracking open was accepted: answers {dict(answers)}")
        # The request rate below is tracking's alone only once no entry is still under way.
        statuses = await _wait_statuses(stack, name, SETTLED, answers["202"], OPEN_WAIT_S)
        opened_s = time.monotonic() - t0
        # The checks the entries' fills woke (the watcher signals them as it sees the fills, a
        # round or more behind under load) are over within an interval: what follows is
        # tracking at rest, the trades' own timers and the watcher.
        await asyncio.sleep(max(SETTLE_S, tracking_interval_s))
        tracking = (await trade_statuses(stack, [name])).get("TRACKING", 0)
        loaded = snapshot(stack)
        private_loaded = private_snapshot(stack)
        rate_loaded = await request_rate(admin, loaded_window_s)
        t1 = time.monotonic()
        for symbol in symbols:
            await poster.post(close_body(strategy, symbol, f"{run}-close-{symbol}"))
        closed = await _wait_statuses(stack, name, {"CLOSED"}, tracking, CLOSE_WAIT_S)
        closed_s = time.monotonic() - t1
    finally:
        await poster.aclose()
        await admin.aclose()
    timing = {"open_alerts": trades, "open_answers": dict(answers),
              "refused_or_failed": await refusal_reasons(stack, [name]),
              "statuses_after_opening": statuses, "statuses_after_closing": closed,
              "open_s": round(opened_s, 1), "close_s": round(closed_s, 1),
              "tracking_interval_s": tracking_interval_s,
              "rate_window_s": {"idle": window_s, "open_trades": loaded_window_s}}
    outcome = _outcome(idle_at_start, idle_warm, loaded, rate_idle, rate_loaded, tracking,
                       timing, window_s, loaded_window_s, tracking_interval_s,
                       private={"idle_warm": private_warm, "loaded": private_loaded})
    if tracking < trades:
        outcome.notes.append(f"only {tracking} of {trades} opens were TRACKING "
                             f"{OPEN_WAIT_S:.0f} s after the last was answered (opens sent for "
                             f"at most {OPEN_SEND_S:.0f} s; answers {dict(answers)}; statuses "
                             f"{statuses}); measured with those")
    entering = sum(n for st, n in statuses.items() if st not in SETTLED)
    if entering:
        outcome.notes.append(f"{entering} trades were still PENDING or ENTERING when the request "
                             "rate was measured: their entry requests are in it")
    if closed.get("CLOSED", 0) < tracking:
        outcome.notes.append(f"{CLOSE_WAIT_S:.0f} s after the exit alerts: {closed}")
    return outcome


def _outcome(idle: dict[str, float], warm: dict[str, float], loaded: dict[str, float],
             rate_idle: dict[str, Any], rate_loaded: dict[str, Any], trades: int,
             timing: dict[str, Any], window_s: float, loaded_window_s: float,  # float-ok: s
             interval_s: int, private: dict[str, dict[str, float]] | None = None) -> Outcome:
    rows = []
    slopes = {}
    private_slopes = {}
    private = private or {}
    private_warm, private_loaded = private.get("idle_warm", {}), private.get("loaded", {})
    for role in PYTHON_PROCESSES:
        if role not in idle:
            rows.append(Row(f"{role} RSS idle", "process not found"))
            continue
        rows.append(Row(f"{role} RSS idle", f"{idle[role]:.1f} MiB",
                        f"≤ {TARGET_IDLE_MIB:g} MiB",
                        "met" if idle[role] <= TARGET_IDLE_MIB else "MISSED"))
        if role not in ("webhook", "worker"):
            continue
        if role in warm and role in loaded and trades:
            slope = (loaded[role] - warm[role]) * 1024 / trades
            slopes[role] = round(slope, 1)
            rows.append(Row(f"{role} RSS with {trades} open trades (slope)",
                            f"{loaded[role]:.1f} MiB ({slope:+.1f} KiB/trade)"))
        if role in private_warm and role in private_loaded and trades:
            private_slopes[role] = round(
                (private_loaded[role] - private_warm[role]) * 1024 / trades, 1)
    rows += rate_rows(rate_idle, rate_loaded, trades, interval_s)
    return Outcome(
        name="memory",
        title="5. Memory and tracking cost",
        rows=rows,
        details={
            "rss_mib_idle_at_start": idle, "rss_mib_idle_warm": warm,
            f"rss_mib_{trades}_open_trades": loaded, "slope_kib_per_trade": slopes,
            "uss_mib_idle_warm": private_warm, f"uss_mib_{trades}_open_trades": private_loaded,
            "slope_kib_per_trade_uss": private_slopes,
            "exchange_requests_idle": rate_idle,
            f"exchange_requests_{trades}_open_trades": rate_loaded,
            "requests_per_s": {"0": rate_idle["per_s"], str(trades): rate_loaded["per_s"]},
            "requests_per_s_by_endpoint": {"0": rate_idle["by_path_per_s"],
                                           str(trades): rate_loaded["by_path_per_s"]},
            "tracking_requests_per_s": round(rate_loaded["per_s"] - rate_idle["per_s"], 2),
            **timing,
        },
        notes=[
            "RSS (VmRSS) of each process `up` started, and of `up`; idle = right after `up` "
            "reported ready; the slope is from the warm idle (after the signal-to-order series) "
            f"to {trades} TRACKING trades",
            "uss_mib_*: the private part of each process's RSS (smaps_rollup Private_*); the "
            "rest is shared library pages (Temporal's Rust bridge, libpython, OpenSSL, …) the "
            "machine holds once for every process",
            f"request rate: every BitUnix-path request the paper exchange logged, over "
            f"{window_s:g} s idle and over {loaded_window_s:g} s with the trades open (each "
            f"trade re-checks on its own every {interval_s} s, the bench strategy's tracking "
            "interval: every re-check is in the window)",
        ],
    )


def rate_rows(idle: dict[str, Any], loaded: dict[str, Any], trades: int,
              interval_s: int) -> list[Row]:
    """The total, tracking's share against the watcher's reads (the target), and each
    endpoint's rate idle → loaded against BitUnix's limit per endpoint."""
    extra = round(loaded["per_s"] - idle["per_s"], 2)
    rows = [
        Row(f"exchange requests/s: 0 → {trades} open trades (re-checks every {interval_s} s)",
            f"{idle['per_s']:g} → {loaded['per_s']:g}"),
        Row(f"requests/s the {trades} open trades add (the watcher's own: {idle['per_s']:g})",
            f"{extra:+g}", f"≤ {idle['per_s']:g}",
            "met" if extra <= idle["per_s"] else "MISSED"),
    ]
    paths = list(dict.fromkeys([*loaded["by_path_per_s"], *idle["by_path_per_s"]]))
    for path in paths:
        before = idle["by_path_per_s"].get(path, 0)
        after = loaded["by_path_per_s"].get(path, 0)
        rows.append(Row(f"  {path}: 0 → {trades} open trades", f"{before:g} → {after:g}",
                        f"< {ENDPOINT_LIMIT_PER_S}/s",
                        "met" if after < ENDPOINT_LIMIT_PER_S else "MISSED"))
    return rows
