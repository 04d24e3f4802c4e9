"""`tradewire up` for real: a subprocess on free ports and its own state dir, stopped by
SIGTERM and by SIGINT (Ctrl-C), started twice to prove the data outlives it."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psutil
import psycopg
import pytest
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest
from temporalio.client import Client, WorkflowExecutionStatus

from devstack.components import defines_function, module_exists
from tests.devstack.support import free_ports
from tests.devstack.test_healthcheck import healthcheck
from tests.support import waiting

PROJECT = Path(__file__).resolve().parents[2]
SEARCH_ATTRIBUTES = {"Symbol", "Side", "Strategy", "TradeStatus"}
START_BUDGET_S = 90
STOP_BUDGET_S = 10

pytestmark = pytest.mark.slow


@dataclass
class Up:
    proc: asyncio.subprocess.Process
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@dataclass
class Ports:
    web: int
    temporal: int
    ui: int
    exchange: int
    dashboard: int


def up_env(state: Path, ports: Ports) -> dict[str, str]:
    # Nothing TRADEWIRE_* from the caller: this run must use the embedded database and the dev
    # server. The working directory is the tmp dir, so no `.env` is read either.
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRADEWIRE_")}
    env.update(
        {
            "PYTHONPATH": os.pathsep.join(filter(None, [str(PROJECT), env.get("PYTHONPATH")])),
            "TRADEWIRE_STATE_DIR": str(state),
            "TRADEWIRE_HOST": "127.0.0.1",
            "TRADEWIRE_WEBHOOK_PORT": str(ports.web),
            "TRADEWIRE_TEMPORAL_PORT": str(ports.temporal),
            "TRADEWIRE_TEMPORAL_UI_PORT": str(ports.ui),
            "TRADEWIRE_EXCHANGE_PORT": str(ports.exchange),
            "TRADEWIRE_UI_PORT": str(ports.dashboard),
            "NO_COLOR": "1",
        }
    )
    return env


async def start_up(tmp: Path, state: Path, ports: Ports, run: int) -> Up:
    log = tmp / f"up-{run}.log"
    with log.open("wb") as out:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "cli",
            "up",
            cwd=tmp,
            env=up_env(state, ports),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=out,
            stderr=asyncio.subprocess.STDOUT,
        )
    return Up(proc, log)


async def eventually(up: Up, what: str, check: Callable[[], Awaitable[Any]]) -> Any:
    """Poll `check` every 0.25 s until it returns a truthy value, for up to START_BUDGET_S; an
    exception means "not there yet"; fail at once if `up` exits. Failures show up's output."""

    def exited() -> str | None:
        code = up.proc.returncode
        return None if code is None else f"up exited ({code})"

    return await waiting.eventually(
        check, what, START_BUDGET_S, interval_s=0.25, not_yet=(Exception,), give_up=exited,
        detail=up.output,
    )


def snapshot_tree(up: Up, state: Path) -> list[psutil.Process]:
    """`up`, every process under it, and the PostgreSQL server it started (pg_ctl detaches it)."""
    root = psutil.Process(up.proc.pid)
    tree = [root, *root.children(recursive=True)]
    postmaster = int((state / "pg" / "postmaster.pid").read_text().splitlines()[0])
    server = psutil.Process(postmaster)
    return tree + [server, *server.children(recursive=True)]


def survivors(procs: list[psutil.Process]) -> list[str]:
    left = []
    for p in procs:
        try:
            if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                left.append(f"{p.pid} {' '.join(p.cmdline())[:120]}")
        except psutil.NoSuchProcess:
            continue
    return left


async def stop(up: Up, state: Path, sig: signal.Signals) -> None:
    procs = snapshot_tree(up, state)
    names = {p.name() for p in procs}
    assert "temporal" in names and "postgres" in names and len(procs) >= 4, names
    up.proc.send_signal(sig)
    try:
        code = await asyncio.wait_for(up.proc.wait(), STOP_BUDGET_S)
    except TimeoutError:
        pytest.fail(f"up still running {STOP_BUDGET_S} s after {sig.name}:\n{up.output()}")
    assert code == 0, up.output()
    # Children may be reaped a moment after `up` returns; wait for them, not for a clock.
    psutil.wait_procs(procs, timeout=5)
    assert survivors(procs) == [], up.output()


