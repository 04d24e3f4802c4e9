"""Readiness probes, and the loop that polls one until it answers or its process dies.

A probe returns the lines to print once the component is ready, or None while it is not;
an exception from a probe also means "not yet" and is remembered for the timeout message.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx

from settings import Settings

if TYPE_CHECKING:
    from temporalio.client import Client

POLL_INTERVAL_S = 0.2
READY_TIMEOUT_S = 90.0
# One check may not hang the wait (a connect to an address that drops packets never fails).
PROBE_TIMEOUT_S = 10.0


class NotReady(RuntimeError):
    """A component did not become ready: it exited, or it did not answer in time."""


class NotYet(Exception):
    """Raised by a probe to say what it saw instead of "ready"; polling goes on."""


@dataclass
class ProbeContext:
    settings: Settings
    pid: int
    http: httpx.AsyncClient
    temporal: Client | None


Probe = Callable[[ProbeContext], Awaitable[list[str] | None]]


def connect_host(host: str) -> str:
    """Where to connect to reach a server bound to `host` (a wildcard bind is reached locally)."""
    return {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)


def http_base(host: str, port: int) -> str:
    target = connect_host(host)
    if ":" in target:
        target = f"[{target}]"
    return f"http://{target}:{port}"


async def tcp_open(host: str, port: int) -> bool:
    try:
        _, writer = await asyncio.open_connection(connect_host(host), port)
    except OSError:
        return False
    writer.close()
    await writer.wait_closed()
    return True


async def expect_200(http: httpx.AsyncClient, url: str) -> None:
    response = await http.get(url)
    if response.status_code != 200:
        raise NotYet(f"GET {url} answered {response.status_code}: {response.text[:300]}")


async def poller_identities(client: Client, namespace: str, task_queue: str) -> list[str]:
    """Who polled the task queue's workflow tasks lately (the SDK's identity: `<pid>@<host>`)."""
    from temporalio.api.enums.v1 import TaskQueueType
    from temporalio.api.taskqueue.v1 import TaskQueue
    from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest

    response = await client.workflow_service.describe_task_queue(
        DescribeTaskQueueRequest(
            namespace=namespace,
            task_queue=TaskQueue(name=task_queue),
            task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
        )
    )
    return [poller.identity for poller in response.pollers]


async def wait_ready(
    name: str,
    probe: Callable[[], Awaitable[Any]],
    *,
    failed: Callable[[], str | None] = lambda: None,
    timeout_s: float = READY_TIMEOUT_S,  # float-ok: seconds
    interval_s: float = POLL_INTERVAL_S,  # float-ok: seconds
) -> Any:
    """Poll `probe` until it returns something other than None (or raises NotYet).

    Raises NotReady when `failed()` gives a reason to stop waiting (a process died) or after
    `timeout_s`.
    """
    deadline = time.monotonic() + timeout_s
    last_error = "no answer yet"
    while True:
        reason = failed()
        if reason is not None:
            subject = "it" if reason.startswith(f"{name} ") else name
            raise NotReady(f"{reason} before {subject} was ready (its output is above)")
        try:
            result = await asyncio.wait_for(probe(), PROBE_TIMEOUT_S)
        except NotYet as exc:
            last_error = str(exc)
        except TimeoutError:
            last_error = f"no answer within {PROBE_TIMEOUT_S:.0f} s"
        except Exception as exc:  # noqa: BLE001 - any failure of a probe means "not yet"
            last_error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        else:
            if result is not None:
                return result
        if time.monotonic() >= deadline:
            raise NotReady(
                f"{name} was not ready within {timeout_s:.0f} s (last check: {last_error})"
            )
        await asyncio.sleep(interval_s)
