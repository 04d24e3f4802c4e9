"""How Tradewire runs an HTTP server (the webhook and the paper exchange): uvicorn with the
limits an internet-facing server needs, and no trust in forwarded headers.

`server_options` is the one place these are decided; `tradewire web` and `tradewire exchange`
pass its result to `uvicorn.run`, and the tests serve the same options over real sockets.

- Forwarded headers: uvicorn's own trust is off (`proxy_headers=False`). By default it rewrites
  the client address from X-Forwarded-For for any loopback peer, so a same-host TCP forwarder
  (stunnel, socat, `ssh -R`) turned the IP allow-list into a header the sender writes. Only
  TRADEWIRE_TRUSTED_PROXIES decides (webhook/auth.py `source_address`).
- Slow or silent clients: uvicorn times out only the idle gap after a response. A request's
  headers and body must now arrive within `http_request_timeout_s` of its first byte (or of the
  connection opening), else the connection is closed (GuardedH11Protocol); headers are capped
  at `http_max_header_bytes`; connections beyond `http_limit_concurrency` are answered 503.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

from settings import Settings


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol plus one deadline per request: from the connection opening (or the
    first byte after a response), the whole request, headers and body, must be in within
    `request_timeout_s`. Handling time does not count: the deadline stops once the request is
    read. A body still arriving after an early answer (a 401 or 413 sent unread) counts too."""

    request_timeout_s: float = 10.0  # float-ok: seconds; set per server by guarded_h11()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deadline: asyncio.TimerHandle | None = None
        self._answered: object | None = None  # the cycle whose response is complete

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self._request_read():
            self._disarm()
        else:
            self._arm()

    def on_response_complete(self) -> None:
        self._answered = self.cycle
        super().on_response_complete()  # may start a pipelined request already buffered
        if self.cycle is not self._answered and not self._request_read():
            self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _request_read(self) -> bool:
        cycle = self.cycle
        return cycle is not None and cycle is not self._answered and not cycle.more_body

    def _arm(self) -> None:
        if self._deadline is None:
            self._deadline = self.loop.call_later(self.request_timeout_s, self._expired)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expired(self) -> None:
        self._deadline = None
        if not self._request_read() and not self.transport.is_closing():
            self.logger.info("closing a connection whose request took over %ss to arrive",
                             self.request_timeout_s)
            self.transport.close()


def guarded_h11(request_timeout_s: float) -> type[GuardedH11Protocol]:  # float-ok: seconds
    """The protocol class for one server (uvicorn instantiates it per connection)."""
    return type("GuardedH11Protocol", (GuardedH11Protocol,),
                {"request_timeout_s": request_timeout_s})


def server_options(settings: Settings, *, host: str, port: int) -> dict[str, Any]:
    """Keyword arguments for `uvicorn.run` / `uvicorn.Config` (the app aside)."""
    return {
        "host": host,
        "port": port,
        "log_config": None,
        "access_log": False,
        # No route is a WebSocket: "auto" would import a WebSocket implementation for nothing.
        "ws": "none",
        "http": guarded_h11(float(settings.http_request_timeout_s)),  # float-ok: seconds
        "h11_max_incomplete_event_size": settings.http_max_header_bytes,
        "timeout_keep_alive": float(settings.http_keepalive_s),  # float-ok: seconds
        "limit_concurrency": settings.http_limit_concurrency,
        "proxy_headers": False,
        "server_header": False,
    }
