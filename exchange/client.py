"""BitunixClient: every BitUnix futures call, through one request path.

`_request` builds the query and body once, signs exactly what it sends, sends it over one pooled
`httpx.AsyncClient`, and turns every failure into an `exchange.errors` type. There are no retries
here: the caller (a Temporal activity) owns retries, because only it knows whether a re-send is safe
(docs/design.md#idempotent-placement). The typed endpoint methods live in exchange/endpoints/ (one
mixin per group of endpoints); they convert amounts with `parse.format_decimal` on the way out and
`exchange.parse` on the way back, and all of them go through `_request`.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any, Literal, TypeVar

import httpx
from pydantic import SecretStr, ValidationError

from exchange import schemas as w
from exchange.budget import Budget, RequestBudget
from exchange.clock import ClockWatch
from exchange.endpoints.account import AccountEndpoints
from exchange.endpoints.base import BeforeSend
from exchange.endpoints.market import MarketEndpoints
from exchange.endpoints.orders import OrderEndpoints
from exchange.endpoints.positions import PositionEndpoints
from exchange.endpoints.tpsl import TpslEndpoints
from exchange.errors import (
    BadResponse,
    CancelledBeforeSend,
    ExchangeError,
    OutcomeUnknown,
    Unavailable,
    error_for,
    error_for_http,
    error_for_transport,
)
from exchange.signing import QueryValue, query_items, sign

log = logging.getLogger("exchange.client")

T = TypeVar("T")
API = "/api/v1/futures/"
# Told of every request once it is answered: (endpoint, code, seconds). The code is "0" when
# done, else the BitUnix code, "http_<status>", "transport", "unreadable" or "cancelled".
Observer = Callable[[str, str, float], None]  # float-ok: seconds
# A `before_send` that took longer than this put the request behind its budget slot; a late
# send could come closer than a window to the slots after it (a 10006), so it waits for another.
LATE_AFTER_SLOT_S = 0.1


def _mask(key: str) -> str:
    return (key[:4] if len(key) >= 8 else "") + "…"


class BitunixClient(
    MarketEndpoints, AccountEndpoints, OrderEndpoints, PositionEndpoints, TpslEndpoints
):
    def __init__(
        self,
        base_url: str,
        api_key: str,
        api_secret: SecretStr,
        *,
        timeout_s: Decimal | float = Decimal(5),
        budget_share: Decimal = Decimal(1),
        budget_scale: Decimal = Decimal(1),
        transport: httpx.AsyncBaseTransport | None = None,
        budget: RequestBudget | None = None,
        observer: Observer | None = None,
        clock: ClockWatch | None = None,
    ) -> None:
        """`budget`: pass one budget to every client of the same account in this process (the
        account's SharedBudget where the database is at hand); by default each client gets its
        own Budget, sized by `budget_share` × `budget_scale`.
        `observer`: told of every request's answer (the process's metrics).
        `clock`: what every answer's Date header tells of our clock (exchange/clock.py)."""
        if not isinstance(api_secret, SecretStr):
            raise TypeError("api_secret must be a pydantic SecretStr")
        self.base_url = base_url.rstrip("/")
        self._api_key = api_key
        self._secret = api_secret
        self._budget = budget or Budget(share=budget_share, scale=budget_scale)
        self._observer = observer
        self.clock = clock or ClockWatch()
        self._http = httpx.AsyncClient(
            base_url=self.base_url,
            timeout=httpx.Timeout(float(timeout_s)),  # float-ok: time or rate, not money
            transport=transport,
            headers={"Content-Type": "application/json", "language": "en-US"},
        )

    def __repr__(self) -> str:
        return f"BitunixClient(base_url={self.base_url!r}, api_key={_mask(self._api_key)!r})"

    async def __aenter__(self) -> BitunixClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    # --- the one request path --------------------------------------------------------------------

    async def _request(
        self,
        method: Literal["GET", "POST"],
        endpoint: str,
        decode: Callable[[Any], T],
        *,
        params: dict[str, QueryValue] | None = None,
        body: w.Request | None = None,
        signed: bool = True,
        before_send: BeforeSend | None = None,
    ) -> T:
        """Send one request and return `decode(data)`; raise an ExchangeError otherwise.

        POST bodies are serialized once; that exact string is signed and sent as the body.
        Cancelled while it waits for its turn (the budget, `before_send`), it raises
        CancelledBeforeSend: nothing was sent.
        """
        path = API + endpoint
        mutating = method == "POST"
        await self._turn(path, before_send)
        query = query_items(params or {})
        body_text = w.dumps(body.wire()) if body is not None else ""
        headers: dict[str, str] = {}
        if signed:
            nonce = uuid.uuid4().hex
            timestamp = str(time.time_ns() // 1_000_000)
            headers = {
                "api-key": self._api_key,
                "nonce": nonce,
                "timestamp": timestamp,
                "sign": sign(
                    self._api_key,
                    self._secret.get_secret_value(),
                    nonce,
                    timestamp,
                    dict(query),
                    body_text,
                ),
            }
        started = time.perf_counter()
        code = "cancelled"  # anything but an answer or an ExchangeError: the call was cancelled
        try:
            response = await self._send(method, path, endpoint, query, body_text, headers)
            result = self._answer(response, endpoint, mutating, decode)
            code = "0"
            return result
        except ExchangeError as err:
            code = _code(err)
            raise
        finally:
            self._observe(endpoint, code, time.perf_counter() - started)

    async def _turn(self, path: str, before_send: BeforeSend | None) -> None:
        """Wait for the request's budget slot, then run `before_send` within it. A
        `before_send` that made the request late for its slot gets one more slot (and runs
        again), never more: a slow database must not keep a request from ever going."""
        try:
            await self._budget.acquire(path)
            for lap in range(2):
                if before_send is None:
                    return
                began = time.monotonic()
                await before_send()
                if lap == 1 or time.monotonic() - began <= LATE_AFTER_SLOT_S:
                    return
                await self._budget.acquire(path)
        except CancelledBeforeSend:
            raise
        except asyncio.CancelledError as exc:
            raise CancelledBeforeSend(f"{path}: cancelled before it was sent") from exc

    def _observe(self, endpoint: str, code: str, elapsed_s: float) -> None:  # float-ok: seconds
        if self._observer is None:
            return
        try:
            self._observer(endpoint, code, elapsed_s)
        except Exception:  # noqa: BLE001 - a metrics failure must never fail a request
            log.exception("exchange observer failed")

    async def _send(
        self, method: str, path: str, endpoint: str, query: list[tuple[str, str]],
        body_text: str, headers: dict[str, str],
    ) -> httpx.Response:
        mutating = method == "POST"
        started = time.perf_counter()
        sent_ms = time.time_ns() // 1_000_000
        try:
            response = await self._http.request(
                method,
                path,
                params=query,
                content=body_text.encode("utf-8") if mutating else None,
                headers=headers,
            )
        except httpx.HTTPError as exc:
            log.warning("%s %s failed: %s", method, endpoint, type(exc).__name__)
            raise error_for_transport(exc, mutating=mutating).at(endpoint) from exc
        elapsed_ms = (time.perf_counter() - started) * 1000
        # The last Date: a server (a paper exchange under uvicorn) may add one of its own first.
        dates = response.headers.get_list("date")
        self.clock.observe(dates[-1] if dates else None, sent_ms, time.time_ns() // 1_000_000)
        log.debug("%s %s → HTTP %s in %.1f ms", method, endpoint, response.status_code, elapsed_ms)
        return response

    def _answer(
        self, response: httpx.Response, endpoint: str, mutating: bool, decode: Callable[[Any], T],
    ) -> T:
        method = "POST" if mutating else "GET"
        try:
            envelope = self._envelope(response, endpoint, mutating)
            if envelope.code != 0:
                raise error_for(envelope.code, envelope.msg, mutating=mutating).at(endpoint)
        except ExchangeError as err:
            log.info("%s %s refused: %s", method, endpoint, err)
            raise
        try:
            return decode(envelope.data)
        except (ValidationError, ValueError, TypeError, InvalidOperation) as exc:
            # Code 0 with an answer we cannot read: a mutation probably happened.
            cls = OutcomeUnknown if mutating else BadResponse
            raise cls(0, f"unreadable answer: {_brief(exc)}").at(endpoint) from exc

    @staticmethod
    def _envelope(response: httpx.Response, endpoint: str, mutating: bool) -> w.Envelope:
        status = response.status_code
        try:
            envelope = w.Envelope.model_validate(w.loads(response.content))
        except (ValidationError, ValueError):
            envelope = None
        if status == 200 and envelope is not None:
            return envelope
        if envelope is not None and envelope.code != 0 and status < 500:
            # A 4xx carrying a BitUnix code: the code is the more precise answer.
            err: ExchangeError = error_for(envelope.code, envelope.msg, mutating=mutating)
            err.http_status = status
            raise err.at(endpoint)
        if status == 200:
            # Something between us and the exchange answered, not BitUnix.
            cls = OutcomeUnknown if mutating else Unavailable
            raise cls(None, "HTTP 200 without a BitUnix envelope", http_status=200).at(endpoint)
        raise error_for_http(status, response.reason_phrase, mutating=mutating).at(endpoint)


def _code(err: ExchangeError) -> str:
    if err.code is not None:
        return "unreadable" if err.code == 0 else str(err.code)
    if err.http_status is not None and err.http_status != 200:
        return f"http_{err.http_status}"
    return "transport" if err.http_status is None else "unreadable"


def _brief(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        return f"{where}: {first['msg']} ({exc.error_count()} error(s))"
    return str(exc)
