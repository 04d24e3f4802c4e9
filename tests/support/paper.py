"""Run the paper exchange (the BitUnix-compatible simulator) over real HTTP inside a test.

    from tests.support.paper import run_paper_exchange

    async with run_paper_exchange(paper_partial_fills=True) as paper:
        paper.base_url      # "http://127.0.0.1:<free port>" — point the BitUnix client here
        paper.api_key       # the paper key/secret the server verifies signatures with
        paper.api_secret
        paper.settings      # the simulator's Settings (exchange_base_url = base_url)
        await paper.admin.set_price("BTCUSDT", "95000")
        await paper.admin.move("BTCUSDT", -50)          # −50 bps
        await paper.admin.faults(network_error=1, drop_response={"target": "order", "count": 1,
                                                                  "mode": "http_504"})
        log = await paper.admin.requests(since_ns=t0)
        # [{"t_ns", "method", "path", "client_id", "code"}, ...]

The server runs under uvicorn in its own thread (its own event loop), so a test that blocks
its loop cannot stall it, on a port the OS picks. The random walk is frozen for every symbol
(prices move only through the admin API) and `paper_seed` is fixed, so books and prices are
reproducible. State is in memory unless you pass `paper_state_file=...`.

What to expect from the market (see paper/market.py, matching.py):
* mark = last = the price you set; best bid = price − 1 tick, best ask = price + 1 tick;
  50 levels a side, one tick apart; a market BUY fills from the best ask upwards.
* A resting BUY limit fills as maker at its own price when the price goes to or below it
  (a SELL: to or above), on the next admin price call; with `paper_partial_fills=True` the
  first such fill takes half of it, the next price call the rest.
* POST_ONLY that would take: created then CANCELED (default), or refused with code 30011
  when `paper_post_only_mode="reject"` (or `await admin.faults(post_only_mode="reject")`).
* Position mode starts ONE_WAY, margin mode CROSS, leverage = the pair's defaultLeverage.
* Instruments: paper/data/pairs.json (BTCUSDT tick 0.1 step 0.0001, DOGEUSDT
  step 1 min 53, SHIBUSDT tick 1e-8, ALPACAUSDT CANCEL_ONLY, FTTUSDT STOP, MONUSDT PREVIEW,
  TRUMPUSDT isApiSupported=false, BTCUSDC quoted in USDC, ...).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import httpx
import uvicorn

from paper.app import create_app
from settings import Settings

TEST_SEED = 7
ADMIN_TIMEOUT_S = 10.0
START_TIMEOUT_S = 20.0


class PaperAdminError(RuntimeError):
    """The admin API refused a call; the message carries its status and answer."""


@dataclass(frozen=True)
class PaperAdmin:
    """Async helpers for every /__admin/ route. Prices may be str, int or Decimal."""

    base_url: str

    async def _call(self, method: str, path: str, json: Any = None,
                    params: dict[str, Any] | None = None) -> Any:
        async with httpx.AsyncClient(base_url=self.base_url, timeout=ADMIN_TIMEOUT_S) as http:
            response = await http.request(method, "/__admin/" + path, json=json, params=params)
        if response.status_code != 200:
            raise PaperAdminError(
                f"{method} /__admin/{path}: {response.status_code} {response.text}"
            )
        return response.json()

    async def health(self) -> bool:
        return bool((await self._call("GET", "health"))["ok"])

    async def reset(self) -> None:
        """Forget orders, positions, TP/SL, faults, the request log and rate-limit buckets;
        balances back to Settings.paper_balance; prices back to the start; walk frozen again."""
        await self._call("POST", "reset")

    async def set_price(self, symbol: str, price: str | int | Decimal) -> Decimal:
        """Set mark = last price (snapped to the tick); triggers TP/SL, liquidations and resting
        orders at once. Returns the price actually set."""
        answer = await self._call("POST", "price", {"symbol": symbol, "price": str(price)})
        return Decimal(answer["price"])

    async def move(self, symbol: str, bps: str | int | Decimal) -> Decimal:
        """Move the price by `bps` basis points (negative: down); same effects as set_price."""
        answer = await self._call("POST", "price", {"symbol": symbol, "move_bps": str(bps)})
        return Decimal(answer["price"])

    async def freeze(self, symbol: str | None = None, frozen: bool = True) -> None:
        """Stop (or resume, frozen=False) the random walk of one symbol, or of all when None."""
        await self._call("POST", "freeze", {"symbol": symbol, "frozen": frozen})

    async def symbol_status(self, symbol: str, status: str) -> None:
        """OPEN | CANCEL_ONLY | STOP (| PREVIEW): what trading_pairs shows and the rules apply."""
        await self._call("POST", "symbol_status", {"symbol": symbol, "status": status})

    async def liquidate(self, symbol: str, side: str | None = None) -> list[str]:
        """Liquidate the symbol's position(s) (side LONG/SHORT, or all); returns position ids."""
        answer = await self._call("POST", "liquidate", {"symbol": symbol, "side": side})
        return list(answer["liquidated"])

    async def faults(self, **fields: Any) -> dict[str, Any]:
        """Merge fault modes: latency_ms, error_rate ("0.1"), rate_limit, http_5xx,
        network_error, drop_response={"target": "order"|"tpsl", "count", "mode":
        "http_504"|"hang"}, visibility_delay_ms, cancel_fill_race, post_only_mode,
        omit_avg_price, clock_skew_ms (the simulator's clock off the real one, ms)."""
        return dict(await self._call("POST", "faults", fields))

    async def position_tiers(self, symbol: str, tiers: list[dict[str, Any]] | None) -> list[Any]:
        """Replace the symbol's risk-limit ladder ({startValue, endValue, leverage,
        maintenanceMarginRate?} each); None restores the default (no effective limit).
        Openings past it are refused with 20002."""
        answer = await self._call("POST", "position_tiers", {"symbol": symbol, "tiers": tiers})
        return list(answer["tiers"])

    async def clear_faults(self) -> None:
        await self._call("DELETE", "faults")

    async def requests(self, since_ns: int = 0) -> list[dict[str, Any]]:
        """Requests received at or after since_ns (time.time_ns()), oldest first; `code` is the
        BitUnix code answered, or the HTTP status for 5xx/504 answers."""
        return list(await self._call("GET", "requests", params={"since_ns": since_ns}))

    async def state(self) -> dict[str, Any]:
        """Orders, open positions, TP/SL, balances, prices, statuses, faults (for debugging)."""
        return dict(await self._call("GET", "state"))


