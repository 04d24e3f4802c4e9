"""Anonymous flood: valid-alert ack latency with no flood, then during a flood of 300
deliveries/s without a valid secret from one address (issue 20, deliverable 4).

The webhook limits callers without a valid secret per source address (webhook/ratelimit.py
AnonymousLimiter), so the flood must come from another address than the valid alerts: the
flood's connections are bound to 127.0.0.2 (any 127.0.0.0/8 address is loopback on Linux and
reaches a server bound to 127.0.0.1), the valid alerts come from 127.0.0.1.

The flood runs in a child process (`python -m bench.flood …`), so its client work does not
delay the valid alerts' event loop and inflate what is measured. Each flood request goes out
on its own task at its scheduled time (request k at k/rate s), its body one of FLOOD_KINDS in
turn: a wrong secret for the bench strategy, no secret, an unknown strategy, bytes that are
not JSON, JSON nested too deep.

The valid alerts are opens, one at a time (the next once the previous trade is past its entry,
and at most one per VALID_INTERVAL_S), as measurement 4a sends them; their trades are closed
after each phase. The same series runs on a second stack with the per-address limit raised
out of reach, to show what the limit buys.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench.alerts import (
    WEBHOOK_PATH,
    Ack,
    AlertPoster,
    BenchFailure,
    BenchStrategy,
    add_strategy,
    close_body,
    open_body,
)
from bench.limits import BenchLimits
from bench.memory import stack_processes
from bench.report import Outcome, Row, ms
from bench.signal_to_order import SIZE, SYMBOL
from bench.stack import REPO, Stack
from bench.stackdb import TradeWatch, fetch, trade_statuses
from bench.stats import summary

RATE_PER_S = 300
DURATION_S = 30
QUICK_DURATION_S = 8
FLOOD_SOURCE = "127.0.0.2"
VALID_SOURCE = "127.0.0.1"
VALID_INTERVAL_S = 0.2  # at most 5 valid alerts/s: each trade costs ~150 ms of CPU here
WARMUP = 10
LEAD_S = 1.0  # the flood runs this long before the valid alerts start, and after they end
SETTLE_TIMEOUT_S = 10.0
# After each phase its trades are closed and the next phase waits until they are: closing
# ~100 trades takes longer than 30 s on a busy 2-core machine, and a phase must not measure
# the previous one's exits.
CLOSE_WAIT_S = 300.0
TERMINAL = ("CLOSED", "CANCELLED", "FAILED", "REFUSED")
FLOOD_CONNECTIONS = 200  # below the webhook's 256 (TRADEWIRE_HTTP_LIMIT_CONCURRENCY)
FLOOD_TIMEOUT_S = 10.0
SEND_SLACK_S = 5.0  # the flood's schedule may slip this much before the rest is not sent
CHILD_START_S = 60.0
FLOOD_KINDS = ("wrong_secret", "no_secret", "unknown_strategy", "not_json", "nested")
# The per-address limit raised out of reach (TRADEWIRE_ANONYMOUS_*): the record cap stays.
LIMIT_OFF_ENV = {"TRADEWIRE_ANONYMOUS_BURST": "100000000",
                 "TRADEWIRE_ANONYMOUS_PER_MIN": "100000000"}


# --- pure helpers ------------------------------------------------------------------------------


def flood_body(k: int, strategy: str) -> bytes:
    """The k-th flood body: FLOOD_KINDS in turn, each refused before or at the secret check."""
    kind = FLOOD_KINDS[k % len(FLOOD_KINDS)]
    alert: dict[str, Any] = {"strategy": strategy, "ticker": SYMBOL, "action": "buy",
                             "market_position": "long", "prev_market_position": "flat",
                             "alert_id": f"flood-{k}"}
    if kind == "wrong_secret":
        alert["secret"] = f"not-the-secret-{k}"
    elif kind == "unknown_strategy":
        alert |= {"strategy": f"no-such-strategy-{k}", "secret": "whatever"}
    elif kind == "not_json":
        return b"\x00junk " + str(k).encode() + b" {not json"
    elif kind == "nested":
        return b'{"secret":' + b'{"a":' * 20 + b"1" + b"}" * 20 + b"}"
    return json.dumps(alert, separators=(",", ":")).encode()


def schedule(rate: int, duration_s: float) -> list[float]:  # float-ok: seconds
    """Send offsets in seconds: request k at k/rate, for `duration_s`."""
    return [k / rate for k in range(math.ceil(rate * duration_s))]


def recorded_bound(recorded_per_min: int, duration_s: float) -> int:  # float-ok: seconds
    """The most signal rows one address can write in `duration_s`: the cap per minute window,
    for every window the flood touches (a window opens at the address's first refusal)."""
    return recorded_per_min * (math.floor(duration_s / 60) + 1)


def ratio(over: float, base: float) -> float | None:  # float-ok: a ratio of latencies
    return round(over / base, 2) if base > 0 else None


def by_class(statuses: dict[str, int]) -> dict[str, int]:
    """Flood answers as the report states them: 429 (throttled before the body was read),
    401/422 (refused at the secret or the parse), other."""
    out = {"429": 0, "401/422": 0, "other": 0}
    for status, n in statuses.items():
        key = status if status == "429" else "401/422" if status in ("401", "422") else "other"
        out[key] += n
    return out


# --- the flood (child process) -----------------------------------------------------------------
# A raw HTTP/1.1 client on asyncio streams, not httpx: the flood shares the machine's cores
# with the stack, and httpx's cost per request (several times this one's) capped the rate the
# flood reached, so the stack was measured against less than the rate asked for.


def request_bytes(host: str, body: bytes) -> bytes:
    head = (f"POST {WEBHOOK_PATH} HTTP/1.1\r\nHost: {host}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n")
    return head.encode("ascii") + body


def parse_head(head: bytes) -> tuple[int, int, bool]:
    """(status, Content-Length, the server closes the connection) of a response head."""
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
        raise ValueError(f"not an HTTP/1.x status line: {lines[0][:80]!r}")
    length, close = 0, False
    for line in lines[1:]:
        name, _, value = line.partition(":")
        name, value = name.strip().lower(), value.strip().lower()
        if name == "content-length":
            length = int(value)
        elif name == "connection":
            close = "close" in value
    return int(parts[1]), length, close


class RawClient:
    """Keep-alive connections from `source` to `host:port`, at most `connections` at once; a
    connection the server closes (it does after a 429) is replaced by a new one."""

    def __init__(self, url: str, source: str, connections: int) -> None:
        parsed = httpx.URL(url)
        self.host, self.port = parsed.host, parsed.port or 80
        self.source = source
        self.gate = asyncio.Semaphore(connections)
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
        self.opened = 0

    async def post(self, body: bytes) -> int:
        """The answer's status, or 0 when none came (refused, reset, timed out)."""
        async with self.gate:
            conn = self.idle.pop() if self.idle else None
            try:
                if conn is None:
                    conn = await asyncio.open_connection(self.host, self.port,
                                                         local_addr=(self.source, 0))
                    self.opened += 1
                reader, writer = conn
                writer.write(request_bytes(f"{self.host}:{self.port}", body))
                async with asyncio.timeout(FLOOD_TIMEOUT_S):
                    status, length, close = parse_head(await reader.readuntil(b"\r\n\r\n"))
                    await reader.readexactly(length)
            except (OSError, TimeoutError, ValueError, asyncio.IncompleteReadError,
                    asyncio.LimitOverrunError):
                if conn is not None:
                    conn[1].close()
                return 0
            if close:
                writer.close()
            else:
                self.idle.append(conn)
            return status

    def close(self) -> None:
        for _, writer in self.idle:
            writer.close()
        self.idle.clear()


async def _one(client: RawClient, body: bytes, start: float) -> tuple[int, float, float]:  # float-ok: seconds
    """(status, answer ms, when the answer came in seconds since `start`)."""
    t0 = time.perf_counter()
    status = await client.post(body)
    t1 = time.perf_counter()
    return status, (t1 - t0) * 1000, t1 - start


async def flood(url: str, strategy: str, *, rate: int, duration_s: float,  # float-ok: seconds
                source: str = FLOOD_SOURCE, ready: Any = None) -> dict[str, Any]:
    """`rate` deliveries/s without a valid secret from `source` for `duration_s`; each on its
    own task at its scheduled time. `ready` is called once the client is set up."""
    client = RawClient(url, source, FLOOD_CONNECTIONS)
    offsets = schedule(rate, duration_s)
    bodies = [flood_body(k, strategy) for k in range(len(offsets))]
    if ready is not None:
        ready()
    start = time.perf_counter() + 0.05
    tasks = []
    try:
        for offset, body in zip(offsets, bodies, strict=True):
            due = start + offset
            now = time.perf_counter()
            if now - due > SEND_SLACK_S:
                break
            if due > now:
                await asyncio.sleep(due - now)
            tasks.append(asyncio.create_task(_one(client, body, start)))
        span = time.perf_counter() - start
        answers = await asyncio.gather(*tasks)
    finally:
        client.close()
    statuses = Counter(str(status) for status, _, _ in answers)
    answered = [at for status, _, at in answers if status]
    return {
        "scheduled": len(offsets), "sent": len(answers), "sent_over_s": round(span, 2),
        "answered_per_s": answered_rate(answered, duration_s),
        "connections_opened": client.opened,
        "client_cpu_s": round(time.process_time(), 2),
        "statuses": dict(sorted(statuses.items())),
        "answer_ms": summary(t for _, t, _ in answers),
    }


def answered_rate(answered_at: list[float], duration_s: float) -> float:  # float-ok: a rate
    """Answers per second over the flood's scheduled window (answers after it not counted):
    the rate the webhook actually served, whatever the rate asked for."""
    return round(sum(1 for at in answered_at if at <= duration_s) / duration_s, 1)


def child_main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.flood")
    p.add_argument("--url", required=True)
    p.add_argument("--strategy", required=True)
    p.add_argument("--rate", type=int, default=RATE_PER_S)
    p.add_argument("--duration", type=float, required=True)  # float-ok: seconds
    p.add_argument("--source", default=FLOOD_SOURCE)
    args = p.parse_args(argv)

    def ready() -> None:
        print("ready", flush=True)

    result = asyncio.run(flood(args.url, args.strategy, rate=args.rate,
                               duration_s=args.duration, source=args.source, ready=ready))
    print(json.dumps(result), flush=True)
    return 0


@dataclass
class FloodChild:
    """`python -m bench.flood` running; `result()` waits for its JSON line."""

    proc: asyncio.subprocess.Process

    @classmethod
    async def start(cls, stack: Stack, strategy: str, *, rate: int,
                    duration_s: float) -> FloodChild:  # float-ok: seconds
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bench.flood", "--url", stack.webhook_url,
            "--strategy", strategy, "--rate", str(rate), "--duration", str(duration_s),
            cwd=REPO, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        child = cls(proc)
        assert proc.stdout is not None
        try:
            line = await asyncio.wait_for(proc.stdout.readline(), CHILD_START_S)
        except TimeoutError:
            line = b""
        if line.strip() != b"ready":
            await child.stop()
            err = await proc.stderr.read() if proc.stderr is not None else b""
            raise BenchFailure(f"the flood client did not start: {line!r}; "
                               f"{err.decode(errors='replace')[-500:]}")
        return child

    async def result(self) -> dict[str, Any]:
        out, err = await self.proc.communicate()
        if self.proc.returncode != 0:
            raise BenchFailure(f"the flood client exited with {self.proc.returncode}: "
                               f"{err.decode(errors='replace')[-500:]}")
        return dict(json.loads(out.decode().strip().splitlines()[-1]))

    async def stop(self) -> None:
        if self.proc.returncode is None:
            self.proc.kill()  # our own child, by its pid
            await self.proc.wait()


# --- the valid alerts --------------------------------------------------------------------------


@dataclass
class Phase:
    label: str
    acks: list[Ack] = field(default_factory=list)
    flood: dict[str, Any] | None = None
    webhook_cpu: float | None = None  # float-ok: the webhook's CPU, a share of one core

    @property
    def accepted_ms(self) -> list[float]:
        return [a.ack_ms for a in self.acks if a.status == 202]

    def details(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "ack_ms": summary(self.accepted_ms),
            "valid_statuses": dict(Counter(str(a.status) for a in self.acks)),
            "webhook_cpu_share_of_a_core": self.webhook_cpu,
        }
        if self.flood is not None:
            out["flood"] = self.flood | {"by_class": by_class(self.flood["statuses"])}
        return out


class ValidSender:
    """Open alerts from VALID_SOURCE, one at a time over one keep-alive connection."""

    def __init__(self, stack: Stack, strategy: BenchStrategy) -> None:
        self.stack = stack
        self.strategy = strategy
        self.poster = AlertPoster(stack.webhook_url, connections=1)
        self.watch = TradeWatch(stack)
        self.run = uuid.uuid4().hex[:6]
        self.opened = 0  # accepted opens so far (close_batch waits for all of them)
        self.sent = 0

    async def aclose(self) -> None:
        await self.poster.aclose()
        await self.watch.aclose()

    async def series(self, duration_s: float) -> list[Ack]:  # float-ok: seconds
        """Opens for `duration_s`, each once the previous trade is past its entry and at most
        one per VALID_INTERVAL_S."""
        acks: list[Ack] = []
        end = time.perf_counter() + duration_s
        due = time.perf_counter()
        while time.perf_counter() < end:
            now = time.perf_counter()
            if due > now:
                await asyncio.sleep(due - now)
            due = max(time.perf_counter(), due) + VALID_INTERVAL_S
            ack = await self.poster.post(open_body(self.strategy, SYMBOL,
                                                   f"flood-valid-{self.run}-{self.sent}"))
            self.sent += 1
            acks.append(ack)
            if ack.status == 202 and isinstance(ack.body.get("trade_id"), int):
                self.opened += 1
                await self.watch.until_settled(int(ack.body["trade_id"]), SETTLE_TIMEOUT_S)
        return acks

    async def close_all(self) -> None:
        """One exit alert closes every open trade of the strategy; wait until all ended."""
        ack = await self.poster.post(close_body(self.strategy, SYMBOL,
                                                f"flood-valid-{self.run}-x{self.sent}"))
        self.sent += 1
        if ack.status != 202:
            raise BenchFailure(f"exit alert: the webhook answered {ack.status} {ack.body}")
        deadline = time.monotonic() + CLOSE_WAIT_S
        while True:
            statuses = await trade_statuses(self.stack, [self.strategy.name])
            if sum(statuses.get(s, 0) for s in TERMINAL) >= self.opened:
                return
            if time.monotonic() > deadline:
                raise BenchFailure(f"{self.strategy.name}: trades not ended {CLOSE_WAIT_S:.0f} s "
                                   f"after the exit alert: {statuses}")
            await asyncio.sleep(0.2)


def cpu_seconds(pid: int | None) -> float | None:  # float-ok: seconds
    """User + system CPU time of a process so far (Linux /proc), or None."""
    if pid is None:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    # After the command: state is field 3, utime 14 and stime 15 (1-based, man 5 proc).
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class CpuMeter:
    """The webhook's CPU over a phase, as a share of one core."""

    def __init__(self, stack: Stack) -> None:
        self.pid = stack_processes(stack).get("webhook")

    def start(self) -> None:
        self.t0, self.cpu0 = time.monotonic(), cpu_seconds(self.pid)

    def share(self) -> float | None:  # float-ok: a share of a core
        cpu1 = cpu_seconds(self.pid)
        if cpu1 is None or self.cpu0 is None:
            return None
        return round((cpu1 - self.cpu0) / (time.monotonic() - self.t0), 2)


async def flood_rows(stack: Stack, source: str = FLOOD_SOURCE) -> int:
    """Signal rows recorded for deliveries from `source`."""
    (row,) = await fetch(stack, "SELECT count(*) FROM signal WHERE source_ip = :ip",
                         {"ip": source})
    return int(row[0])


async def phases(stack: Stack, limits: BenchLimits, *, duration_s: float,  # float-ok: seconds
                 rate: int = RATE_PER_S) -> tuple[Phase, Phase, int]:
    """(no flood, under the flood, signal rows the flood wrote) on one stack."""
    strategy = await asyncio.to_thread(
        add_strategy, stack, f"bench-flood-{uuid.uuid4().hex[:6]}",
        rate_limit_per_min=limits.webhook_rate_limit_per_min, size=SIZE)
    sender = ValidSender(stack, strategy)
    meter = CpuMeter(stack)
    idle, flooded = Phase("no flood"), Phase(f"{rate}/s anonymous flood")
    try:
        for ack in await sender.series(WARMUP * VALID_INTERVAL_S):
            if ack.status != 202:
                raise BenchFailure(f"warm-up alert: the webhook answered {ack.status} {ack.body}")
        await sender.close_all()
        meter.start()
        idle.acks = await sender.series(duration_s)
        idle.webhook_cpu = meter.share()
        await sender.close_all()
        child = await FloodChild.start(stack, strategy.name, rate=rate,
                                       duration_s=duration_s + 2 * LEAD_S)
        try:
            await asyncio.sleep(LEAD_S)
            meter.start()
            flooded.acks = await sender.series(duration_s)
            flooded.webhook_cpu = meter.share()
            flooded.flood = await child.result()
        finally:
            await child.stop()
        await sender.close_all()
    finally:
        await sender.aclose()
    return idle, flooded, await flood_rows(stack)


def _p99_ratio(idle: Phase, flooded: Phase) -> float | None:  # float-ok: a ratio
    a, b = summary(idle.accepted_ms), summary(flooded.accepted_ms)
    return ratio(b["p99"], a["p99"]) if a.get("n") and b.get("n") else None


def _per_s(flood: dict[str, Any], key: str) -> str:
    span = flood.get("sent_over_s") or 0
    return f"{flood[key] / span:.0f}" if span else "–"


def _lat(phase: Phase) -> str:
    s = summary(phase.accepted_ms)
    if not s.get("n"):
        return "–"
    return f"{ms(s['p50'])} / {ms(s['p99'])} / {ms(s['max'])} (n={s['n']})"


def outcome(idle: Phase, flooded: Phase, rows_written: int, *, recorded_per_min: int,
            duration_s: float, rate: int = RATE_PER_S) -> Outcome:  # float-ok: seconds
    flood = flooded.flood or {"statuses": {}, "sent": 0}
    classes = by_class(flood["statuses"])
    bound = recorded_bound(recorded_per_min, duration_s + 2 * LEAD_S)
    not_ok = sum(1 for a in idle.acks + flooded.acks if a.status != 202)
    r = _p99_ratio(idle, flooded)
    return Outcome(
        name="flood",
        title=f"4c. Anonymous flood: {rate} req/s from one address",
        rows=[
            Row("valid ack p50 / p99 / max, no flood", _lat(idle)),
            Row("valid ack p50 / p99 / max, under the flood", _lat(flooded)),
            Row("p99 under the flood ÷ no flood", f"{r}×" if r is not None else "–"),
            Row("valid alerts not answered 202", str(not_ok), "0", "met" if not not_ok else "MISSED"),
            Row("webhook CPU, share of a core: no flood / under the flood",
                f"{idle.webhook_cpu} / {flooded.webhook_cpu}"),
            Row("flood answered 429 / 401 or 422 / other",
                f"{classes['429']} / {classes['401/422']} / {classes['other']}"),
            Row("flood sent / answered per s (asked for)",
                f"{_per_s(flood, 'sent')} / {flood.get('answered_per_s', '–')} ({rate})"),
            Row("signal rows the flood wrote", str(rows_written), f"≤ {bound}",
                "met" if rows_written <= bound else "MISSED"),
        ],
        details={"rate_per_s": rate, "duration_s": duration_s, "flood_source": FLOOD_SOURCE,
                 "valid_source": VALID_SOURCE, "no_flood": idle.details(),
                 "under_flood": flooded.details(), "flood_rows": rows_written,
                 "flood_rows_bound": bound, "p99_ratio": r},
        notes=[
            f"valid alerts: opens from {VALID_SOURCE} on one keep-alive connection, one at a "
            f"time (the next once the previous trade was TRACKING) and at most one per "
            f"{VALID_INTERVAL_S:g} s, for {duration_s:g} s with no flood, then {duration_s:g} s "
            f"under the flood; {WARMUP} warm-up opens first; the trades closed after each phase",
            f"flood: a child process sends {rate} deliveries/s from {FLOOD_SOURCE} (each on its "
            f"own task, up to {FLOOD_CONNECTIONS} connections), starting {LEAD_S:g} s before "
            f"the valid alerts and ending {LEAD_S:g} s after; bodies in turn: "
            f"{', '.join(FLOOD_KINDS)}",
            f"rows bound: TRADEWIRE_ANONYMOUS_RECORDED_PER_MIN ({recorded_per_min}) per minute "
            "window the flood touches; 429s are answered before the body is read and never "
            "recorded",
        ],
    )


def with_limit_off(main: Outcome, idle: Phase, flooded: Phase, rows_written: int) -> None:
    """Add the same series on a stack whose per-address limit is out of reach."""
    flood = flooded.flood or {"statuses": {}, "sent": 0}
    classes = by_class(flood["statuses"])
    r = _p99_ratio(idle, flooded)
    main.details["limit_off"] = {"env": LIMIT_OFF_ENV, "no_flood": idle.details(),
                                 "under_flood": flooded.details(), "flood_rows": rows_written,
                                 "p99_ratio": r}
    main.rows += [
        Row("limit OFF: valid ack p50 / p99 / max, no flood", _lat(idle)),
        Row("limit OFF: valid ack p50 / p99 / max, under the flood", _lat(flooded)),
        Row("limit OFF: p99 under the flood ÷ no flood", f"{r}×" if r is not None else "–"),
        Row("limit OFF: webhook CPU, share of a core: no flood / under the flood",
            f"{idle.webhook_cpu} / {flooded.webhook_cpu}"),
        Row("limit OFF: valid alerts not answered 202",
            str(sum(1 for a in idle.acks + flooded.acks if a.status != 202))),
        Row("limit OFF: flood answered 429 / 401 or 422 / other; answered per s; rows written",
            f"{classes['429']} / {classes['401/422']} / {classes['other']}; "
            f"{flood.get('answered_per_s', '–')}; {rows_written}"),
    ]
    main.notes.append("limit OFF: a second stack started with "
                      + ", ".join(f"{k}={v}" for k, v in LIMIT_OFF_ENV.items())
                      + " (the record cap kept), the same series")


if __name__ == "__main__":
    sys.exit(child_main())
