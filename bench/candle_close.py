"""Candle close: 200 open alerts within 1 s over 20 symbols and 10 strategies, as TradingView
sends them when a bar closes on a watch-list (issue 24), each on a connection of its own with
TradingView's 3 s client timeout (an alert not answered by then is lost to TradingView, which
does not retry).

Two runs, each on a stack of its own (its pairs file has more than 20 symbols):
- limits raised (bench/limits.py): every alert's answer time (the slowest is the figure), none
  lost, none doubled (bench/burst.py `tally`), and when the last of the 200 first orders
  reached the exchange, beside the floor: the minimal signed client (bench/floor.py) sending
  the same 200 orders on the same schedule and concurrency to the same exchange.
- BitUnix's real per-account limits (the paper exchange's and the client's budgets unscaled):
  no order refused for rate (10005/10006), none lost, and how long the 200 took.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx

from bench import burst
from bench.alerts import PLACE_ORDER, Ack, AlertPoster, BenchStrategy, add_strategy, open_body
from bench.floor import signed
from bench.limits import BenchLimits
from bench.paper_admin import PaperAdmin
from bench.report import Outcome, Row, ms
from bench.stack import ExchangeEndpoint, Stack, full_stack
from bench.stackdb import refusal_reasons, trade_statuses
from bench.stats import summary, verdict
from paper.instruments import DEFAULT_PAIRS_FILE
from settings import PAPER_API_KEY, PAPER_API_SECRET

ALERTS = 200
SPREAD_S = 1  # all sent within this
STRATEGIES = 10
SYMBOLS = 20
CLIENT_TIMEOUT_S = 3.0  # TradingView's
ALERT_USDT = Decimal(50)  # each alert's size_usdt
RATE_CODES = {10005, 10006}  # BitUnix: too many requests
FLOOR_RATIO_TARGET = 2  # the last order within 2× the floor's last order
FLOOR_TRIES = 3
# How long the 200 orders are waited for after the last answer: under BitUnix's real limits
# they cannot go out faster than 10/s (20 s), and a trade still entering is not a lost one;
# the wait ends earlier once no place_order came for burst.STALL_S.
DRAIN_S = 90.0
EXTRA_PAIRS = 8  # the bundled pairs are 17: these, copies of ETHUSDT's rules, make it 25


def pairs_env(work_dir: Path) -> dict[str, str]:
    """A pairs file with more than SYMBOLS pairs: the paper exchange's bundled ones and
    EXTRA_PAIRS copies of ETHUSDT's rules under symbols of their own (CANDLEAUSDT, …), priced
    by the paper exchange itself (no ticker: a generated start price)."""
    bundled = json.loads(DEFAULT_PAIRS_FILE.read_text())
    pairs = bundled.get("data", bundled) if isinstance(bundled, dict) else bundled
    eth = next(p for p in pairs if p["symbol"] == "ETHUSDT")
    extra = [{**eth, "symbol": f"CANDLE{chr(65 + k)}USDT", "base": f"CANDLE{chr(65 + k)}"}
             for k in range(EXTRA_PAIRS)]
    work_dir.mkdir(parents=True, exist_ok=True)
    path = work_dir / "candle-pairs.json"
    path.write_text(json.dumps({"code": 0, "data": [*pairs, *extra]}))
    return {"TRADEWIRE_PAPER_PAIRS_FILE": str(path)}


async def _symbols(exchange_url: str) -> list[tuple[str, Decimal, Decimal]]:
    """SYMBOLS USDT pairs open for trading through the API whose minimum order is well under
    ALERT_USDT:
    (symbol, minimum quantity, last price), the most liquid-looking first (alphabetical: the
    paper exchange has no volumes worth sorting by)."""
    async with httpx.AsyncClient(base_url=exchange_url, timeout=10.0, trust_env=False) as http:
        pairs = (await http.get("/api/v1/futures/market/trading_pairs")).json()["data"]
        tickers = (await http.get("/api/v1/futures/market/tickers")).json()["data"]
    price = {t["symbol"]: Decimal(str(t.get("lastPrice") or t.get("markPrice")))
             for t in tickers if t.get("lastPrice") or t.get("markPrice")}
    out = []
    for p in sorted(pairs, key=lambda p: p["symbol"]):
        symbol = p["symbol"]
        if (not symbol.endswith("USDT") or p.get("symbolStatus", "OPEN") != "OPEN"
                or p.get("isApiSupported") is False):  # refused at intake, rightly
            continue
        min_qty = Decimal(str(p["minTradeVolume"]))
        if symbol in price and min_qty * price[symbol] * 4 <= ALERT_USDT:
            out.append((symbol, min_qty, price[symbol]))
    if len(out) < SYMBOLS:
        raise RuntimeError(f"the paper exchange lists only {len(out)} usable pairs")
    return out[:SYMBOLS]


async def _fire(poster: AlertPoster, bodies: list[dict[str, Any]]) -> list[Ack]:
    """Alert k at k × SPREAD_S / len(bodies), each on its own task (TradingView opens a
    connection per alert)."""
    return await burst._send(poster, bodies, rate=max(1, round(len(bodies) / SPREAD_S)))


async def _alerts(stack: Stack, limits: BenchLimits, run: str
                  ) -> tuple[list[Ack], list[dict[str, Any]], int, list[str]]:
    symbols = [s for s, _, _ in await _symbols(stack.exchange_url)]
    strategies: list[BenchStrategy] = [
        await asyncio.to_thread(add_strategy, stack, f"bench-candle-{run}-{k}",
                                rate_limit_per_min=limits.webhook_rate_limit_per_min,
                                size="1")
        for k in range(STRATEGIES)
    ]
    bodies = []
    for k in range(ALERTS):
        body = open_body(strategies[k % STRATEGIES], symbols[(k // STRATEGIES) % SYMBOLS],
                         f"candle-{run}-{k}")
        body["size_usdt"] = str(ALERT_USDT)
        bodies.append(body)
    admin = PaperAdmin(stack.exchange_url)
    poster = AlertPoster(stack.webhook_url, connections=ALERTS, timeout_s=CLIENT_TIMEOUT_S,
                         whole=True)
    since = time.time_ns()
    try:
        acks = await _fire(poster, bodies)
        # Every alert must trade, answered in time or not (TradingView has given up on the
        # latter, the trader's position has not): wait for all of them, not only the 202s.
        log = await burst._drain(admin, since, ALERTS, timeout_s=DRAIN_S,
                                 stall_s=burst.STALL_S)
    finally:
        await poster.aclose()
        await admin.aclose()
    return acks, log, since, [s.name for s in strategies]


async def _floor(endpoint: ExchangeEndpoint) -> float:  # float-ok: seconds
    """The minimal signed client: the same 200 market orders (the minimum of each symbol),
    on the same schedule, each on its own connection; seconds from the first send to the
    exchange's receipt of the last."""
    symbols = await _symbols(endpoint.base_url)
    run = uuid.uuid4().hex[:8]
    admin = PaperAdmin(endpoint.base_url)
    limits = httpx.Limits(max_connections=ALERTS, max_keepalive_connections=ALERTS)
    async with httpx.AsyncClient(base_url=endpoint.base_url, timeout=30.0, trust_env=False,
                                 limits=limits) as http:

        async def one(k: int, delay: float) -> int:  # float-ok: seconds
            await asyncio.sleep(delay)
            symbol, min_qty, _ = symbols[(k // STRATEGIES) % SYMBOLS]
            body = json.dumps({"symbol": symbol, "side": "BUY", "qty": str(min_qty),
                               "orderType": "MARKET", "clientId": f"floor{run}{k}"},
                              separators=(",", ":"))
            sent = time.time_ns()
            for attempt in range(FLOOR_TRIES):
                try:
                    await http.post(PLACE_ORDER, content=body, headers=signed(endpoint, body))
                    break
                except httpx.TransportError:
                    # A connection the loaded exchange reset: sent again, as any client
                    # would (its time counts); the exchange refuses a second clientId.
                    if attempt == FLOOR_TRIES - 1:
                        raise
            return sent

        sent = await asyncio.gather(*(one(k, k * SPREAD_S / ALERTS) for k in range(ALERTS)))
    log = [e for e in await admin.requests(since_ns=min(sent))
           if e["path"] == PLACE_ORDER and (e["client_id"] or "").startswith(f"floor{run}")]
    await admin.aclose()
    if len(log) < ALERTS:
        raise RuntimeError(f"the floor's orders: {len(log)} of {ALERTS} reached the exchange")
    return (max(e["t_ns"] for e in log) - min(sent)) / 1e9


def outcome_counts(t: burst.Tally, accepted: int) -> tuple[int, int]:
    """(lost, doubled) of the ALERTS: an alert is lost when no order of its came, whatever it
    was answered (one not answered in time still counts if its trade placed its order, as the
    trader's position is there); doubled when an alert's trade placed more than one. Orders
    of alerts not answered 202 are named by trade (`strays`), one market order each."""
    traded = accepted - t.lost + t.strays
    return max(ALERTS - traded, 0), t.doubled_workflows + t.doubled_orders


async def raised(limits: BenchLimits, work_dir: Path) -> Outcome:
    """The run with the limits raised, and the floor on the same exchange."""
    async with full_stack(limits, work_dir / "candle", fast_path=True,
                          extra_env=pairs_env(work_dir / "candle")) as stack:
        acks, log, _, names = await _alerts(stack, limits, uuid.uuid4().hex[:6])
        ok = [a for a in acks if a.status == 202 and "workflow_id" in a.body]
        t = await burst.tally(stack, acks, ok, log)
        refusals = await refusal_reasons(stack, names)
        floor_s = await _floor(ExchangeEndpoint(stack.exchange_url, PAPER_API_KEY,
                                                PAPER_API_SECRET))
    first_sent = min(a.sent_ns for a in acks)
    last_s = (t.last_order_ns - first_sent) / 1e9 if t.last_order_ns else None
    ack = summary(a.ack_ms for a in acks)
    unanswered = sum(1 for a in acks if a.status == 0)
    statuses: dict[str, int] = {}
    for a in acks:
        statuses[str(a.status)] = statuses.get(str(a.status), 0) + 1
    ratio = last_s / floor_s if last_s is not None and floor_s > 0 else None
    lost, doubled = outcome_counts(t, len(ok))
    clean = lost == doubled == t.bad_trade_rows == 0
    return Outcome(
        name="candle_close",
        title=f"4d. Candle close: {ALERTS} open alerts within {SPREAD_S} s, {SYMBOLS} symbols, "
              f"{STRATEGIES} strategies",
        rows=[
            Row("slowest answer (TradingView waits 3 s)", ms(ack.get("max", 0)),
                "≤ 3000 ms", verdict(ack.get("max", 0), 3000) if not unanswered else "MISSED"),
            Row("answers p50 / p99", f"{ms(ack.get('p50', 0))} / {ms(ack.get('p99', 0))}"),
            Row("accepted / unanswered / other", f"{len(ok)} / {unanswered} / "
                f"{ALERTS - len(ok) - unanswered}", f"{ALERTS} / 0 / 0",
                "met" if len(ok) == ALERTS else "MISSED"),
            Row("lost / doubled (an alert whose answer timed out but traded is neither)",
                f"{lost} / {doubled}", "0 / 0", "met" if clean else "MISSED"),
            Row("last order reached the exchange (after the first alert) / floor",
                f"{last_s:.2f} s / {floor_s:.2f} s" if last_s is not None else "–",
                f"≤ {FLOOR_RATIO_TARGET}× floor",
                verdict(ratio, FLOOR_RATIO_TARGET) if ratio is not None else "MISSED"),
        ],
        details={
            "alerts": ALERTS, "spread_s": SPREAD_S, "strategies": STRATEGIES, "symbols": SYMBOLS,
            "client_timeout_s": CLIENT_TIMEOUT_S, "ack_ms": ack, "ack_status_counts": statuses,
            "lost": lost, "doubled": doubled, "trade_rows_not_exactly_one": t.bad_trade_rows,
            "orders_of_alerts_not_answered_202": t.strays_by_answer,
            "last_order_s": round(last_s, 3) if last_s is not None else None,
            "floor_last_order_s": round(floor_s, 3),
            "last_order_vs_floor": round(ratio, 2) if ratio is not None else None,
            "alert_to_order_ms": summary(t.to_order_ms),
            "refused_or_failed": refusals,
        },
        notes=[
            f"{ALERTS} open alerts (size_usdt {ALERT_USDT}) sent at {ALERTS // SPREAD_S}/s, each "
            f"on its own connection with a {CLIENT_TIMEOUT_S:.0f} s timeout (status 0: no answer "
            "in time, lost to TradingView); limits raised (bench/limits.py); the bundled pairs "
            f"and {EXTRA_PAIRS} copies of ETHUSDT's rules (`pairs_env`)",
            "floor: the minimal signed client (bench/floor.py) sends the same 200 market orders "
            "on the same schedule, one connection each, to the same paper exchange",
        ],
    )


async def real_limits(limits: BenchLimits, work_dir: Path, outcome: Outcome) -> None:
    """The same burst under BitUnix's own per-account limits (nothing scaled): no order
    refused for rate, none lost; added to `outcome`."""
    real = replace(limits, paper_rate_limit_scale=Decimal(1), exchange_budget_scale=Decimal(1))
    async with full_stack(real, work_dir / "candle-real", fast_path=True,
                          extra_env=pairs_env(work_dir / "candle-real")) as stack:
        acks, log, since, names = await _alerts(stack, real, uuid.uuid4().hex[:6])
        ok = [a for a in acks if a.status == 202 and "workflow_id" in a.body]
        t = await burst.tally(stack, acks, ok, log)
        refusals = await refusal_reasons(stack, names)
        statuses = await trade_statuses(stack, names)
        admin = PaperAdmin(stack.exchange_url)
        everything = await admin.requests(since_ns=since)
        await admin.aclose()
    rate_refused = sum(1 for e in everything if e["code"] in RATE_CODES)
    lost, doubled = outcome_counts(t, len(ok))
    first_sent = min(a.sent_ns for a in acks)
    last_s = (t.last_order_ns - first_sent) / 1e9 if t.last_order_ns else None
    outcome.rows.append(Row(
        "real limits: refused for rate / lost / doubled; last order after",
        f"{rate_refused} / {lost} / {doubled}; "
        + (f"{last_s:.1f} s" if last_s is not None else "–"),
        "0 / 0 / 0", "met" if rate_refused == lost == doubled == 0 else "MISSED"))
    outcome.details["real_limits"] = {
        "accepted": len(ok), "refused_for_rate": rate_refused, "lost": lost,
        "doubled": doubled, "last_order_s": round(last_s, 3) if last_s is not None else None,
        "ack_ms": summary(a.ack_ms for a in acks), "refused_or_failed": refusals,
        "trade_statuses": statuses,
    }
