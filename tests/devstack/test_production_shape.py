"""The services started as docker-compose.yml starts them, with no `tradewire up`: separate
`tradewire exchange`, `migrate`, `worker` and `web` processes against one PostgreSQL (an empty
database) and one Temporal dev server, every setting and secret from the environment as compose
passes it, each process with a state dir of its own (a container's). `tradewire strategy add`
runs as a process of its own first, as `docker compose run|exec … strategy add` would. An alert
over HTTP then opens a trade that the exchange fills and protects, and an exit alert closes it.

What compose adds around these (health-ordered start, restarts, networks) is checked statically
in tests/test_compose.py."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import os
import secrets
import signal
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from temporalio.client import Client, ScheduleActionStartWorkflow
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from tests.devstack.support import free_ports
from tests.support import waiting
from tests.support.postgres import PostgresServer
from tests.support.receiver import Receiver, receiver
from webhook.auth import SERVER_KEY_FILE
from workflows.pairs_sync import pairs_schedule_id

PROJECT = Path(__file__).resolve().parents[2]
START_BUDGET_S = 60  # polled conditions' bound, never a timing assertion
TRADE_BUDGET_S = 60
NOTIFY_SECRET = "receiver-signing-secret"


def _sync(probe: Callable[[], Any]) -> Callable[[], Awaitable[Any]]:
    async def run() -> Any:
        return probe()
    return run
STOP_BUDGET_S = 20
SIZE = Decimal("0.01")

pytestmark = pytest.mark.slow


@dataclass
class Service:
    """One `tradewire <command>` process, its output in `log`."""

    name: str
    proc: asyncio.subprocess.Process
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-6000:]

    def exited(self) -> str | None:
        code = self.proc.returncode
        return None if code is None else f"{self.name} exited ({code})"


@dataclass
class Stack:
    tmp: Path
    env: dict[str, str]
    receiver: Receiver  # the trader's notification webhook
    services: list[Service] = field(default_factory=list)

    def env_for(self, name: str, **extra: str) -> dict[str, str]:
        env = dict(self.env)
        # A container's own state dir: nothing is shared through files, only the environment.
        env["TRADEWIRE_STATE_DIR"] = str(self.tmp / f"state-{name}")
        env.update(extra)
        return env

    async def start(self, name: str, *argv: str, **extra: str) -> Service:
        log = self.tmp / f"{name}.log"
        with log.open("wb") as out:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "cli", *argv, cwd=self.tmp, env=self.env_for(name, **extra),
                stdin=asyncio.subprocess.DEVNULL, stdout=out, stderr=asyncio.subprocess.STDOUT,
            )
        service = Service(name, proc, log)
        self.services.append(service)
        return service

    async def run(self, name: str, *argv: str, stdin: bytes = b"", **extra: str) -> tuple[int, str]:
        """A one-shot job (`migrate`, a `docker compose run`): its exit code and output."""
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "cli", *argv, cwd=self.tmp, env=self.env_for(name, **extra),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        out, _ = await asyncio.wait_for(proc.communicate(stdin), START_BUDGET_S)
        assert proc.returncode is not None
        return proc.returncode, out.decode(errors="replace")

    async def healthy(self, service: Service, component: str, **extra: str) -> None:
        """Compose's own healthcheck (`python -m devstack.healthcheck <component>`) passes."""

        async def probe() -> bool:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "devstack.healthcheck", component, cwd=self.tmp,
                env=self.env_for(service.name, **extra),
                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
            )
            return await proc.wait() == 0

        await self.eventually(f"{service.name} healthy", probe, service)

    async def eventually(self, what: str, probe: Callable[[], Awaitable[Any]],
                         *watched: Service, budget_s: float = START_BUDGET_S) -> Any:
        def gave_up() -> str | None:
            return next((r for s in watched or self.services if (r := s.exited())), None)

        return await waiting.eventually(
            probe, what, budget_s, interval_s=0.25, not_yet=(httpx.HTTPError,),
            give_up=gave_up, detail=self.outputs,
        )

    def outputs(self) -> str:
        return "\n".join(f"--- {s.name} ---\n{s.output()}" for s in self.services)

    async def stop(self, service: Service) -> int:
        service.proc.send_signal(signal.SIGTERM)
        try:
            return await asyncio.wait_for(service.proc.wait(), STOP_BUDGET_S)
        except TimeoutError:
            pytest.fail(f"{service.name} still running {STOP_BUDGET_S} s after SIGTERM:\n"
                        f"{service.output()}")

    def kill_all(self) -> None:
        for service in self.services:
            if service.proc.returncode is None:
                service.proc.kill()


