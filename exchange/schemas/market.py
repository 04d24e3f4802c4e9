"""Public market endpoints: trading_pairs, tickers, depth (docs/bitunix.md#market-endpoints)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BeforeValidator, ConfigDict

from exchange.schemas.base import Amount, Stamp, Text, Wire


class TradingPair(Wire):
    # extra="allow": the pair sync keeps the complete raw object (model_dump) for audit.
    model_config = ConfigDict(extra="allow", frozen=True)

    symbol: str
    base: str
    quote: str
    minTradeVolume: Amount
    minBuyPriceOffset: Amount | None = None
    maxSellPriceOffset: Amount | None = None
    maxLimitOrderVolume: Amount
    maxMarketOrderVolume: Amount
    basePrecision: int
    quotePrecision: int
    maxLeverage: int
    minLeverage: int
    defaultLeverage: int
    defaultMarginMode: Text | None = None
    priceProtectScope: Amount | None = None
    symbolStatus: str
    # Newer docs only. Absent on older payloads, where API trading was implied.
    isApiSupported: bool = True
    maxFundingRate: Amount | None = None
    minFundingRate: Amount | None = None
    launchTime: Stamp | None = None
    delistTime: Stamp | None = None


class Ticker(Wire):
    symbol: str
    markPrice: Amount | None = None
    lastPrice: Amount | None = None
    open: Amount | None = None
    last: Amount | None = None
    quoteVol: Amount | None = None
    baseVol: Amount | None = None
    high: Amount | None = None
    low: Amount | None = None


def _level(value: Any) -> Any:
    # [price, qty] live; tolerate {"price":…, "qty"/"volume":…} and longer arrays.
    if isinstance(value, dict):
        return [value.get("price"), value.get("qty", value.get("volume"))]
    if isinstance(value, list | tuple) and len(value) >= 2:
        return list(value[:2])
    return value


Level = Annotated[tuple[Amount, Amount], BeforeValidator(_level)]


class Depth(Wire):
    asks: list[Level] = []
    bids: list[Level] = []
