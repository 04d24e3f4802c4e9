"""Instruments: BitUnix `trading_pairs` and `tickers` files, loaded as the venue would serve them.

Both files may hold BitUnix's full envelope (`{"code":0,"msg":"Success","data":[...]}`) or just
the list, so a captured live answer can be dropped in unchanged (Settings.paper_pairs_file,
Settings.paper_tickers_file). The bundled files live in `paper/data/`.

A pair with no ticker gets a generated start price: `GENERATED_NOTIONAL / minTradeVolume`
(venues size the minimum order at a few USDT), snapped to the tick, and never below
`GENERATED_MIN_TICKS` ticks so the walk stays fine-grained. PREVIEW pairs get no price at all.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

from trading.types import PairStatus

DATA_DIR = Path(__file__).parent / "data"
DEFAULT_PAIRS_FILE = DATA_DIR / "pairs.json"
DEFAULT_TICKERS_FILE = DATA_DIR / "tickers.json"
GENERATED_NOTIONAL = Decimal("5")
GENERATED_MIN_TICKS = 1000


class InstrumentFileError(ValueError):
    """A pairs or tickers file that cannot be used; the message names the file and the field."""


@dataclass(frozen=True)
class Pair:
    """One trading pair: the raw wire object (served as-is) plus the parsed rule fields."""

    raw: dict[str, Any]
    symbol: str
    base: str
    quote: str
    base_precision: int
    quote_precision: int
    min_qty: Decimal
    max_limit_qty: Decimal
    max_market_qty: Decimal
    min_leverage: int
    max_leverage: int
    default_leverage: int
    price_protect_scope: Decimal
    status: PairStatus
    api_supported: bool

    @property
    def qty_step(self) -> Decimal:
        return Decimal(1).scaleb(-self.base_precision)

    @property
    def tick(self) -> Decimal:
        return Decimal(1).scaleb(-self.quote_precision)

    def snap_price(self, price: Decimal) -> Decimal:
        return price.quantize(self.tick, rounding=ROUND_HALF_UP)


def _unwrap(payload: Any, path: Path) -> list[dict[str, Any]]:
    if isinstance(payload, dict) and "data" in payload:
        payload = payload["data"]
    if not isinstance(payload, list) or not all(isinstance(p, dict) for p in payload):
        raise InstrumentFileError(f"{path}: expected a list of objects or BitUnix's envelope")
    return payload


def _read(path: Path) -> list[dict[str, Any]]:
    try:
        payload = json.loads(path.read_text(encoding="utf-8"), parse_float=Decimal)
    except (OSError, ValueError) as exc:
        raise InstrumentFileError(f"{path}: cannot read JSON ({exc})") from exc
    return _unwrap(payload, path)


def _dec(raw: dict[str, Any], name: str, path: Path, default: str | None = None) -> Decimal:
    value = raw.get(name, default)
    if value is None:
        raise InstrumentFileError(f"{path}: {raw.get('symbol')}: {name} is missing")
    return Decimal(str(value))


def parse_pair(raw: dict[str, Any], path: Path) -> Pair:
    symbol = raw.get("symbol")
    if not isinstance(symbol, str) or not symbol:
        raise InstrumentFileError(f"{path}: a pair has no symbol")
    try:
        status = PairStatus(str(raw.get("symbolStatus", "OPEN")))
    except ValueError as exc:
        raise InstrumentFileError(f"{path}: {symbol}: unknown symbolStatus") from exc
    return Pair(
        raw=dict(raw),
        symbol=symbol,
        base=str(raw.get("base", "")),
        quote=str(raw.get("quote", "USDT")),
        base_precision=int(raw["basePrecision"]),
        quote_precision=int(raw["quotePrecision"]),
        min_qty=_dec(raw, "minTradeVolume", path),
        max_limit_qty=_dec(raw, "maxLimitOrderVolume", path),
        max_market_qty=_dec(raw, "maxMarketOrderVolume", path),
        min_leverage=int(raw.get("minLeverage", 1)),
        max_leverage=int(raw.get("maxLeverage", 100)),
        default_leverage=int(raw.get("defaultLeverage", 20)),
        price_protect_scope=_dec(raw, "priceProtectScope", path, "0.05"),
        status=status,
        api_supported=bool(raw.get("isApiSupported", True)),
    )


def load_pairs(path: Path | None) -> dict[str, Pair]:
    path = path or DEFAULT_PAIRS_FILE
    pairs: dict[str, Pair] = {}
    for raw in _read(path):
        pair = parse_pair(raw, path)
        pairs[pair.symbol] = pair
    if not pairs:
        raise InstrumentFileError(f"{path}: no pairs")
    return pairs


def load_start_prices(path: Path | None, pairs: dict[str, Pair]) -> dict[str, Decimal]:
    """symbol → start price on the pair's tick grid: lastPrice, else markPrice, else a
    generated one."""
    path = path or DEFAULT_TICKERS_FILE
    given: dict[str, Decimal] = {}
    for raw in _read(path):
        value = raw.get("lastPrice") or raw.get("markPrice") or raw.get("last")
        if isinstance(raw.get("symbol"), str) and value is not None:
            given[raw["symbol"]] = Decimal(str(value))
    prices: dict[str, Decimal] = {}
    for symbol, pair in pairs.items():
        if pair.status is PairStatus.PREVIEW:
            continue
        price = given.get(symbol)
        prices[symbol] = pair.snap_price(price) if price else generated_price(pair)
        if prices[symbol] <= 0:
            prices[symbol] = pair.tick * GENERATED_MIN_TICKS
    return prices


def generated_price(pair: Pair) -> Decimal:
    price = pair.snap_price(GENERATED_NOTIONAL / pair.min_qty) if pair.min_qty > 0 else Decimal(0)
    return max(price, pair.tick * GENERATED_MIN_TICKS)