@pytest.fixture
async def stack(tmp_path: Path, pg_server: PostgresServer,
                temporal_env: WorkflowEnvironment) -> AsyncIterator[Stack]:
    database = pg_server.create_database("tw_prod")  # empty: `migrate` builds the schema
    web_port, exchange_port = free_ports(2)
    # What compose passes every Tradewire container (docker-compose.yml, x-tradewire-env), with
    # this machine's addresses; nothing TRADEWIRE_* from the caller, and no `.env` in the cwd.
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRADEWIRE_")}
    env.update({
        "PYTHONPATH": os.pathsep.join(filter(None, [str(PROJECT), env.get("PYTHONPATH")])),
        "NO_COLOR": "1",
        "TRADEWIRE_DATABASE_URL": pg_server.url_for(database),
        "TRADEWIRE_TEMPORAL_ADDRESS": temporal_env.client.service_client.config.target_host,
        "TRADEWIRE_TASK_QUEUE": f"prod-shape-{uuid.uuid4().hex[:10]}",
        "TRADEWIRE_ADMIN_TOKEN": secrets.token_hex(32),
        "TRADEWIRE_SECRET_KEY": secrets.token_hex(32),
        "TRADEWIRE_EXCHANGE": "paper",
        "TRADEWIRE_EXCHANGE_BASE_URL": f"http://127.0.0.1:{exchange_port}",
        "TRADEWIRE_EXCHANGE_PORT": str(exchange_port),
        "TRADEWIRE_PAPER_HOST": "127.0.0.1",
        "TRADEWIRE_HOST": "127.0.0.1",
        "TRADEWIRE_WEBHOOK_PORT": str(web_port),
        "TRADEWIRE_LOG_LEVEL": "INFO",
    })
    try:
        with receiver() as hooks:
            built = Stack(tmp_path, env, hooks)
            try:
                yield built
            finally:
                built.kill_all()
                for service in built.services:
                    await service.proc.wait()
    finally:
        pg_server.drop_database(database)
        # The worker's Schedule would outlive the test on the session's Temporal.
        with contextlib.suppress(RPCError):
            await temporal_env.client.get_schedule_handle(
                pairs_schedule_id(env["TRADEWIRE_TASK_QUEUE"])).delete()


def alert(secret: str, **fields: Any) -> dict[str, Any]:
    return {
        "secret": secret, "strategy": "prod", "ticker": "BITUNIX:BTCUSDT.P",
        "alert_id": uuid.uuid4().hex,
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), **fields,
    }


def sql(url: str, query: str) -> list[tuple]:
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://", 1)) as conn:
        return conn.execute(query).fetchall()


