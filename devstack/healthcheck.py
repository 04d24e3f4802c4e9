"""Container healthchecks for docker-compose: `python -m devstack.healthcheck web|ui|exchange|worker`.

Exit 0 when healthy; otherwise exit 1 with one line saying what is wrong (Docker shows it in
`docker inspect`). Each check asks the process itself, from inside its own container.
"""

from __future__ import annotations

import asyncio
import socket
import sys

import httpx

from devstack.readiness import http_base, poller_identities
from settings import Settings, fast_path_queue

TIMEOUT_S = 5.0


class Unhealthy(RuntimeError):
    pass


def check_http(url: str) -> None:
    try:
        response = httpx.get(url, timeout=TIMEOUT_S, trust_env=False)
    except httpx.HTTPError as exc:
        raise Unhealthy(f"GET {url}: {type(exc).__name__}") from exc
    if response.status_code != 200:
        raise Unhealthy(f"GET {url} answered {response.status_code}: {response.text[:200]}")


async def check_worker(settings: Settings) -> None:
    """Healthy when Temporal lists a poller from this container (identity `<pid>@<hostname>`)
    on the task queue and on the fast path's queue: a worker that polls only one of them
    leaves the trades of the other without a worker (`worker.main_workers`)."""
    from temporalio.client import Client

    client = await Client.connect(settings.temporal_target, namespace=settings.temporal_namespace)
    suffix = f"@{socket.gethostname()}"
    for queue in (settings.task_queue, fast_path_queue(settings.task_queue)):
        identities = await poller_identities(client, settings.temporal_namespace, queue)
        if not any(identity.endswith(suffix) for identity in identities):
            raise Unhealthy(f"no worker in this container polls task queue {queue!r}")


def check(component: str, settings: Settings) -> None:
    if component == "web":
        check_http(http_base(settings.host, settings.webhook_port) + "/healthz")
    elif component == "ui":
        check_http(http_base(settings.ui_host, settings.ui_port) + "/healthz")
    elif component == "exchange":
        check_http(http_base(settings.paper_host, settings.exchange_port) + "/__admin/health")
    elif component == "worker":
        asyncio.run(asyncio.wait_for(check_worker(settings), TIMEOUT_S))
    else:
        raise Unhealthy(f"unknown component {component!r}: use web, ui, exchange or worker")


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m devstack.healthcheck web|ui|exchange|worker", file=sys.stderr)
        return 2
    try:
        check(args[0], Settings())
    except (Unhealthy, TimeoutError, RuntimeError, OSError) as exc:
        print(f"unhealthy: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
