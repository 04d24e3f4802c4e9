"""The webhook app served over real HTTP (uvicorn with the production server options, on a free
port, in its own thread and event loop), for the CLI and the fuzzing tests, which are
synchronous clients."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn

from serving import server_options
from settings import Settings
from webhook.app import create_app

START_TIMEOUT_S = 30


@contextmanager
def run_webhook(settings: Settings, database_url: str) -> Iterator[str]:
    """Yield the base URL of a running webhook; stop it on exit."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    settings = settings.model_copy(update={"webhook_port": port})
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(settings, database_url=database_url),
            # The server `tradewire web` runs (its protocol, limits and event loop), so what
            # these tests see over the socket is what a deployment does.
            **server_options(settings, host="127.0.0.1", port=port),
            lifespan="on",
            timeout_graceful_shutdown=1,
        )
    )
    thread = threading.Thread(
        target=lambda: server.run(sockets=[sock]),  # on the event loop uvicorn.run picks (uvloop)
        name=f"webhook-{port}",
        daemon=True,
    )
    thread.start()
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the webhook did not start; see the log above")
            time.sleep(0.01)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(15)
        sock.close()
