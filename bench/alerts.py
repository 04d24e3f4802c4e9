"""Talking to a benchmark stack the way TradingView and an operator would: strategies through
`tradewire strategy add`, alerts as JSON POSTs, orders read back from the paper exchange's
request log (its own receive timestamps)."""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any

import httpx

from bench.paper_admin import PaperAdmin
from bench.stack import REPO, Stack
from trading.ids import HASH_CHARS, LEG_ENTRY, PREFIX

WEBHOOK_PATH = "/webhook/tradingview"
PLACE_ORDER = "/api/v1/futures/trade/place_order"
POLL_S = 0.005
ORDER_TIMEOUT_S = 30.0
# trading/ids.py: "TW" + 20 hash characters + the leg's letters + the sequence number.
_CLIENT_ID = re.compile(rf"{PREFIX}[A-Z2-7]{{{HASH_CHARS}}}([A-Z]{{1,4}})\d+")


def leg_of(client_id: str | None) -> str | None:
    """The leg letters of a Tradewire client order id ("E" entry, "X" exit, …), else None."""
    found = _CLIENT_ID.fullmatch(client_id or "")
    return found.group(1) if found else None


class BenchFailure(RuntimeError):
    """The stack did not do what a measurement needs (the message says what and where)."""


@dataclass(frozen=True)
class BenchStrategy:
    name: str
    secret: str


def add_strategy(stack: Stack, name: str, *, rate_limit_per_min: int, size: str,
                 tracking_interval_s: int | None = None) -> BenchStrategy:
    """`tradewire strategy add` against the stack's database, market orders of `size` (and
    the trades' own re-check every `tracking_interval_s`, when given)."""
    secret = secrets.token_urlsafe(24)
    argv = [sys.executable, "-m", "cli", "strategy", "add", name, f"--secret={secret}",
            "--rate-limit", str(rate_limit_per_min), "--size", size, "--order-type", "market"]
    if tracking_interval_s is not None:
        argv += ["--tracking-interval", str(tracking_interval_s)]
    done = subprocess.run(argv, cwd=REPO, env=stack.env, capture_output=True, text=True,
                          timeout=120)
    if done.returncode != 0:
        raise BenchFailure(f"`tradewire strategy add {name}` failed ({done.returncode}): "
                           f"{done.stderr.strip()[-500:]}")
    return BenchStrategy(name, secret)


def open_body(strategy: BenchStrategy, symbol: str, alert_id: str) -> dict[str, Any]:
    return {
        "secret": strategy.secret, "strategy": strategy.name, "ticker": symbol,
        "action": "buy", "market_position": "long", "prev_market_position": "flat",
        "alert_id": alert_id,
    }


def close_body(strategy: BenchStrategy, symbol: str, alert_id: str) -> dict[str, Any]:
    return {
        "secret": strategy.secret, "strategy": strategy.name, "ticker": symbol,
        "action": "sell", "market_position": "flat", "prev_market_position": "long",
        "alert_id": alert_id,
    }


@dataclass(frozen=True)
class Ack:
    status: int
    body: dict[str, Any]
    sent_ns: int  # time.time_ns() just before the POST (the exchange's clock is the same)
    ack_ms: float  # float-ok: milliseconds, until the answer was read


class AlertPoster:
    def __init__(self, webhook_url: str, *, connections: int = 16,
                 timeout_s: float = 60.0, whole: bool = False) -> None:  # float-ok: seconds
        # `whole`: `timeout_s` bounds the whole request, as TradingView's 3 s does (httpx's
        # own timeout bounds each phase, connect, write and read, on its own).
        self._whole = timeout_s if whole else None
        self._http = httpx.AsyncClient(
            base_url=webhook_url, timeout=timeout_s, trust_env=False,
            limits=httpx.Limits(max_connections=connections,
                                max_keepalive_connections=connections),
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def post(self, body: dict[str, Any]) -> Ack:
        content = json.dumps(body, separators=(",", ":")).encode()
        headers = {"Content-Type": "application/json"}
        sent_ns = time.time_ns()
        t0 = time.perf_counter_ns()
        try:
            response = await asyncio.wait_for(
                self._http.post(WEBHOOK_PATH, content=content, headers=headers), self._whole)
        except (httpx.HTTPError, TimeoutError) as exc:
            # No answer at all (connection refused, reset, timeout): status 0 in the report.
            ack_ms = (time.perf_counter_ns() - t0) / 1e6
            return Ack(0, {"transport_error": type(exc).__name__}, sent_ns, ack_ms)
        ack_ms = (time.perf_counter_ns() - t0) / 1e6
        try:
            answer = response.json()
        except ValueError:
            answer = {"text": response.text[:300]}
        return Ack(response.status_code, answer, sent_ns, ack_ms)


async def next_order(admin: PaperAdmin, since_ns: int, *, leg: str = LEG_ENTRY,
                     timeout_s: float = ORDER_TIMEOUT_S) -> dict[str, Any]:  # float-ok: seconds
    """The first place_order of `leg` the exchange received at or after `since_ns`."""
    deadline = time.monotonic() + timeout_s
    while True:
        for entry in await admin.requests(since_ns=since_ns):
            if entry["path"] == PLACE_ORDER and leg_of(entry["client_id"]) == leg:
                return entry
        if time.monotonic() > deadline:
            raise BenchFailure(f"no order reached the paper exchange within {timeout_s:.0f} s "
                               "of the alert; see the stack's logs")
        await asyncio.sleep(POLL_S)


def ensure(ack: Ack, status: int, what: str) -> None:
    if ack.status != status:
        raise BenchFailure(f"{what}: the webhook answered {ack.status} {ack.body}")


def accepted(ack: Ack, what: str) -> str:
    """The workflow id of an accepted open, or BenchFailure with the webhook's answer."""
    if ack.status != 202 or "workflow_id" not in ack.body:
        raise BenchFailure(f"{what}: the webhook answered {ack.status} {ack.body}")
    return str(ack.body["workflow_id"])
