"""The few paper-exchange admin calls the benchmarks use (/__admin/, loopback only).

The request log's receive timestamps (`time.time_ns()` on the exchange's side) are what the
latency benchmarks measure against; the bench runs on the same machine, so the clocks agree.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import httpx

from exchange.parse import format_decimal


class PaperAdminError(RuntimeError):
    """The admin API refused a call (not a paper exchange, or not on this machine)."""


class PaperAdmin:
    def __init__(self, base_url: str, *, timeout_s: float = 30.0) -> None:  # float-ok: seconds
        self.base_url = base_url.rstrip("/")
        self._http = httpx.AsyncClient(base_url=self.base_url, timeout=timeout_s,
                                       trust_env=False)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _call(self, method: str, path: str, body: Any = None,
                    params: dict[str, Any] | None = None) -> Any:
        response = await self._http.request(method, "/__admin/" + path, json=body, params=params)
        if response.status_code != 200:
            raise PaperAdminError(
                f"{method} {self.base_url}/__admin/{path}: HTTP {response.status_code} "
                f"{response.text[:200]}"
            )
        return response.json()

    async def health(self) -> bool:
        return bool((await self._call("GET", "health"))["ok"])

    async def reset(self) -> None:
        await self._call("POST", "reset")

    async def freeze_all(self) -> None:
        await self._call("POST", "freeze", {"symbol": None, "frozen": True})

    async def move(self, symbol: str, bps: Decimal) -> Decimal:
        answer = await self._call(
            "POST", "price", {"symbol": symbol, "move_bps": format_decimal(bps)}
        )
        return Decimal(answer["price"])

    async def requests(self, since_ns: int = 0) -> list[dict[str, Any]]:
        """[{"t_ns", "method", "path", "client_id", "code"}], oldest first."""
        return list(await self._call("GET", "requests", params={"since_ns": since_ns}))

    async def state(self) -> dict[str, Any]:
        return dict(await self._call("GET", "state"))
