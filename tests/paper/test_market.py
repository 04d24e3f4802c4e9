"""Instruments, tickers, depth and the random walk."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal
from pathlib import Path

from paper.engine import Engine
from paper.instruments import DEFAULT_PAIRS_FILE, generated_price, load_pairs
from tests.paper.helpers import data
from tests.paper.wire_client import WireClient
from tests.support.paper import PaperExchange, paper_settings, run_paper_exchange


async def test_trading_pairs_is_the_bundled_file_verbatim(api: WireClient) -> None:
    served = data(await api.public("market/trading_pairs"))
    bundled = json.loads(DEFAULT_PAIRS_FILE.read_text())["data"]
    assert served == bundled
    btc = next(p for p in served if p["symbol"] == "BTCUSDT")
    assert isinstance(btc["basePrecision"], int) and isinstance(btc["quotePrecision"], int)
    assert isinstance(btc["minTradeVolume"], str)
    assert len(served) >= 14
    assert {p["quote"] for p in served} == {"USDT", "USDC"}
    assert {p["symbolStatus"] for p in served} == {"OPEN", "CANCEL_ONLY", "STOP", "PREVIEW"}
    preview = next(p for p in served if p["symbolStatus"] == "PREVIEW")
    assert preview["minBuyPriceOffset"] is None and preview["maxSellPriceOffset"] is None


async def test_trading_pairs_symbols_filter(api: WireClient) -> None:
    served = data(await api.public("market/trading_pairs", {"symbols": "ETHUSDT,DOGEUSDT"}))
    assert sorted(p["symbol"] for p in served) == ["DOGEUSDT", "ETHUSDT"]


async def test_preview_is_absent_from_tickers_and_has_an_empty_book(api: WireClient) -> None:
    tickers = data(await api.public("market/tickers"))
    assert "MONUSDT" not in {t["symbol"] for t in tickers}
    book = data(await api.public("market/depth", {"symbol": "MONUSDT", "limit": "5"}))
    assert book == {"asks": [], "bids": []}


async def test_tiny_and_huge_prices_stay_on_their_grid(api: WireClient) -> None:
    tickers = {t["symbol"]: t for t in data(await api.public("market/tickers"))}
    assert tickers["SHIBUSDT"]["lastPrice"] == "0.00001234"
    assert tickers["BTCUSDT"]["lastPrice"] == "95000"
    book = data(await api.public("market/depth", {"symbol": "SHIBUSDT", "limit": "15"}))
    assert len(book["bids"]) == len(book["asks"]) == 15
    assert book["asks"][0][0] == "0.00001235" and book["bids"][0][0] == "0.00001233"
    for price, qty in book["asks"] + book["bids"]:
        assert Decimal(price) % Decimal("1E-8") == 0 and "E" not in price
        assert Decimal(qty) >= Decimal("410000")


async def test_depth_limit_values(api: WireClient) -> None:
    for limit, n in (("1", 1), ("5", 5), ("50", 50), ("max", 50)):
        book = data(await api.public("market/depth", {"symbol": "ETHUSDT", "limit": limit}))
        assert len(book["asks"]) == n
    bad = await api.public("market/depth", {"symbol": "ETHUSDT", "limit": "7"})
    assert bad["code"] == 10002
    assert (await api.public("market/depth", {"symbol": "NOPE"}))["code"] == 20001


async def test_admin_price_set_move_snap_to_tick(paper: PaperExchange, api: WireClient) -> None:
    assert await paper.admin.set_price("ETHUSDT", "3000.004") == Decimal("3000.00")
    assert await paper.admin.move("ETHUSDT", 100) == Decimal("3030.00")
    book = data(await api.public("market/depth", {"symbol": "ETHUSDT", "limit": "1"}))
    assert book == {
        "asks": [["3030.01", book["asks"][0][1]]],
        "bids": [["3029.99", book["bids"][0][1]]],
    }


def test_walk_is_seeded_and_stays_on_the_grid() -> None:
    first, second = Engine(paper_settings()), Engine(paper_settings())
    for _ in range(200):
        first.tick()
        second.tick()
    for symbol, sm in first.market.symbols.items():
        assert sm.price == second.market.symbols[symbol].price
        if sm.price is not None:
            assert sm.price > 0 and sm.price % sm.pair.tick == 0
    moved = [s for s, sm in first.market.symbols.items() if sm.price != sm.start_price]
    assert len(moved) > 5


def test_frozen_engine_does_not_walk() -> None:
    engine = Engine(paper_settings(), frozen=True)
    engine.tick()
    assert all(sm.price == sm.start_price for sm in engine.market.symbols.values())


def test_pair_without_ticker_gets_a_generated_price() -> None:
    engine = Engine(paper_settings())
    esp = engine.pairs["ESPUSDT"]
    assert engine.market.price("ESPUSDT") == generated_price(esp) == Decimal("0.28902")


async def test_pairs_file_accepts_a_bare_list(tmp_path: Path) -> None:
    pairs = json.loads(DEFAULT_PAIRS_FILE.read_text())["data"][:3]
    bare = tmp_path / "pairs.json"
    bare.write_text(json.dumps(pairs))
    assert sorted(load_pairs(bare)) == sorted(p["symbol"] for p in pairs)
    async with run_paper_exchange(paper_pairs_file=bare) as paper:
        client = WireClient(paper.base_url, paper.api_key, paper.api_secret)
        try:
            served = data(await client.public("market/trading_pairs"))
        finally:
            await client.aclose()
    assert served == pairs


async def test_unfrozen_walk_moves_prices_over_http() -> None:
    async with run_paper_exchange(paper_tick_interval_s=Decimal("0.01")) as paper:
        client = WireClient(paper.base_url, paper.api_key, paper.api_secret)
        try:
            start = data(await client.public("market/tickers", {"symbols": "BTCUSDT"}))[0]
            await paper.admin.freeze("BTCUSDT", frozen=False)
            for _ in range(500):  # poll until the walk has moved it
                now = data(await client.public("market/tickers", {"symbols": "BTCUSDT"}))[0]
                if now["lastPrice"] != start["lastPrice"]:
                    break
                await asyncio.sleep(0.01)
            others = data(await client.public("market/tickers", {"symbols": "ETHUSDT"}))[0]
        finally:
            await client.aclose()
    assert now["lastPrice"] != start["lastPrice"]
    assert Decimal(now["lastPrice"]) % Decimal("0.1") == 0
    assert others["lastPrice"] == "3412.55"  # still frozen