@dataclass(frozen=True)
class PaperExchange:
    base_url: str
    api_key: str
    api_secret: str
    admin: PaperAdmin
    settings: Settings


def paper_settings(settings: Settings | None = None, **overrides: Any) -> Settings:
    """Settings for a test simulator: no .env, fixed seed, in-memory state, unless overridden."""
    if settings is not None:
        return settings.model_copy(update=overrides)
    defaults: dict[str, Any] = {"paper_seed": TEST_SEED, "paper_state_file": None,
                                "host": "127.0.0.1"}
    return Settings(_env_file=None, **{**defaults, **overrides})  # type: ignore[call-arg]


@contextlib.asynccontextmanager
async def run_paper_exchange(settings: Settings | None = None,
                             **overrides: Any) -> AsyncIterator[PaperExchange]:
    """Start the simulator on a free loopback port with the walk frozen; stop it on exit.
    `overrides` are Settings fields (e.g. paper_partial_fills=True, paper_rate_limit_scale=...)."""
    cfg = paper_settings(settings, **overrides)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    base_url = f"http://127.0.0.1:{port}"
    cfg = cfg.model_copy(update={"exchange_port": port, "exchange_base_url": base_url})
    app = create_app(cfg, frozen=True)
    server = uvicorn.Server(uvicorn.Config(
        app, log_config=None, access_log=False, lifespan="on", timeout_graceful_shutdown=1,
        date_header=False,  # the simulator dates its answers itself (fault clock_skew_ms)
    ))
    thread = threading.Thread(
        target=lambda: asyncio.run(server.serve(sockets=[sock])), name=f"paper-{port}", daemon=True
    )
    thread.start()
    try:
        waited = 0.0
        while not server.started:
            if not thread.is_alive() or waited > START_TIMEOUT_S:
                raise RuntimeError("the paper exchange did not start; see the log above")
            await asyncio.sleep(0.01)
            waited += 0.01
        yield PaperExchange(
            base_url=base_url, api_key=cfg.paper_api_key,
            api_secret=cfg.paper_api_secret.get_secret_value(), admin=PaperAdmin(base_url),
            settings=cfg,
        )
    finally:
        server.should_exit = True
        await asyncio.to_thread(thread.join, 15)
        sock.close()
