from __future__ import annotations

from decimal import Decimal

import pytest

from exchange.client import BitunixClient
from exchange.errors import Rejected, UnknownSymbol
from tests.exchange.contract.conftest import SYMBOL
from trading.rules import PairRules
from trading.types import MarginMode, PairStatus, PositionMode


async def test_trading_pairs(client: BitunixClient) -> None:
    rules = {r.symbol: r for r in await client.trading_pairs()}
    btc = rules[SYMBOL]
    assert isinstance(btc, PairRules)
    assert btc.qty_step == Decimal("0.0001") and btc.price_tick == Decimal("0.1")
    assert btc.min_qty == Decimal("0.0001") and btc.max_market_qty == Decimal(50000)
    assert btc.status is PairStatus.OPEN and btc.api_supported
    # every listed pair is usable as rules, odd ones included (pre-listing, halted, USDC)
    assert len(rules) == len(await client.trading_pairs_raw())
    assert rules["MONUSDT"].status is PairStatus.PREVIEW
    assert rules["MONUSDT"].max_sell_price_offset is None
    assert rules["DOGEUSDT"].qty_step == 1 and rules["DOGEUSDT"].min_qty == 53
    only = await client.trading_pairs([SYMBOL, "ETHUSDT"])
    assert {r.symbol for r in only} == {SYMBOL, "ETHUSDT"}


async def test_trading_pairs_raw_keeps_the_wire_shape(client: BitunixClient) -> None:
    (raw,) = await client.trading_pairs_raw([SYMBOL])
    assert raw.symbol == SYMBOL and raw.basePrecision == 4 and raw.minTradeVolume == "0.0001"
    assert "symbolStatus" in raw.model_dump()


async def test_tickers_and_depth_follow_the_set_price(paper, client: BitunixClient) -> None:
    await paper.admin.set_price(SYMBOL, "95000.5")
    (ticker,) = await client.tickers([SYMBOL])
    assert ticker.symbol == SYMBOL and ticker.mark_price == Decimal("95000.5")
    assert isinstance(ticker.last_price, Decimal)
    assert len(await client.tickers()) >= 2
    book = await client.depth(SYMBOL, 5)
    assert book.best_bid is not None and book.best_ask is not None
    assert book.best_bid < book.best_ask
    assert book.best_bid <= Decimal("95000.5") <= book.best_ask
    assert 0 < len(book.bids) <= 5 and all(q > 0 for _, q in book.bids + book.asks)


async def test_depth_of_an_unknown_symbol(client: BitunixClient) -> None:
    with pytest.raises(UnknownSymbol) as info:
        await client.depth("NOPEUSDT", 5)
    assert info.value.code == 20001 and info.value.endpoint == "market/depth"


async def test_account(paper, client: BitunixClient) -> None:
    account = await client.account()
    assert account.margin_coin == "USDT"
    assert account.available == Decimal(100000) and account.frozen == 0
    assert account.position_mode is PositionMode.ONE_WAY


async def test_leverage_and_margin_mode(client: BitunixClient) -> None:
    await client.change_leverage(SYMBOL, 7)
    await client.change_margin_mode(SYMBOL, MarginMode.ISOLATION)
    lm = await client.leverage_margin_mode(SYMBOL)
    assert (lm.symbol, lm.leverage, lm.margin_mode) == (SYMBOL, 7, MarginMode.ISOLATION)
    await client.change_margin_mode(SYMBOL, MarginMode.CROSS)
    assert (await client.leverage_margin_mode(SYMBOL)).margin_mode is MarginMode.CROSS


async def test_invalid_leverage_is_rejected(client: BitunixClient) -> None:
    with pytest.raises(Rejected) as info:
        await client.change_leverage(SYMBOL, 1000)
    assert info.value.code == 20005 and info.value.endpoint == "account/change_leverage"


async def test_position_mode(client: BitunixClient) -> None:
    await client.change_position_mode(PositionMode.HEDGE)
    assert (await client.account()).position_mode is PositionMode.HEDGE
    await client.change_position_mode(PositionMode.ONE_WAY)
    assert (await client.account()).position_mode is PositionMode.ONE_WAY
