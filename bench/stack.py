"""Start and stop what the benchmarks measure, with the limits raised, on free ports and in
a temporary state dir of their own (so a `make run` beside it is never touched).

    paper_exchange(...)  `python -m cli exchange` alone (floor, precision fuzz)
    full_stack(...)      `python -m cli up`: PostgreSQL, Temporal, paper exchange, webhook, worker

Every process is started in its own session and stopped by its process group id, which is
ours: nothing else on the machine is signalled.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bench.limits import BenchLimits
from settings import PAPER_API_KEY, PAPER_API_SECRET

HOST = "127.0.0.1"
REPO = Path(__file__).resolve().parent.parent
EXCHANGE_START_S = 30.0
STACK_START_S = 180.0
STOP_GRACE_S = 15.0
# `up` prints "ready: postgres … (unix socket; url postgresql+psycopg://…)".
_DATABASE_URL = re.compile(r"url (postgresql\+psycopg://\S+)\)")
# A port picked free (free_ports) can be taken by another process before ours binds it: `up`
# then refuses to start ("port N is busy", devstack/ports.py) or a server fails to bind. Such a
# start is tried once more on fresh ports; any other failure is reported at once.
_PORT_TAKEN = re.compile(r"address already in use|port \d+ is busy", re.IGNORECASE)
START_ATTEMPTS = 2


class StackError(RuntimeError):
    """A process of the benchmark stack did not start; the message names its log file."""


def port_taken(error: StackError) -> bool:
    """True when a start failed because a port it was given was taken meanwhile."""
    return bool(_PORT_TAKEN.search(str(error)))


def free_port(host: str = HOST) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def free_ports(count: int, host: str = HOST) -> list[int]:
    """`count` distinct free ports (held open together while picking, so none repeats)."""
    socks = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind((host, 0))
            socks.append(sock)
        return [int(s.getsockname()[1]) for s in socks]
    finally:
        for sock in socks:
            sock.close()


@dataclass
class Process:
    """A child in its own session; `stop` signals its process group (ours) only."""

    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def exited(self) -> int | None:
        return self.popen.poll()

    def tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    async def stop(self) -> None:
        if self.popen.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGTERM)
        try:
            await asyncio.to_thread(self.popen.wait, STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGKILL)
            await asyncio.to_thread(self.popen.wait)


def spawn(name: str, argv: list[str], env: Mapping[str, str], log_dir: Path) -> Process:
    log_path = log_dir / f"{name}.log"
    log = open(log_path, "wb")  # the child owns it; closed below
    try:
        popen = subprocess.Popen(
            argv, cwd=REPO, env=dict(env), stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )
    finally:
        log.close()
    return Process(name, popen, log_path)


def base_env(limits: BenchLimits, state_dir: Path, extra: Mapping[str, str] | None = None
             ) -> dict[str, str]:
    env = dict(os.environ)
    # A developer's own TRADEWIRE_* settings must not leak into the benchmark stack.
    for key in [k for k in env if k.startswith("TRADEWIRE_")]:
        del env[key]
    env.update(limits.env())
    env.update({
        "TRADEWIRE_STATE_DIR": str(state_dir),
        "TRADEWIRE_HOST": HOST,
        "TRADEWIRE_LOG_LEVEL": "WARNING",
        "PYTHONUNBUFFERED": "1",
    })
    env.update(extra or {})
    return env


async def wait_http(url: str, process: Process, timeout_s: float) -> None:  # float-ok: seconds
    deadline = time.monotonic() + timeout_s
    async with httpx.AsyncClient(timeout=2.0, trust_env=False) as http:
        while True:
            if process.exited() is not None:
                raise StackError(
                    f"{process.name} exited with {process.exited()} before {url} answered; "
                    f"its log ({process.log_path}):\n{process.tail()}"
                )
            with contextlib.suppress(httpx.HTTPError):
                if (await http.get(url)).status_code == 200:
                    return
            if time.monotonic() > deadline:
                raise StackError(f"{url} did not answer within {timeout_s:.0f} s; "
                                 f"log: {process.log_path}\n{process.tail()}")
            await asyncio.sleep(0.1)


@dataclass(frozen=True)
class ExchangeEndpoint:
    base_url: str
    api_key: str
    api_secret: str
    pid: int | None = None  # None: not started by us


def _exchange_env(limits: BenchLimits, work_dir: Path, port: int, pairs_file: Path | None,
                  tickers_file: Path | None) -> dict[str, str]:
    extra = {
        "TRADEWIRE_EXCHANGE_PORT": str(port),
        "TRADEWIRE_PAPER_TICK_INTERVAL_S": "86400",
    }
    if pairs_file is not None:
        extra["TRADEWIRE_PAPER_PAIRS_FILE"] = str(pairs_file.resolve())
    if tickers_file is not None:
        extra["TRADEWIRE_PAPER_TICKERS_FILE"] = str(tickers_file.resolve())
    work_dir.mkdir(parents=True, exist_ok=True)
    return base_env(limits, work_dir / "state", extra)


@contextlib.asynccontextmanager
async def paper_exchange(
    limits: BenchLimits,
    work_dir: Path,
    *,
    pairs_file: Path | None = None,
    tickers_file: Path | None = None,
) -> AsyncIterator[ExchangeEndpoint]:
    """`tradewire exchange` in a child process with the limits raised. The random walk is
    effectively off (prices move only through the admin API), so a mark read just before an
    order is the mark the exchange checks it against."""
    for attempt in range(START_ATTEMPTS):
        port = free_port()
        env = _exchange_env(limits, work_dir, port, pairs_file, tickers_file)
        proc = spawn(f"exchange-{port}", [sys.executable, "-m", "cli", "exchange"], env,
                     work_dir)
        url = f"http://{HOST}:{port}"
        if await _started(proc, wait_http(url + "/__admin/health", proc, EXCHANGE_START_S),
                          last=attempt + 1 == START_ATTEMPTS):
            break
    try:
        yield ExchangeEndpoint(url, PAPER_API_KEY, PAPER_API_SECRET, proc.pid)
    finally:
        await proc.stop()


async def _started(proc: Process, ready: Awaitable[None], *, last: bool) -> bool:
    """Whether `proc` came up (`ready` returned); False: it lost a port race (a port picked
    free and taken before it bound it) and, unless this was the `last` attempt, another one on
    fresh ports may go. Any other failure is raised at once."""
    try:
        await ready
        return True
    except StackError as exc:
        await proc.stop()
        if last or not port_taken(exc):
            raise
        return False


@dataclass
class Stack:
    """A running Tradewire stack the benchmarks talk to."""

    webhook_url: str
    exchange_url: str
    temporal_target: str
    state_dir: Path | None
    env: dict[str, str]  # what a `python -m cli ...` needs to reach this stack
    fast_path: bool | None  # None: unknown (a running stack we did not start)
    database_url: str | None = None
    up: Process | None = None
    notes: list[str] = field(default_factory=list)


@contextlib.asynccontextmanager
async def full_stack(
    limits: BenchLimits, work_dir: Path, *, fast_path: bool = True,
    extra_env: Mapping[str, str] | None = None,
) -> AsyncIterator[Stack]:
    """`tradewire up` on free ports in `work_dir/state`, with the limits raised (and any
    `extra_env` settings on top)."""
    await asyncio.to_thread(work_dir.mkdir, parents=True, exist_ok=True)
    for attempt in range(START_ATTEMPTS):
        # Every port `up` opens, the dashboard's included: a stack beside it (a `make run`,
        # another bench) must never make this one fail to start.
        webhook, temporal, temporal_ui, exchange, ui = free_ports(5)
        # A second attempt starts from an empty state dir, with a log of its own.
        state_dir = work_dir / ("state" if attempt == 0 else f"state-{attempt + 1}")
        extra = {
            "TRADEWIRE_WEBHOOK_PORT": str(webhook),
            "TRADEWIRE_TEMPORAL_PORT": str(temporal),
            "TRADEWIRE_TEMPORAL_UI_PORT": str(temporal_ui),
            "TRADEWIRE_EXCHANGE_PORT": str(exchange),
            "TRADEWIRE_UI_PORT": str(ui),
            "TRADEWIRE_FAST_PATH": "true" if fast_path else "false",
            "TRADEWIRE_PAPER_TICK_INTERVAL_S": "86400",
            **(extra_env or {}),
        }
        env = base_env(limits, state_dir, extra)
        name = ("up-fast" if fast_path else "up-slow") + ("" if attempt == 0 else
                                                          f"-{attempt + 1}")
        proc = spawn(name, [sys.executable, "-m", "cli", "up"], env, work_dir)
        if await _started(proc, _wait_up(proc), last=attempt + 1 == START_ATTEMPTS):
            break
    try:
        found = _DATABASE_URL.search(proc.tail(400))
        stack = Stack(
            webhook_url=f"http://{HOST}:{webhook}",
            exchange_url=f"http://{HOST}:{exchange}",
            temporal_target=f"{HOST}:{temporal}",
            state_dir=state_dir,
            env=env,
            fast_path=fast_path,
            database_url=found.group(1) if found else None,
            up=proc,
        )
        await sync_pairs(stack)
        yield stack
    finally:
        await proc.stop()


async def sync_pairs(stack: Stack) -> None:
    """`tradewire pairs sync`: alerts are refused for symbols the database does not list."""
    if stack.database_url is None:
        raise StackError("`tradewire up` printed no database URL; cannot sync the pairs")
    env = stack.env | {"TRADEWIRE_DATABASE_URL": stack.database_url}
    done = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-m", "cli", "pairs", "sync"], cwd=REPO, env=env,
        capture_output=True, text=True, timeout=120,
    )
    if done.returncode != 0:
        raise StackError(f"`tradewire pairs sync` failed ({done.returncode}): "
                         f"{(done.stderr or done.stdout).strip()[-500:]}")


async def _wait_up(proc: Process) -> None:
    """`up` prints "tradewire is up in …" once every component answered its probe."""
    deadline = time.monotonic() + STACK_START_S
    while True:
        if "tradewire is up in" in proc.tail(200):
            return
        if proc.exited() is not None:
            raise StackError(f"`tradewire up` exited with {proc.exited()}; its log "
                             f"({proc.log_path}):\n{proc.tail()}")
        if time.monotonic() > deadline:
            raise StackError(f"`tradewire up` was not up within {STACK_START_S:.0f} s; "
                             f"log: {proc.log_path}\n{proc.tail()}")
        await asyncio.sleep(0.2)


def running_stack(webhook_url: str, exchange_url: str | None) -> Stack:
    """A stack someone else started (`--use-running`): its settings come from the environment
    (TRADEWIRE_*), as the CLI would read them; its limits are whatever it was started with."""
    from settings import Settings

    settings = Settings()
    env = dict(os.environ)
    return Stack(
        webhook_url=webhook_url.rstrip("/"),
        exchange_url=(exchange_url or settings.exchange_url).rstrip("/"),
        temporal_target=settings.temporal_target,
        state_dir=settings.state_path,
        env=env,
        fast_path=None,
        database_url=settings.database_url,
        notes=["a running stack: its rate limits, budgets and balance are as it was started "
               "(raise them with " + ", ".join(BenchLimits().env()) + ")"],
    )
