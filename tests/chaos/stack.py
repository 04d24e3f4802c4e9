"""One long-lived real stack for the randomized fault runs: the embedded PostgreSQL, the paper
exchange over HTTP (partial fills on, walk frozen), a file-backed Temporal dev server, a
`python -m worker` process and a `python -m cli web` process (the webhook, hosting the fast-path
worker). Runs reuse it; a fault restarts only what it killed. Every child is ours, stopped by
its own pid."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from temporalio.client import Client

from db.migrate import upgrade
from db.session import make_engine, make_sessionmaker
from exchange.client import BitunixClient
from pair_catalog import sync_pairs
from settings import Settings
from tests.support.paper import PaperExchange, run_paper_exchange
from tests.support.postgres import PostgresServer
from tests.support.waiting import eventually
from tests.workflows.processes import (
    ChildProcess,
    DevServer,
    WorkerProcess,
    free_port,
    worker_env,
)
from webhook import strategies

RATE_SCALE = Decimal(20)  # the test, the worker, the webhook and the watcher share one account
SECRET_KEY = "chaos-server-key-0123456789abcdef"
ADMIN_TOKEN = "chaos-admin-token-0123456789abcdef"
START_S = 60.0
# Settings of both app processes, chosen to keep runs short: the watcher reads every 0.5 s; an
# order unseen for 10 s was never placed (the lag faults last at most 3 s). The settle window
# and the incident policy keep their defaults (10 s, protect): the policy acts on incidents.
APP_ENV = {
    "TRADEWIRE_WATCHER_INTERVAL_S": "0.5",
    "TRADEWIRE_ORDER_VISIBILITY_S": "10",
    "TRADEWIRE_EXCHANGE_TIMEOUT_S": "2",
}


@dataclass
class WebhookProcess(ChildProcess):
    """`python -m cli web` on a fixed port (the same across restarts), fast path on."""

    env: dict[str, str]
    workdir: Path
    port: int
    proc: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None
    spawns: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def spawn(self) -> None:
        self.spawns += 1
        self.log_path = self.workdir / f"webhook-{self.spawns}.log"
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "cli", "web"], cwd=self.workdir, env=self.env,
                stdout=log, stderr=subprocess.STDOUT,
            )

    async def start(self) -> None:
        self.spawn()
        await eventually(self._answers, "the webhook answers /healthz", START_S,
                         give_up=self._exited)

    def _exited(self) -> str | None:
        if self.proc is not None and self.proc.poll() is not None:
            return f"the webhook exited ({self.proc.returncode}):\n{self.output()}"
        return None

    async def _answers(self) -> bool:
        try:
            async with httpx.AsyncClient(timeout=2) as http:
                await http.get(self.url + "/healthz")
            return True
        except httpx.HTTPError:
            return False

@dataclass
class ChaosStack:
    workdir: Path
    paper: PaperExchange
    server: DevServer
    client: Client
    db_url: str
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    exchange: BitunixClient
    worker: WorkerProcess
    webhook: WebhookProcess
    task_queue: str
    worker_logs: list[Path] = field(default_factory=list)

    @property
    def settings(self) -> Settings:
        return Settings(_env_file=None, secret_key=SecretStr(SECRET_KEY),  # type: ignore[call-arg]
                        state_dir=self.workdir)

    async def add_strategy(self, **params: Any) -> tuple[str, str]:
        """A strategy of its own for one run: (name, webhook secret)."""
        name = f"chaos-{uuid.uuid4().hex[:10]}"
        _, secret = await strategies.add(self.sessionmaker, SECRET_KEY.encode(), name,
                                         params=params)
        return name, secret

    # --- faults on processes ----------------------------------------------------------------

    def worker_alive(self) -> bool:
        return self.worker.proc is not None and self.worker.proc.poll() is None

    def webhook_alive(self) -> bool:
        return self.webhook.proc is not None and self.webhook.proc.poll() is None

    def kill_worker(self) -> None:
        self.worker.kill()

    async def start_worker(self) -> None:
        await self.worker.start(self.client, self.task_queue)
        assert self.worker.log_path is not None
        self.worker_logs.append(self.worker.log_path)

    def kill_webhook(self) -> None:
        self.webhook.kill()

    async def start_webhook(self) -> None:
        await self.webhook.start()

    def stop_temporal(self) -> None:
        self.server.stop()

    async def start_temporal(self) -> None:
        self.client = await self.server.start()

    async def resync_pairs(self) -> None:
        """The pair table from the exchange again (a rule rejection during a STOP fault
        refreshes a pair's row to STOP; the webhook refuses alerts on it until then)."""
        await sync_pairs(self.exchange, self.sessionmaker)

    async def restore(self) -> None:
        """Every part running again, no fault left set (between runs)."""
        await self.paper.admin.clear_faults()
        if self.server.proc is None or self.server.proc.poll() is not None:
            await self.start_temporal()
        if not self.worker_alive():
            await self.start_worker()
        if not self.webhook_alive():
            await self.start_webhook()


@contextlib.asynccontextmanager
async def chaos_stack(pg: PostgresServer, workdir: Path) -> AsyncIterator[ChaosStack]:
    name = pg.create_database("tw_chaos")
    db_url = pg.url_for(name)
    await asyncio.to_thread(upgrade, db_url)
    engine = make_engine(db_url)
    sessionmaker = make_sessionmaker(engine)
    server = DevServer(workdir=workdir)
    worker: WorkerProcess | None = None
    webhook: WebhookProcess | None = None
    try:
        async with run_paper_exchange(paper_rate_limit_scale=RATE_SCALE,
                                      paper_partial_fills=True) as paper:
            exchange = BitunixClient(paper.base_url, paper.api_key, SecretStr(paper.api_secret),
                                     budget_scale=RATE_SCALE)
            try:
                await sync_pairs(exchange, sessionmaker)
                client = await server.start()
                task_queue = f"tw-chaos-{uuid.uuid4().hex[:8]}"
                env = worker_env(db_url=db_url, temporal=server.target, task_queue=task_queue,
                                 exchange_url=paper.base_url, api_key=paper.api_key,
                                 api_secret=paper.api_secret, budget_scale=str(RATE_SCALE))
                env.update(APP_ENV)
                env.update({
                    "TRADEWIRE_SECRET_KEY": SECRET_KEY,
                    "TRADEWIRE_ADMIN_TOKEN": ADMIN_TOKEN,
                    "TRADEWIRE_STATE_DIR": str(workdir / "state"),
                })
                worker = WorkerProcess(env=env, workdir=workdir)
                port = free_port()
                webhook = WebhookProcess(
                    env=env | {"TRADEWIRE_FAST_PATH": "true", "TRADEWIRE_HOST": "127.0.0.1",
                               "TRADEWIRE_WEBHOOK_PORT": str(port)},
                    workdir=workdir, port=port,
                )
                stack = ChaosStack(workdir, paper, server, client, db_url, engine, sessionmaker,
                                   exchange, worker, webhook, task_queue)
                await stack.start_worker()
                await stack.start_webhook()
                yield stack
            finally:
                await exchange.aclose()
    finally:
        for proc in (webhook, worker):
            if proc is not None:
                proc.stop()
        server.stop()
        await engine.dispose()
        with contextlib.suppress(Exception):
            pg.drop_database(name)


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value else default
