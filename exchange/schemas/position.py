"""Position endpoints (docs/bitunix.md#position-endpoints)."""

from __future__ import annotations

from exchange.schemas.base import Amount, Stamp, Text, Wire


class PendingPosition(Wire):
    positionId: Text
    symbol: str
    qty: Amount
    entryValue: Amount | None = None
    side: str
    marginMode: str | None = None
    positionMode: str | None = None
    leverage: int | None = None
    fee: Amount | None = None
    funding: Amount | None = None
    realizedPNL: Amount | None = None
    margin: Amount | None = None
    unrealizedPNL: Amount | None = None
    liqPrice: Amount | None = None
    marginRate: Amount | None = None
    avgOpenPrice: Amount | None = None
    ctime: Stamp | None = None
    mtime: Stamp | None = None


class HistoryPosition(Wire):
    positionId: Text
    symbol: str
    maxQty: Amount | None = None
    entryPrice: Amount | None = None
    closePrice: Amount | None = None
    liqQty: Amount | None = None
    side: str
    marginMode: str | None = None
    positionMode: str | None = None
    leverage: int | None = None
    fee: Amount | None = None
    funding: Amount | None = None
    realizedPNL: Amount | None = None
    liqPrice: Amount | None = None
    ctime: Stamp | None = None
    mtime: Stamp | None = None


class PositionTier(Wire):
    """One level of `position/get_position_tiers` (docs/bitunix.md#risk-limit-tiers)."""

    symbol: str | None = None
    level: int
    startValue: Amount
    endValue: Amount
    leverage: int
    maintenanceMarginRate: Amount | None = None
