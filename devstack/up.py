"""`tradewire up`: start the paper stack in order, supervise it, stop it on Ctrl-C or SIGTERM.

Order: ports checked (nothing starts if one is busy) → state dir locked → admin token →
PostgreSQL (embedded, in this process) and migrations (in a child: devstack/prepare.py) →
infrastructure children (the Temporal
dev server) → Temporal client and search attributes → application children. Stopping runs the
other way round, within STOP_BUDGET_S of the signal.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
import time
import traceback
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import parse_qs, urlsplit

import httpx

from devstack.components import (
    INFRA,
    TEMPORAL_DB_FILE,
    Component,
    MissingTool,
    child_env,
    enabled_components,
)
from devstack.console import Console
from devstack.lock import StateDirBusy, StateDirLock
from devstack.ports import port_problems
from devstack.readiness import NotReady, ProbeContext, wait_ready
from devstack.supervisor import Child, describe_exit, stop_all
from settings import Settings

if TYPE_CHECKING:
    from temporalio.client import Client

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_NOT_STARTED = 2

# Grace per layer between SIGTERM and SIGKILL; two layers plus PostgreSQL's fast shutdown stay
# under the 10 s promised for Ctrl-C (the dev server stops in ~1 s, uvicorn in well under).
LAYER_GRACE_S = 3.0
_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
# What a failed devstack/prepare.py step's report shows of its stderr (the traceback's end).
PREPARE_ERROR_LINES = 20
T = TypeVar("T")


class PrepareFailed(RuntimeError):
    """A database step of `up` (devstack/prepare.py) exited with an error; its stderr's end."""


_EXPECTED = (NotReady, MissingTool, PrepareFailed)


def run_up(settings: Settings | None = None, console: Console | None = None) -> int:
    """Run the stack until a signal or a failure; the process exit code."""
    settings = settings if settings is not None else Settings()
    console = console if console is not None else Console.for_stdout()
    return asyncio.run(_up(settings, console))


async def _up(settings: Settings, console: Console) -> int:
    components = enabled_components(settings)
    claims = [claim for c in components for claim in c.port_claims(settings)]
    problems = port_problems(settings.host, claims)
    if problems:
        for line in problems:
            console.say(line)
        return EXIT_NOT_STARTED
    private_state_dir(settings)
    lock = StateDirLock(settings.state_path)
    try:
        lock.acquire()
    except StateDirBusy as exc:
        console.say(str(exc))
        return EXIT_NOT_STARTED
    try:
        settings.ensure_admin_token()
        console.say(admin_token_line(settings))
        console.align([c.name for c in components])
        return await Stack(settings, console, components).run()
    finally:
        lock.release()


PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600
TEMPORAL_DB_SUFFIXES = ("", "-wal", "-shm", "-journal")


def private_state_dir(settings: Settings) -> None:
    """The state dir (secrets, trade history) readable by its owner only, whatever the umask:
    created 0700, an existing one set back to 0700, and Temporal's SQLite files (which an older
    start may have left 0644) set to 0600 before the dev server opens them again."""
    path = settings.state_path
    path.mkdir(mode=PRIVATE_DIR_MODE, parents=True, exist_ok=True)
    path.chmod(PRIVATE_DIR_MODE)  # mkdir's mode is masked by the umask, and skipped if it exists
    for suffix in TEMPORAL_DB_SUFFIXES:
        db_file = path / (TEMPORAL_DB_FILE + suffix)
        if db_file.exists():
            db_file.chmod(PRIVATE_FILE_MODE)


def admin_token_line(settings: Settings) -> str:
    if settings.admin_token is not None and settings.admin_token.get_secret_value():
        return "admin token: from TRADEWIRE_ADMIN_TOKEN"
    return f"admin token: {settings.admin_token_file} (mode 0600; the CLI reads it from there)"


def socket_dir(database_url: str) -> str:
    """The Unix socket folder of an embedded-PostgreSQL URL (`...?host=/path`)."""
    hosts = parse_qs(urlsplit(database_url).query).get("host")
    return hosts[0] if hosts else database_url