def kill_everything(up: Up, state: Path) -> None:
    """Last resort after a failure: leave nothing running whatever `up` did."""
    if up.proc.returncode is not None:
        return
    try:
        procs = snapshot_tree(up, state)
    except (psutil.Error, OSError, ValueError, IndexError):
        procs = [psutil.Process(up.proc.pid)]
    for p in procs:
        try:
            p.kill()
        except psutil.Error:
            pass


async def healthz_ok(http: httpx.AsyncClient, ports: Ports) -> dict[str, Any] | None:
    response = await http.get(f"http://127.0.0.1:{ports.web}/healthz")
    return response.json() if response.status_code == 200 else None


async def summary_printed(up: Up) -> bool:
    return "tradewire is up" in up.output()


def socket_dir_of(output: str) -> str:
    match = re.search(r"^ready: postgres (\S+)", output, re.MULTILINE)
    assert match, output
    return match.group(1)


async def test_up_runs_the_stack_stops_cleanly_and_keeps_its_data(tmp_path: Path) -> None:
    state = tmp_path / "state"
    ports = Ports(*free_ports(5))
    workflow_id = f"devstack-persist-{uuid.uuid4().hex}"
    http = httpx.AsyncClient(timeout=5, trust_env=False)

    # --- first run -------------------------------------------------------------------------
    up = await start_up(tmp_path, state, ports, run=1)
    try:
        health = await eventually(up, "healthy /healthz", lambda: healthz_ok(http, ports))
        assert health == {"status": "up"}, "anonymous callers learn up or down only"
        token = (state / "admin-token").read_text().strip()
        admin = (await http.get(f"http://127.0.0.1:{ports.web}/healthz",
                                headers={"Authorization": f"Bearer {token}"})).json()
        assert admin["database"] == "ok" and admin["temporal"] == "ok", admin
        assert admin["details"]["database"]["detail"] == "reachable", admin
        code, out = await healthcheck("web", tmp_path, webhook_port=str(ports.web))
        assert (code, out) == (0, "")
        ui = await eventually(up, "Temporal UI", lambda: http.get(f"http://127.0.0.1:{ports.ui}/"))
        assert ui.status_code == 200

        client = await Client.connect(f"127.0.0.1:{ports.temporal}")
        listed = await client.operator_service.list_search_attributes(
            ListSearchAttributesRequest(namespace="default")
        )
        assert SEARCH_ATTRIBUTES <= {
            name
            for name, kind in listed.custom_attributes.items()
            if kind == IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD
        }
        # A workflow nobody runs: its history must survive the restart.
        await client.start_workflow(
            "DevstackPersistProbe", id=workflow_id, task_queue=f"nobody-{uuid.uuid4().hex}"
        )

        await eventually(up, "the ready summary", lambda: summary_printed(up))
        output = up.output()
        socket_dir = socket_dir_of(output)
        with psycopg.connect(f"postgresql://postgres@/tradewire?host={socket_dir}") as conn:
            assert conn.execute("SELECT version_num FROM alembic_version").fetchone()
            conn.execute("CREATE TABLE devstack_probe (note text)")
            conn.execute("INSERT INTO devstack_probe VALUES ('kept')")

        for expected in (
            f"admin token: {state.resolve() / 'admin-token'}",
            f"ready: temporal ui http://127.0.0.1:{ports.ui}",
            f"ready: webhook http://127.0.0.1:{ports.web}",
            f"ready: dashboard http://127.0.0.1:{ports.dashboard}",
            "added Side, Strategy, Symbol, TradeStatus",
        ):
            assert expected in output, output
        assert re.search(r"^\[web\] +", output, re.MULTILINE), output
        # Pairs are synced and the demo strategy made before `up` calls itself ready.
        assert re.search(r"^ready: pairs \d+ synced", output, re.MULTILINE), output
        demo = re.search(r"demo strategy created: name 'demo', webhook secret (\S+)", output)
        assert demo, output
        with psycopg.connect(f"postgresql://postgres@/tradewire?host={socket_dir}") as conn:
            assert conn.execute("SELECT count(*) FROM trading_pair").fetchone()[0] >= 15
            stored = conn.execute("SELECT secret_hash FROM strategy WHERE name='demo'").fetchone()
            assert stored and demo.group(1) not in str(stored[0]), "the secret is stored hashed"
        # Components join `up` as they are built: whatever is built must be ready too.
        if module_exists("paper.app"):
            assert f"ready: paper exchange http://127.0.0.1:{ports.exchange}" in output, output
            admin = await http.get(f"http://127.0.0.1:{ports.exchange}/__admin/health")
            assert admin.status_code == 200
        if defines_function("worker", "main"):
            assert "ready: worker polling task queue 'tradewire'" in output, output
        assert re.search(r"^\[temporal\] +", output, re.MULTILINE), output
        assert (state / "admin-token").stat().st_mode & 0o077 == 0
        pg_version_mtime = (state / "pg" / "PG_VERSION").stat().st_mtime_ns
        temporal_db_inode = (state / "temporal.db").stat().st_ino

        await stop(up, state, signal.SIGTERM)
    finally:
        kill_everything(up, state)

    # --- second run: same state dir, same ports ---------------------------------------------
    up = await start_up(tmp_path, state, ports, run=2)
    try:
        await eventually(up, "healthy /healthz after restart", lambda: healthz_ok(http, ports))
        await eventually(up, "the ready summary", lambda: summary_printed(up))
        output = up.output()
        assert "search attributes Symbol, Side, Strategy, TradeStatus: already registered" in output
        assert "demo strategy created" not in output, "the demo secret is shown only once"
        assert (state / "pg" / "PG_VERSION").stat().st_mtime_ns == pg_version_mtime, "initdb ran"
        assert (state / "temporal.db").stat().st_ino == temporal_db_inode

        with psycopg.connect(
            f"postgresql://postgres@/tradewire?host={socket_dir_of(output)}"
        ) as conn:
            assert conn.execute("SELECT note FROM devstack_probe").fetchall() == [("kept",)]
        client = await Client.connect(f"127.0.0.1:{ports.temporal}")
        described = await client.get_workflow_handle(workflow_id).describe()
        assert described.status == WorkflowExecutionStatus.RUNNING

        await stop(up, state, signal.SIGINT)  # what Ctrl-C sends
    finally:
        kill_everything(up, state)
        await http.aclose()


