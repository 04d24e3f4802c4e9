"""The container healthchecks, run as Docker runs them: a separate process, exit code and a line."""

from __future__ import annotations

import asyncio
import os
import sys
import time
import uuid
from pathlib import Path

from temporalio import workflow
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from settings import fast_path_queue
from tests.devstack.support import free_ports

PROJECT = Path(__file__).resolve().parents[2]


@workflow.defn(name="DevstackHealthProbe")
class HealthProbe:
    @workflow.run
    async def run(self) -> None:
        return None


async def healthcheck(component: str, tmp: Path, **settings: str) -> tuple[int, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRADEWIRE_")}
    env["PYTHONPATH"] = str(PROJECT)
    env.update({f"TRADEWIRE_{k.upper()}": v for k, v in settings.items()})
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "devstack.healthcheck",
        component,
        cwd=tmp,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode()


async def test_the_worker_check_passes_once_a_worker_on_this_host_polls_both_its_queues(
    temporal_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    target = temporal_env.client.service_client.config.target_host
    queue = f"devstack-health-{uuid.uuid4().hex}"
    # On a loaded machine one check can run out of its own 5 s budget, or its process die
    # (seen once in CI: SIGSEGV while starting), before it answers: Docker asks again at its
    # next interval, and so does this test, a few times.
    expected = f"no worker in this container polls task queue {queue!r}"
    for _ in range(5):
        code, out = await healthcheck("worker", tmp_path, temporal_address=target,
                                      task_queue=queue)
        if code == 1 and expected in out:
            break
    assert code == 1 and expected in out, (code, out)

    # Unsandboxed: the sandbox would re-import this test module, which reads the file system.
    def polling(task_queue: str) -> Worker:
        return Worker(temporal_env.client, task_queue=task_queue, workflows=[HealthProbe],
                      workflow_runner=UnsandboxedWorkflowRunner())

    async def until_answer(done) -> tuple[int, str]:
        deadline = time.monotonic() + 60
        while True:
            code, out = await healthcheck(
                "worker", tmp_path, temporal_address=target, task_queue=queue
            )
            if done(code, out) or time.monotonic() > deadline:
                return code, out
            await asyncio.sleep(0.5)

    # The main queue alone: the trades the webhook started eagerly would have no worker.
    fast = f"no worker in this container polls task queue {fast_path_queue(queue)!r}"
    async with polling(queue):
        code, out = await until_answer(lambda code, out: code == 1 and fast in out)
    assert code == 1 and fast in out, (code, out)
    async with polling(queue), polling(fast_path_queue(queue)):
        code, out = await until_answer(lambda code, out: code == 0)
    assert code == 0, out
    assert out == ""


async def test_the_web_check_fails_with_one_line_when_nothing_answers(tmp_path: Path) -> None:
    (port,) = free_ports(1)
    code, out = await healthcheck("web", tmp_path, webhook_port=str(port))
    assert code == 1
    assert out.strip() == f"unhealthy: GET http://127.0.0.1:{port}/healthz: ConnectError"


async def test_an_unknown_component_is_refused(tmp_path: Path) -> None:
    code, out = await healthcheck("database", tmp_path)
    assert code == 1 and "use web, ui, exchange or worker" in out