def masked_url(database_url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(database_url).render_as_string(hide_password=True)


class Stack:
    def __init__(self, settings: Settings, console: Console, components: list[Component]) -> None:
        self.settings = settings
        self.console = console
        self.components = components
        self.children: list[tuple[Component, Child]] = []
        self.database_url = ""
        self.temporal: Client | None = None
        self._pg_start: asyncio.Future[Any] | None = None
        self._http = httpx.AsyncClient(timeout=2.0, trust_env=False)
        self._started_at = time.monotonic()

    async def run(self) -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in _STOP_SIGNALS:
            loop.add_signal_handler(sig, self._on_signal, sig, stop)
        startup = asyncio.create_task(self._start())
        stopped = asyncio.create_task(stop.wait())
        try:
            await asyncio.wait({startup, stopped}, return_when=asyncio.FIRST_COMPLETED)
            if not startup.done():
                startup.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await startup
                return EXIT_OK
            if startup.exception() is not None:
                self._report_startup_failure(startup.exception())
                return EXIT_FAILED
            return await self._supervise(stopped)
        finally:
            await self._shutdown()
            stopped.cancel()
            for sig in _STOP_SIGNALS:
                loop.remove_signal_handler(sig)

    def _on_signal(self, sig: signal.Signals, stop: asyncio.Event) -> None:
        if not stop.is_set():
            self.console.say(f"{sig.name}: stopping everything")
        stop.set()

    # --- start ---------------------------------------------------------------------------------

    async def _start(self) -> None:
        await self._start_database()
        for component in self.components:
            if component.layer == INFRA:
                await self._start_child(component)
        await self._connect_temporal()
        for component in self.components:
            if component.layer != INFRA:
                await self._start_child(component)
        await self._prepare_trading()
        self._summary()

    async def _prepare_trading(self) -> None:
        """Pairs synced (the rules every order is checked against) and the demo strategy made,
        before `up` calls itself ready (devstack/prepare.py, in a child)."""
        for line in await self._prepare("trading"):
            self.console.say(line)

    async def _prepare(self, step: str) -> list[str]:
        """`python -m devstack.prepare STEP` in a child, with the environment every child gets;
        the lines it printed. In a session of its own, and on cancel waited for: a Ctrl-C must
        not stop a migration half-run, nor race it against the database's shutdown."""
        child = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "devstack.prepare", step,
            env=child_env(self.settings, self.database_url),
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, start_new_session=True,
        )
        out, err = await _finish(child.communicate())
        if child.returncode != 0:
            tail = err.decode(errors="replace").strip().splitlines()[-PREPARE_ERROR_LINES:]
            raise PrepareFailed(f"preparing the database ({step}) failed "
                                f"({describe_exit(child.returncode or 0)}):\n" + "\n".join(tail))
        return out.decode(errors="replace").splitlines()

    async def _start_database(self) -> None:
        s = self.settings
        if s.database_url:
            self.database_url = s.database_url
            where = masked_url(s.database_url)
        else:
            from db.embedded import start_embedded

            # Shielded: a Ctrl-C during initdb must not orphan the server the thread is starting;
            # shutdown awaits this future and stops what it returns.
            self._pg_start = asyncio.ensure_future(
                asyncio.to_thread(start_embedded, s.embedded_pg_dir)
            )
            pg = await asyncio.shield(self._pg_start)
            self.database_url = pg.url
            where = f"{socket_dir(pg.url)}  (unix socket; url {pg.url})"
        await self._prepare("schema")
        self.console.say(f"ready: postgres {where}")

    async def _connect_temporal(self) -> None:
        from workflows.converter import connect
        from workflows.search_attributes import ALL, register

        s = self.settings
        client = await wait_ready(
            "the Temporal client",
            lambda: connect(s.temporal_target, s.temporal_namespace),
            failed=self._dead_child,
        )
        self.temporal = client
        added = await register(client, s.temporal_namespace)
        names = ", ".join(key.name for key in ALL)
        how = f"added {', '.join(added)}" if added else "already registered"
        self.console.say(
            f"ready: temporal {s.temporal_target}  (namespace {s.temporal_namespace}; "
            f"search attributes {names}: {how}; history in {self._history_where()})"
        )

    def _history_where(self) -> str:
        if self.settings.temporal_address is not None:
            return "the external Temporal"
        return str(self.settings.state_path / TEMPORAL_DB_FILE)

    async def _start_child(self, component: Component) -> None:
        env = component.child_env(self.settings, self.database_url)
        child = Child(
            component.name,
            component.argv(self.settings),
            env,
            self.console,
            quiet_stop=component.quiet_stop,
        )
        self.children.append((component, child))
        await child.start()
        ctx = ProbeContext(self.settings, child.pid, self._http, self.temporal)
        lines = await wait_ready(
            component.name, lambda: component.probe(ctx), failed=self._dead_child
        )
        for line in lines:
            self.console.say(f"ready: {line}")

    def _dead_child(self) -> str | None:
        for _, child in self.children:
            if child.returncode is not None:
                return f"{child.name} exited ({describe_exit(child.returncode)})"
        return None

    def _summary(self) -> None:
        s = self.settings
        names = ["postgres"] + [c.name for c, _ in self.children]
        if s.temporal_address is not None:
            names.insert(1, f"temporal at {s.temporal_target}")
        elapsed = time.monotonic() - self._started_at
        self.console.say(f"tradewire is up in {elapsed:.1f} s: {', '.join(names)}")
        self.console.say(f"  state dir: {s.state_path}")
        self.console.say("  Ctrl-C or SIGTERM stops everything; data persists in the state dir.")

    def _report_startup_failure(self, exc: BaseException | None) -> None:
        assert exc is not None
        if isinstance(exc, _EXPECTED):
            self.console.say(f"could not start: {exc}")
            return
        for chunk in traceback.format_exception(exc):
            for line in chunk.rstrip().splitlines():
                self.console.say(line)
        self.console.say(f"could not start: {type(exc).__name__}: {exc}")

    # --- supervise and stop --------------------------------------------------------------------

    async def _supervise(self, stopped: asyncio.Task[bool]) -> int:
        exits = {child.exited(): child for _, child in self.children}
        done, _ = await asyncio.wait({stopped, *exits}, return_when=asyncio.FIRST_COMPLETED)
        if stopped in done:
            return EXIT_OK
        child = exits[next(task for task in done if task in exits)]
        code = child.returncode if child.returncode is not None else -1
        self.console.say(
            f"{child.name} stopped unexpectedly ({describe_exit(code)}): stopping everything"
        )
        return EXIT_FAILED

    async def _shutdown(self) -> None:
        if any(child.running() for _, child in self.children):
            self.console.say("stopping…")
        for layer in sorted({c.layer for c, _ in self.children}, reverse=True):
            await stop_all([child for c, child in self.children if c.layer == layer], LAYER_GRACE_S)
        await self._http.aclose()
        if self._pg_start is not None:
            try:
                pg = await self._pg_start
            except Exception:  # noqa: BLE001 - it never started; its error was reported
                pg = None
            if pg is not None:
                await asyncio.to_thread(pg.stop)
                self.console.say("postgres stopped")
        self.console.say("stopped")


async def _finish(work: Awaitable[T]) -> T:
    """Await `work`; on cancel, let it finish (a half-run migration must not race the
    database's shutdown), then pass the cancel on."""
    task = asyncio.ensure_future(work)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        await asyncio.wait({task})
        raise