async def test_compose_shaped_processes_trade_from_an_empty_database(
    stack: Stack, temporal_client: Client
) -> None:
    env = stack.env
    db_url = env["TRADEWIRE_DATABASE_URL"]
    web_url = f"http://127.0.0.1:{env['TRADEWIRE_WEBHOOK_PORT']}"
    admin = {"Authorization": f"Bearer {env['TRADEWIRE_ADMIN_TOKEN']}"}

    # --- exchange (the `paper` profile), then the one-shot migrate, as compose orders them -----
    exchange = await stack.start("exchange", "exchange")
    await stack.healthy(exchange, "exchange")
    code, out = await stack.run("migrate", "migrate", TRADEWIRE_EXCHANGE_BUDGET_SHARE="1")
    assert code == 0, out
    assert "database: at the newest schema" in out, out
    assert "search attributes" in out, out
    # The fresh install's pairs: the first alert is not refused as an unknown symbol.
    assert "pairs synced" in out, out
    assert sql(db_url, "SELECT count(*) FROM trading_pair WHERE symbol = 'BTCUSDT'") == [(1,)]

    # --- the strategy, added by a one-off process with a state dir of its own -------------------
    secret = secrets.token_urlsafe(24)
    code, out = await stack.run("strategy-add", "strategy", "add", "prod", "--secret-stdin",
                                stdin=secret.encode() + b"\n")
    assert code == 0, out
    assert "strategy 'prod' created" in out, out
    assert "checked with the server key TRADEWIRE_SECRET_KEY" in out, out  # no key file of its own

    # --- the worker (it signs: the whole budget; it sends the notifications), then the webhook
    # (no fast path, as compose: a small share for its public health read) ---------------------
    hooks = stack.receiver
    worker = await stack.start("worker", "worker", TRADEWIRE_EXCHANGE_BUDGET_SHARE="1",
                               TRADEWIRE_NOTIFY_WEBHOOK_URL=hooks.url + "/hook",
                               TRADEWIRE_NOTIFY_WEBHOOK_SECRET=NOTIFY_SECRET)
    await stack.healthy(worker, "worker")
    web = await stack.start("web", "web", TRADEWIRE_EXCHANGE_BUDGET_SHARE="0.1",
                            TRADEWIRE_FAST_PATH="false")
    await stack.healthy(web, "web")

    # The worker keeps the pairs synced on a Temporal Schedule (hourly by default).
    schedule = await temporal_client.get_schedule_handle(
        pairs_schedule_id(env["TRADEWIRE_TASK_QUEUE"])).describe()
    assert [i.every for i in schedule.schedule.spec.intervals] == [timedelta(hours=1)]
    action = schedule.schedule.action
    assert isinstance(action, ScheduleActionStartWorkflow)
    assert action.workflow == "PairsSyncWorkflow"
    assert action.task_queue == env["TRADEWIRE_TASK_QUEUE"]

    async with httpx.AsyncClient(base_url=web_url, timeout=10, trust_env=False) as http:
        # --- the entry: filled, then protected ---------------------------------------------------
        r = await http.post("/webhook/tradingview", json=alert(
            secret, action="buy", market_position="long", prev_market_position="flat",
            size=str(SIZE), tp_pct="5", sl_pct="5"))
        assert r.status_code in (200, 202), r.text  # 401 here: the key was not shared
        trade_id = r.json()["trade_id"]
        assert trade_id is not None, r.text

        async def shown(*statuses: str, protected: bool = False) -> dict[str, Any] | None:
            response = await http.get(f"/trades/{trade_id}", headers=admin)
            state = response.json().get("state") or {}
            if state.get("status") not in statuses:
                return None
            if protected and (state["protection"]["tp"] is None
                              or state["protection"]["sl"] is None
                              or state["protection"]["level"] == "none"):
                return None
            return response.json()

        tracking = await stack.eventually(
            f"trade #{trade_id} TRACKING with a TP and an SL on the exchange",
            lambda: shown("TRACKING", protected=True), budget_s=TRADE_BUDGET_S)
        state = tracking["state"]
        assert state["symbol"] == "BTCUSDT" and Decimal(state["filled_qty"]) == SIZE, state
        entry = Decimal(state["avg_entry_price"])
        protection = state["protection"]
        assert Decimal(protection["sl"]) < entry < Decimal(protection["tp"]), state

        # --- the exit: closed ---------------------------------------------------------------------
        r = await http.post("/webhook/tradingview", json=alert(
            secret, action="sell", market_position="flat", prev_market_position="long"))
        assert r.status_code in (200, 202), r.text
        closed = await stack.eventually(
            f"trade #{trade_id} CLOSED", lambda: shown("CLOSED"), budget_s=TRADE_BUDGET_S)
        assert Decimal(closed["state"]["closed_qty"]) == SIZE, closed["state"]
        assert closed["state"]["avg_exit_price"] is not None, closed["state"]

    assert sql(db_url, f"SELECT status FROM trade WHERE id = {int(trade_id)}") == [("CLOSED",)]
    # The worker process told the trader: opened, then closed, each signed.
    def told() -> list[str] | None:
        events = [r.json["event"] for r in hooks.at("/hook") if r.json.get("trade_id") == trade_id]
        return events if {"trade_opened", "trade_closed"} <= set(events) else None

    events = await stack.eventually("the trade's notifications", _sync(told),
                                    budget_s=TRADE_BUDGET_S)
    assert events.index("trade_opened") < events.index("trade_closed"), events
    for got in hooks.at("/hook"):
        stamp = got.headers["X-Tradewire-Timestamp"]
        mac = hmac.new(NOTIFY_SECRET.encode(), stamp.encode() + b"." + got.body, hashlib.sha256)
        assert got.headers["X-Tradewire-Signature"] == "sha256=" + mac.hexdigest()
    # Nothing was shared through a state dir: no process generated a server key of its own.
    assert not list(stack.tmp.glob(f"state-*/{SERVER_KEY_FILE}")), list(stack.tmp.glob("state-*/*"))

    # `docker compose down` sends SIGTERM: each stops within the grace period. (uvicorn
    # re-raises the signal after its graceful shutdown, so the web's status says SIGTERM.)
    for service in (web, worker, exchange):
        code = await stack.stop(service)
        assert code in (0, -signal.SIGTERM), f"{service.name} exited {code}:\n{service.output()}"
    assert "Application shutdown complete" in web.output(), web.output()
