"""Floor: a direct, signed place-order from a minimal client to the paper exchange.

The minimal client is httpx on one keep-alive connection plus the pure signing function:
no budgets, no parsing beyond the code. Two numbers per order:
- send → receive: our `time.time_ns()` just before sending to the exchange's own receive
  timestamp (its request log, same clock). Signal-to-order ends at that same timestamp, so the
  overhead over the floor compares like with like.
- round trip: until the answer is read.
Market orders alternate BUY and SELL on one symbol, so the position stays flat.
"""

from __future__ import annotations

import json
import time
import uuid

import httpx

from bench.paper_admin import PaperAdmin
from bench.report import Outcome, Row, ms
from bench.stack import ExchangeEndpoint
from bench.stats import summary
from exchange.signing import sign

PATH = "/api/v1/futures/trade/place_order"
DEFAULT_N = 1000
QUICK_N = 200
WARMUP = 50
SYMBOL = "BTCUSDT"
QTY = "0.001"


def signed(endpoint: ExchangeEndpoint, body: str) -> dict[str, str]:
    nonce = uuid.uuid4().hex
    timestamp = str(time.time_ns() // 1_000_000)
    return {
        "api-key": endpoint.api_key,
        "nonce": nonce,
        "timestamp": timestamp,
        "sign": sign(endpoint.api_key, endpoint.api_secret, nonce, timestamp, {}, body),
        "Content-Type": "application/json",
    }


async def measure(endpoint: ExchangeEndpoint, *, n: int = DEFAULT_N) -> Outcome:
    admin = PaperAdmin(endpoint.base_url)
    run = uuid.uuid4().hex[:8]
    sent_ns: dict[str, int] = {}
    round_trips: list[float] = []
    since = time.time_ns()
    async with httpx.AsyncClient(base_url=endpoint.base_url, timeout=10.0,
                                 trust_env=False) as http:
        for i in range(WARMUP + n):
            client_id = f"floor{run}{i}"
            body = json.dumps({
                "symbol": SYMBOL, "side": "BUY" if i % 2 == 0 else "SELL", "qty": QTY,
                "orderType": "MARKET", "clientId": client_id,
            }, separators=(",", ":"))
            headers = signed(endpoint, body)
            t_wall = time.time_ns()
            t0 = time.perf_counter_ns()
            response = await http.post(PATH, content=body, headers=headers)
            elapsed = time.perf_counter_ns() - t0
            answer = response.json()
            if answer.get("code") != 0:
                raise RuntimeError(f"floor order {i} refused: {answer}")
            if i >= WARMUP:
                sent_ns[client_id] = t_wall
                round_trips.append(elapsed / 1e6)
    received = {
        e["client_id"]: e["t_ns"] for e in await admin.requests(since_ns=since)
        if e["path"] == PATH and e["client_id"] in sent_ns
    }
    await admin.aclose()
    to_receive = [(received[c] - t) / 1e6 for c, t in sent_ns.items() if c in received]
    send = summary(to_receive)
    rtt = summary(round_trips)
    return Outcome(
        name="floor",
        title="1. Floor: signed place-order, minimal client → paper exchange",
        rows=[
            Row("send → exchange receive p50 / p99",
                f"{ms(send['p50'])} / {ms(send['p99'])}"),
            Row("round trip p50 / p99", f"{ms(rtt['p50'])} / {ms(rtt['p99'])}"),
        ],
        details={"orders": n, "warmup": WARMUP, "symbol": SYMBOL, "qty": QTY,
                 "send_to_receive_ms": send, "round_trip_ms": rtt},
        notes=[f"{n} market orders after {WARMUP} warm-up orders, one at a time, one "
               "keep-alive connection; the exchange's receive time is its request log's t_ns"],
    )
