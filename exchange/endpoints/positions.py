"""Position endpoints (docs/bitunix.md#position-endpoints) and flash close."""

from __future__ import annotations

from exchange import parse
from exchange import schemas as w
from exchange.endpoints.base import Endpoints
from exchange.models import ClosedPosition, Position
from trading.tiers import RiskTier


class PositionEndpoints(Endpoints):
    async def position_tiers(self, symbol: str) -> list[RiskTier]:
        """The symbol's risk-limit ladder, lowest notional first (public, unsigned)."""
        return await self._request(
            "GET",
            "position/get_position_tiers",
            lambda d: sorted(
                (parse.risk_tier(w.PositionTier.model_validate(t)) for t in w.as_list(d)),
                key=lambda t: t.start_value,
            ),
            params={"symbol": symbol},
            signed=False,
        )

    async def pending_positions(
        self, symbol: str | None = None, position_id: str | None = None
    ) -> list[Position]:
        return await self._request(
            "GET",
            "position/get_pending_positions",
            lambda d: [
                parse.position(w.PendingPosition.model_validate(p))
                for p in w.as_page(d, "positionList")
            ],
            params={"symbol": symbol, "positionId": position_id},
        )

    async def history_positions(
        self,
        symbol: str | None = None,
        *,
        position_id: str | None = None,
        start_time_ms: int | None = None,
        end_time_ms: int | None = None,
        skip: int | None = None,
        limit: int | None = None,
    ) -> list[ClosedPosition]:
        return await self._request(
            "GET",
            "position/get_history_positions",
            lambda d: [
                parse.closed_position(w.HistoryPosition.model_validate(p))
                for p in w.as_page(d, "positionList")
            ],
            params={
                "symbol": symbol,
                "positionId": position_id,
                "startTime": start_time_ms,
                "endTime": end_time_ms,
                "skip": skip,
                "limit": limit,
            },
        )

    async def flash_close_position(self, position_id: str) -> str:
        """Close the whole position at market; returns the position id BitUnix echoes."""
        return await self._request(
            "POST",
            "trade/flash_close_position",
            lambda d: w.PositionIdResult.model_validate(w.as_object(d)).positionId or position_id,
            body=w.FlashCloseRequest(positionId=position_id),
        )
