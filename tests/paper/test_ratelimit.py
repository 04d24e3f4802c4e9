"""BitUnix's rate limits (docs/bitunix.md#rate-limits), answered with 10006 and scaled by the
setting."""

from __future__ import annotations

from decimal import Decimal

from paper import errors
from paper.ratelimit import RateLimiter, base_rate
from tests.paper.helpers import data
from tests.paper.wire_client import WireClient
from tests.support.paper import run_paper_exchange


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_documented_budgets() -> None:
    assert base_rate("/api/v1/futures/trade/place_order", private=True) == 10
    assert base_rate("/api/v1/futures/trade/cancel_orders", private=True) == 5
    assert base_rate("/api/v1/futures/trade/flash_close_position", private=True) == 5
    assert base_rate("/api/v1/futures/trade/close_all_position", private=True) == 1
    assert base_rate("/api/v1/futures/market/depth", private=False) == 10


def test_bucket_refills_per_second() -> None:
    clock = FakeClock()
    limiter = RateLimiter(Decimal(1), clock)
    path = "/api/v1/futures/trade/cancel_orders"
    assert [limiter.allow("k", path, True) for _ in range(6)] == [True] * 5 + [False]
    clock.now += 0.2  # one token back at 5/s
    assert [limiter.allow("k", path, True) for _ in range(2)] == [True, False]
    assert limiter.allow("other-key", path, True)
    assert limiter.allow("k", "/api/v1/futures/trade/place_order", True)


def test_scale_multiplies_the_budget() -> None:
    clock = FakeClock()
    limiter = RateLimiter(Decimal(3), clock)
    path = "/api/v1/futures/trade/place_order"
    assert sum(limiter.allow("k", path, True) for _ in range(40)) == 30


async def test_over_http_the_limit_answers_10006() -> None:
    # Scale 0.001: one request per 100 s per endpoint, so the second one is always refused.
    async with run_paper_exchange(paper_rate_limit_scale=Decimal("0.001")) as paper:
        client = WireClient(paper.base_url, paper.api_key, paper.api_secret)
        try:
            data(await client.get("account", {"marginCoin": "USDT"}))
            refused = await client.get("account", {"marginCoin": "USDT"})
            other = await client.get("position/get_pending_positions", {})
            public = [(await client.public("market/tickers"))["code"] for _ in range(2)]
        finally:
            await client.aclose()
    assert refused["code"] == errors.REQUEST_TOO_FREQUENT == 10006
    assert other["code"] == 0
    assert public == [0, 10006]
