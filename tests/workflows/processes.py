"""Real processes for the restart tests: a `python -m worker` child and a file-backed Temporal
dev server that a test can stop and start again on the same port."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest, GetSystemInfoRequest
from temporalio.client import Client

from tests.support.temporal import temporal_cli
from tests.workflows.harness import until
from workflows.converter import connect
from workflows.search_attributes import ALL as SEARCH_ATTRIBUTES

START_S = 60.0
REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ChildProcess:
    """A `python -m …` child of a test (`proc`, its log at `log_path`): killed, stopped and
    read the same way whatever it runs."""

    proc: subprocess.Popen[bytes] | None
    log_path: Path | None

    def kill(self) -> None:
        """SIGKILL: no shutdown of any kind, as a crash or an OOM kill."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)

    def log(self) -> str:
        """Everything the process printed: what a test asserts on (a tail can lose the start)."""
        return self.log_path.read_text(errors="replace") if self.log_path else ""

    def output(self) -> str:
        """The last of it, for an error message."""
        return self.log()[-4000:]


@dataclass
class WorkerProcess(ChildProcess):
    """`python -m worker` with the test's settings in its environment (no .env: its own cwd)."""

    env: dict[str, str]
    workdir: Path
    proc: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None

    def spawn(self) -> int:
        self.log_path = self.workdir / f"worker-{len(list(self.workdir.glob('worker-*')))}.log"
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "worker"], cwd=self.workdir, env=self.env,
                stdout=log, stderr=subprocess.STDOUT,
            )
        return self.proc.pid

    async def start(self, client: Client, task_queue: str) -> None:
        pid = self.spawn()
        await until(lambda: _polling(client, task_queue, pid, self), "the worker polls", START_S)


async def _polling(client: Client, task_queue: str, pid: int, worker: WorkerProcess) -> bool:
    if worker.proc is not None and worker.proc.poll() is not None:
        raise RuntimeError(f"the worker exited ({worker.proc.returncode}):\n{worker.output()}")
    try:
        response = await client.workflow_service.describe_task_queue(DescribeTaskQueueRequest(
            namespace=client.namespace, task_queue=TaskQueue(name=task_queue),
            task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
        ))
    except Exception:  # noqa: BLE001 - the server may be starting
        return False
    return any(p.identity.startswith(f"{pid}@") for p in response.pollers)


def worker_env(*, db_url: str, temporal: str, task_queue: str, exchange_url: str,
               api_key: str, api_secret: str, budget_scale: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRADEWIRE_")}
    env.update({
        "TRADEWIRE_DATABASE_URL": db_url,
        "TRADEWIRE_TEMPORAL_ADDRESS": temporal,
        "TRADEWIRE_TASK_QUEUE": task_queue,
        "TRADEWIRE_EXCHANGE": "paper",
        "TRADEWIRE_EXCHANGE_BASE_URL": exchange_url,
        "TRADEWIRE_PAPER_API_KEY": api_key,
        "TRADEWIRE_PAPER_API_SECRET": api_secret,
        "TRADEWIRE_EXCHANGE_BUDGET_SCALE": budget_scale,
        "TRADEWIRE_WATCHER_INTERVAL_S": "0.5",
        "TRADEWIRE_LOG_LEVEL": "INFO",
        "PYTHONUNBUFFERED": "1",
        # The child runs in a directory of its own (no .env to pick up), importing this tree.
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")])),
    })
    return env


@dataclass
class DevServer:
    """A Temporal dev server persisting to a file, restartable on the same port."""

    workdir: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def argv(self) -> list[str]:
        argv = [
            temporal_cli(), "server", "start-dev", "--ip", "127.0.0.1", "--port", str(self.port),
            "--headless", "--db-filename", str(self.workdir / "temporal.db"),
            "--log-level", "error",
            "--dynamic-config-value", "system.enableEagerWorkflowStart=true",
        ]
        for key in SEARCH_ATTRIBUTES:
            argv += ["--search-attribute", f"{key.name}=Keyword"]
        return argv

    def spawn(self) -> None:
        with (self.workdir / "temporal.log").open("ab") as log:
            self.proc = subprocess.Popen(self.argv(), stdout=log, stderr=subprocess.STDOUT)

    async def start(self) -> Client:
        self.spawn()
        return await until(self._connect, "the Temporal dev server answers", START_S)

    async def _connect(self) -> Client | None:
        try:
            client = await connect(self.target, "default")
            await client.workflow_service.get_system_info(GetSystemInfoRequest())
            return client
        except Exception:  # noqa: BLE001 - not up yet
            await asyncio.sleep(0.2)
            return None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
