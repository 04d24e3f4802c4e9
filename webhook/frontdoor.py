"""What every request meets before a route reads its body (ASGI middleware).

- Admin routes (/trades, /incidents, /risk) check the admin token first: without it the answer is 401
  and the body is never read, so an anonymous caller can make the process neither read nor
  parse anything (FastAPI parses a route's body before its dependencies run, so the routes'
  own `require_admin` alone came too late).
- Every other body is capped at `admin_body_max_bytes` (413, the connection closed, the rest
  never read). The alert route reads its own body under its own, smaller cap and records the
  refusal like every other delivery.
- An alert's body is taken from the server in the request's first step, before anything can
  wait (`_taken_now`). The server forgets a body it holds once its sender disconnects, and in a
  candle-close burst a sender can give up (TradingView's 3 s) while its request waits its turn:
  an alert that arrived whole is then handled as if the answer had gone out, since TradingView
  never sends it again.
"""

from __future__ import annotations

import logging
from collections import deque
from typing import Any

from fastapi.responses import JSONResponse
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from settings import Settings
from webhook.deps import has_admin_token
from webhook.schemas import MAX_BODY_BYTES

log = logging.getLogger("webhook")

ADMIN_PREFIXES = ("/trades", "/incidents", "/risk")
OWN_CAP_PATHS = frozenset({"/webhook/tradingview"})
ADMIN_REQUIRED = (
    "admin token required: send `Authorization: Bearer <token>` (TRADEWIRE_ADMIN_TOKEN, "
    "or the admin-token file in the state dir)"
)


def is_admin_path(path: str) -> bool:
    return any(path == prefix or path.startswith(prefix + "/") for prefix in ADMIN_PREFIXES)


def declared_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            return int(value) if value.isdigit() else None
    return None


class FrontDoor:
    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["path"] in OWN_CAP_PATHS:
            await self.app(scope, await _taken_now(scope, receive, MAX_BODY_BYTES), send)
            return
        if is_admin_path(scope["path"]) and not has_admin_token(Request(scope), self.settings):
            await _refuse(401, ADMIN_REQUIRED, {"WWW-Authenticate": "Bearer"})(scope, receive, send)
            return
        limit = self.settings.admin_body_max_bytes
        declared = declared_length(scope)
        if declared is not None and declared > limit:
            await _too_large(limit)(scope, receive, send)
            return
        taken = await _read_capped(receive, limit)
        body = b"".join(m.get("body", b"") for m in taken)
        if taken[-1]["type"] != "http.request" and len(body) != declared:
            # The sender left before its body was whole: nobody waits for an answer, and what
            # came must not be acted on as if it were the request (a halt or an adoption whose
            # body was cut short after a complete JSON value would be carried out). One that
            # came whole (a bodiless cancel, say) is carried out, as it always was.
            log.warning("%s %s: the connection closed after %d of %s bytes of its body: not "
                        "carried out", scope["method"], scope["path"], len(body),
                        "?" if declared is None else declared)
            return
        if len(body) > limit:
            await _too_large(limit)(scope, receive, send)
            return
        await self.app(scope, _replay(body, receive), send)


async def _read_capped(receive: Receive, limit: int) -> deque[Message]:
    """The body's messages as the server gives them, up to its end, up to a disconnect (then the
    last message), or up to the first one that takes it past `limit`: at most `limit` bytes plus
    one message are ever held. The one loop that reads a body here: the admin routes join the
    messages into one body, the alert route replays them as they came (`_taken_now`)."""
    taken: deque[Message] = deque()
    size = 0
    while True:
        message = await receive()
        taken.append(message)
        if message["type"] != "http.request":
            return taken  # disconnected: no more to read
        size += len(message.get("body", b""))
        if size > limit or not message.get("more_body", False):
            return taken


async def _taken_now(scope: Scope, receive: Receive, limit: int) -> Receive:
    """The body as far as the route will read it (to its end, to a disconnect, or just past
    `limit`), taken from the server at once; the route receives the same messages, then the
    server's own. A declared length over `limit` is left unread: the route refuses it unread."""
    declared = declared_length(scope)
    if declared is not None and declared > limit:
        return receive
    if any(n == b"expect" and v.lower() == b"100-continue" for n, v in scope["headers"]):
        # Its body is not sent until it is asked for (TradingView never asks): a throttled
        # sender is answered 429 before it sends a byte of it.
        return receive
    # Replayed message by message, not joined: the route sees a disconnect as a disconnect (it
    # records the delivery cut off) and reads on past `limit` from the server to refuse it.
    taken = await _read_capped(receive, limit)

    async def replay() -> Message:
        return taken.popleft() if taken else await receive()

    return replay


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()  # after the body: wait for the disconnect, as the server would

    return replay


def _refuse(status: int, detail: str, headers: dict[str, Any] | None = None) -> JSONResponse:
    # Connection: close, so the unread rest of the body is never read as a next request.
    return JSONResponse({"detail": detail}, status_code=status,
                        headers={**(headers or {}), "Connection": "close"})


def _too_large(limit: int) -> JSONResponse:
    return _refuse(413, f"body larger than {limit} bytes: admin requests are small JSON objects")