def started_for(state: Path) -> list[psutil.Process]:
    """Processes whose command line names this state dir: PostgreSQL (detached by pg_ctl) and
    the Temporal dev server (its --db-filename)."""
    found = []
    for p in psutil.process_iter(["cmdline", "status"]):
        cmdline = " ".join(p.info["cmdline"] or [])
        if str(state) in cmdline and p.info["status"] != psutil.STATUS_ZOMBIE:
            found.append(p)
    return found


async def test_a_child_that_dies_stops_the_whole_stack_with_an_error(tmp_path: Path) -> None:
    state = tmp_path / "state"
    ports = Ports(*free_ports(5))
    up = await start_up(tmp_path, state, ports, run=1)
    try:
        await eventually(up, "the ready summary", lambda: summary_printed(up))
        procs = snapshot_tree(up, state)
        (web,) = [p for p in procs if p.cmdline()[-2:] == ["cli", "web"]]
        web.kill()
        try:
            code = await asyncio.wait_for(up.proc.wait(), STOP_BUDGET_S)
        except TimeoutError:
            pytest.fail(f"up kept running after its webhook died:\n{up.output()}")
        assert code == 1, up.output()
        assert "web stopped unexpectedly (killed by SIGKILL): stopping everything" in up.output()
        psutil.wait_procs(procs, timeout=5)
        assert survivors(procs) == [], up.output()
    finally:
        kill_everything(up, state)


async def test_a_signal_while_starting_stops_what_was_started(tmp_path: Path) -> None:
    state = tmp_path / "state"
    ports = Ports(*free_ports(5))
    up = await start_up(tmp_path, state, ports, run=1)
    try:
        await eventually(
            up, "PostgreSQL", lambda: asyncio.sleep(0, "ready: postgres" in up.output())
        )
        up.proc.send_signal(signal.SIGTERM)
        try:
            code = await asyncio.wait_for(up.proc.wait(), STOP_BUDGET_S)
        except TimeoutError:
            pytest.fail(f"up still running {STOP_BUDGET_S} s after SIGTERM:\n{up.output()}")
        assert code == 0, up.output()
        assert "tradewire is up" not in up.output()
        assert "postgres stopped" in up.output()
        # The server may still be exiting after pg_ctl returned: wait for it, then look.
        psutil.wait_procs(started_for(state), timeout=STOP_BUDGET_S)
        assert started_for(state) == [], up.output()
    finally:
        kill_everything(up, state)
